"""``briefcast web`` as an attacker meets it on the default config, over real HTTP (uvicorn on
127.0.0.1): forged and replayed webhook events, oversized and hostile bodies, security
headers, hostile Host headers, a path prefix behind a proxy."""

from __future__ import annotations

import base64
import json
import logging
import ssl
import time

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from support import self_signed_certificate
from web_support import listening_socket, make_settings, served

from briefcast import subscribers
from briefcast.db import get_engine
from briefcast.web.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER

WEBHOOK = "/webhooks/sendgrid"


@pytest.fixture
def key():
    return ec.generate_private_key(ec.SECP256R1())


def public_key_setting(private_key) -> str:
    der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f'sendgrid_webhook_public_key = "{base64.b64encode(der).decode()}"'


def signed(private_key, body: bytes, timestamp: str | None = None) -> dict:
    timestamp = str(int(time.time())) if timestamp is None else timestamp
    signature = private_key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        SIGNATURE_HEADER: base64.b64encode(signature).decode(),
        TIMESTAMP_HEADER: timestamp,
        "Content-Type": "application/json",
    }


def spam_report(address: str) -> bytes:
    return json.dumps([{"email": address, "event": "spamreport", "timestamp": 1}]).encode()


def status(settings, address: str) -> str | None:
    found = subscribers.get(get_engine(settings.database_url), address)
    return found.status if found else None


@pytest.fixture
def site(tmp_path, monkeypatch):
    """Serve the app with extra ``[web]`` lines; yields (base URL, settings)."""
    started = []

    def start(web_extra: str = "", **options):
        sock, base = listening_socket()
        settings = make_settings(tmp_path, monkeypatch, base_url=base, web_extra=web_extra)
        running = served(settings, sock, **options)
        running.__enter__()
        started.append(running)
        return base, settings

    yield start
    for running in started:
        running.__exit__(None, None, None)


# -- 1. forged webhook events ----------------------------------------------------------


def test_unsigned_events_are_refused_by_default_and_change_nothing(site):
    base, settings = site()
    engine = get_engine(settings.database_url)
    subscribers.add(engine, "victim@example.com", status="active")

    answer = httpx.post(base + WEBHOOK, content=spam_report("victim@example.com"))

    assert answer.status_code == 401
    assert "no verification key" in answer.json()["error"]
    assert status(settings, "victim@example.com") == "active"


def test_the_answer_is_the_same_whoever_the_events_name(site, key):
    base, settings = site(public_key_setting(key))
    subscribers.add(get_engine(settings.database_url), "member@example.com", status="active")

    answers = []
    for address in ("member@example.com", "stranger@example.com"):
        body = spam_report(address)
        answer = httpx.post(base + WEBHOOK, content=body, headers=signed(key, body))
        answers.append((answer.status_code, answer.content))

    assert answers[0] == answers[1] == (200, b'{"received":1}')
    assert status(settings, "member@example.com") == "complained"


def test_the_unsafe_opt_in_is_warned_about_at_start_and_then_believes_anyone(site, caplog):
    with caplog.at_level(logging.WARNING, "briefcast.web"):
        base, settings = site("allow_unsigned_webhook = true")
    subscribers.add(get_engine(settings.database_url), "victim@example.com", status="active")

    assert "UNSAFE" in caplog.text and "allow_unsigned_webhook" in caplog.text
    assert httpx.post(base + WEBHOOK, content=spam_report("victim@example.com")).status_code == 200
    assert status(settings, "victim@example.com") == "complained"


# -- 2. replays ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "timestamp",
    [
        str(int(time.time()) - 365 * 24 * 3600),  # a year old
        str(int(time.time()) - 26 * 3600),  # past SendGrid's 24 h of retries, and our hour
        str(int(time.time()) + 3600),  # from the future
        "soon",
        "1.7e9",
        "+" + str(int(time.time())),
        "",
    ],
    ids=["year-old", "26-hours-old", "future", "word", "float", "plus-sign", "empty"],
)
def test_a_signed_batch_outside_the_window_or_with_a_bad_timestamp_is_refused(site, key, timestamp):
    base, settings = site(public_key_setting(key))
    subscribers.add(get_engine(settings.database_url), "victim@example.com", status="active")
    body = spam_report("victim@example.com")

    answer = httpx.post(base + WEBHOOK, content=body, headers=signed(key, body, timestamp))

    assert answer.status_code == 401
    assert status(settings, "victim@example.com") == "active"


def test_a_retry_signed_hours_ago_is_still_accepted(site, key):
    base, settings = site(public_key_setting(key))
    subscribers.add(get_engine(settings.database_url), "gone@example.com", status="active")
    body = spam_report("gone@example.com")
    hours_ago = str(int(time.time()) - 23 * 3600)

    answer = httpx.post(base + WEBHOOK, content=body, headers=signed(key, body, hours_ago))

    assert answer.status_code == 200
    assert status(settings, "gone@example.com") == "complained"


# -- 3. bodies -------------------------------------------------------------------------

CAP = "[web.limits]\nmax_body_bytes = 65536"


@pytest.mark.parametrize("path", [WEBHOOK, "/subscribe", "/u/whatever", "/confirm/x.y"])
def test_a_body_over_the_cap_is_refused_from_its_content_length(site, path):
    base, _ = site(CAP)
    answer = httpx.post(base + path, content=b"a" * 70_000)
    assert answer.status_code == 413


def test_a_streamed_body_is_cut_off_at_the_cap(site, key):
    base, settings = site(f"{public_key_setting(key)}\n{CAP}")
    subscribers.add(get_engine(settings.database_url), "victim@example.com", status="active")

    def chunks():  # chunked transfer encoding: no Content-Length to check up front
        for _ in range(200):
            yield b" " * 8192

    answer = httpx.post(
        base + WEBHOOK, content=chunks(), headers={"Content-Type": "application/json"}
    )

    assert answer.status_code == 413
    assert status(settings, "victim@example.com") == "active"


def test_json_nested_thousands_deep_is_a_400(site, key):
    base, _ = site(public_key_setting(key))
    body = b"[" * 50_000 + b"]" * 50_000

    answer = httpx.post(base + WEBHOOK, content=body, headers=signed(key, body))

    assert answer.status_code == 400
    assert answer.json() == {"error": "body is not JSON"}


# -- 7. headers and hosts --------------------------------------------------------------


def test_every_page_carries_the_security_headers_and_no_server_banner(site):
    base, settings = site()
    archive = settings.data_dir / "archive"
    archive.mkdir(parents=True)
    (archive / "2026-11-20.html").write_text("<p>the news</p>", encoding="utf-8")

    for method, path in [
        ("GET", "/"),
        ("GET", "/archive"),
        ("GET", "/archive/2026-11-20"),
        ("GET", "/nowhere"),
        ("POST", "/subscribe"),
        ("POST", WEBHOOK),
    ]:
        answer = httpx.request(method, base + path)
        headers = answer.headers
        assert "server" not in headers, path
        csp = headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, path
        assert "script-src" not in csp  # no scripts at all, inline or not
        assert "camera=()" in headers["permissions-policy"], path
        assert headers["referrer-policy"] == "no-referrer", path
        assert "strict-transport-security" not in headers  # plain http: no HSTS

    edition = httpx.get(base + "/archive/2026-11-20").headers["content-security-policy"]
    assert "sandbox" in edition  # feed content runs as a foreign origin, without scripts


def test_hsts_over_https(site, tmp_path):
    certificate = self_signed_certificate(tmp_path)
    base, _ = site(ssl_certfile=certificate[0], ssl_keyfile=certificate[1])
    https = base.replace("http://", "https://")

    answer = httpx.get(https + "/", verify=ssl.create_default_context(cafile=certificate[0]))

    assert answer.headers["strict-transport-security"].startswith("max-age=31536000")


def test_forwarded_headers_count_only_from_a_configured_proxy(site):
    plain, _ = site()
    behind, _ = site('[web.limits]\ntrusted_proxies = ["127.0.0.1/32"]')
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}

    assert "strict-transport-security" not in httpx.get(plain + "/", headers=forwarded).headers
    assert "strict-transport-security" in httpx.get(behind + "/", headers=forwarded).headers


@pytest.mark.parametrize("path", ["/archive/", "/archive/2026-11-21", "/", "/nowhere/"])
def test_a_hostile_host_header_shows_up_in_no_answer(site, path):
    base, _ = site()
    answer = httpx.get(base + path, headers={"Host": "evil.example"}, follow_redirects=False)

    assert "evil.example" not in answer.text
    assert "evil.example" not in answer.headers.get("location", "")
    if path == "/archive/":
        assert answer.status_code == 308
        assert answer.headers["location"] == f"{base}/archive"


def test_a_path_prefix_behind_a_proxy(site):
    base, settings = site('root_path = "/news"')
    archive = settings.data_dir / "archive"
    archive.mkdir(parents=True)
    (archive / "2026-11-20.html").write_text("<title>Nov 20</title>", encoding="utf-8")

    # The proxy strips /news before passing the request on.
    index = httpx.get(base + "/archive")
    form = httpx.get(base + "/")

    assert index.status_code == 200
    assert 'href="/news/archive/2026-11-20"' in index.text
    assert 'action="/news/subscribe"' in form.text
    assert httpx.get(base + "/archive/2026-11-20").status_code == 200
    assert httpx.get(base + "/u/not.valid").headers["cache-control"] == "no-store"
    moved = httpx.get(base + "/archive/", follow_redirects=False)
    assert moved.headers["location"] == f"{base}/archive"  # from web_base_url, never the Host
