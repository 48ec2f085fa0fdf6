"""The SendGrid Event Webhook: events suppress addresses; signatures verified when configured.

These tests map events to statuses with `allow_unsigned_webhook` (the unsafe opt-in) unless
they are about signatures; tests/test_web_public.py has what an attacker sees by default."""

from __future__ import annotations

import base64
import json
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from web_support import make_settings

from briefcast import subscribers
from briefcast.config import ConfigFileError
from briefcast.db import get_engine
from briefcast.web.app import create_app
from briefcast.web.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER

URL = "/webhooks/sendgrid"


def event(kind: str, email: str, **extra) -> dict:
    return {
        "email": email,
        "timestamp": 1_700_000_000,
        "event": kind,
        "sg_event_id": f"{kind}-{email}",
        "sg_message_id": "abc.filter0001",
        "edition_id": "2026-11-20",
        **extra,
    }


@pytest.fixture
def key():
    return ec.generate_private_key(ec.SECP256R1())


def public_der_b64(private_key) -> str:
    der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def signed_headers(private_key, body: bytes, timestamp: str | None = None) -> dict:
    timestamp = timestamp or str(int(time.time()))
    signature = private_key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        SIGNATURE_HEADER: base64.b64encode(signature).decode(),
        TIMESTAMP_HEADER: timestamp,
        "Content-Type": "application/json",
    }


def make_client(tmp_path, monkeypatch, web_extra: str = "allow_unsigned_webhook = true"):
    settings = make_settings(tmp_path, monkeypatch, web_extra=web_extra)
    engine = get_engine(settings.database_url)
    return TestClient(create_app(settings)), engine, settings


def statuses(engine) -> dict[str, str]:
    return {s.address: s.status for s in subscribers.list_subscribers(engine)}


ADDRESSES = [
    "hard@example.org",
    "soft@example.org",
    "dropped-bounce@example.org",
    "dropped-unsub@example.org",
    "dropped-spam@example.org",
    "dropped-invalid@example.org",
    "spam@example.org",
    "unsub@example.org",
    "group@example.org",
    "delivered@example.org",
]


def test_events_update_subscribers_and_the_next_edition_skips_them(tmp_path, monkeypatch):
    client, engine, settings = make_client(tmp_path, monkeypatch)
    for address in ADDRESSES:
        subscribers.add(engine, address, status="active")
    events = [
        event(
            "bounce", "hard@example.org", type="bounce", reason="550 unknown user", status="5.1.1"
        ),
        event("bounce", "soft@example.org", type="blocked", reason="421 try later", status="4.0.0"),
        event("dropped", "dropped-bounce@example.org", reason="Bounced Address", status="5.0.0"),
        event("dropped", "dropped-unsub@example.org", reason="Unsubscribed Address"),
        event("dropped", "dropped-spam@example.org", reason="Spam Reporting Address"),
        event("dropped", "dropped-invalid@example.org", reason="Invalid SMTPAPI header"),
        event("spamreport", "spam@example.org"),
        event("unsubscribe", "unsub@example.org"),
        event("group_unsubscribe", "group@example.org", asm_group_id=42, useragent="x", ip="1"),
        event("delivered", "delivered@example.org", response="250 OK"),
        event("spamreport", "stranger@example.org"),  # not ours: ignored
    ]

    answer = client.post(URL, json=events)

    assert answer.status_code == 200
    assert answer.json() == {"received": 11}  # the same whichever addresses are ours
    assert statuses(engine) == {
        "hard@example.org": "bounced",
        "soft@example.org": "active",
        "dropped-bounce@example.org": "bounced",
        "dropped-unsub@example.org": "unsubscribed",
        "dropped-spam@example.org": "complained",
        "dropped-invalid@example.org": "active",
        "spam@example.org": "complained",
        "unsub@example.org": "unsubscribed",
        "group@example.org": "unsubscribed",
        "delivered@example.org": "active",
    }
    hard = subscribers.get(engine, "hard@example.org")
    assert "550 unknown user" in hard.reason and hard.bounced_at is not None
    next_edition = {r.email for r in subscribers.recipients_for(engine, settings, "2026-11-21")}
    assert next_edition == {
        "soft@example.org",
        "dropped-invalid@example.org",
        "delivered@example.org",
    }


def test_a_later_milder_event_does_not_soften_a_status(tmp_path, monkeypatch):
    client, engine, _ = make_client(tmp_path, monkeypatch)
    subscribers.add(engine, "angry@example.org", status="active")

    client.post(URL, json=[event("spamreport", "angry@example.org")])
    client.post(URL, json=[event("unsubscribe", "angry@example.org")])
    client.post(URL, json=[event("bounce", "angry@example.org", type="bounce")])

    assert statuses(engine) == {"angry@example.org": "complained"}


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"event": "bounce"}', b"\xff\xfe", b""],
    ids=["text", "object", "bytes", "empty"],
)
def test_a_body_that_is_not_a_json_array_is_a_400(tmp_path, monkeypatch, body):
    client, engine, _ = make_client(tmp_path, monkeypatch)
    answer = client.post(URL, content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400


def test_malformed_events_in_an_array_are_skipped(tmp_path, monkeypatch):
    client, engine, _ = make_client(tmp_path, monkeypatch)
    subscribers.add(engine, "ok@example.org", status="active")
    events = [
        "junk",
        7,
        {"event": "spamreport"},
        {"event": "spamreport", "email": 3},
        {"event": "spamreport", "email": "not an address"},
        event("spamreport", "ok@example.org"),
    ]

    answer = client.post(URL, json=events)

    assert answer.json() == {"received": 6}
    assert statuses(engine) == {"ok@example.org": "complained"}


@pytest.mark.parametrize("key_format", ["der", "pem"])
def test_a_signed_batch_is_applied(tmp_path, monkeypatch, key, key_format):
    public = public_der_b64(key)
    if key_format == "pem":
        pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        public = pem.decode().replace("\n", "\\n")
    client, engine, _ = make_client(
        tmp_path, monkeypatch, web_extra=f'sendgrid_webhook_public_key = "{public}"'
    )
    subscribers.add(engine, "spam@example.org", status="active")
    body = json.dumps([event("spamreport", "spam@example.org")]).encode()

    answer = client.post(URL, content=body, headers=signed_headers(key, body))

    assert answer.status_code == 200
    assert statuses(engine) == {"spam@example.org": "complained"}


def test_unsigned_forged_or_altered_batches_are_rejected(tmp_path, monkeypatch, key):
    client, engine, _ = make_client(
        tmp_path, monkeypatch, web_extra=f'sendgrid_webhook_public_key = "{public_der_b64(key)}"'
    )
    subscribers.add(engine, "victim@example.org", status="active")
    body = json.dumps([event("unsubscribe", "victim@example.org")]).encode()
    other_key = ec.generate_private_key(ec.SECP256R1())
    good = signed_headers(key, body)
    attempts = [
        (body, {"Content-Type": "application/json"}),  # no signature at all
        (body, signed_headers(other_key, body)),  # someone else's key
        (body.replace(b"victim", b"VICTIM"), good),  # body altered after signing
        (body, {**good, TIMESTAMP_HEADER: str(int(good[TIMESTAMP_HEADER]) + 1)}),  # altered
        (body, {**good, SIGNATURE_HEADER: "not base64!"}),
    ]

    for content, headers in attempts:
        answer = client.post(URL, content=content, headers=headers)
        assert answer.status_code == 401
    assert statuses(engine) == {"victim@example.org": "active"}


def test_a_configured_key_that_is_not_a_key_stops_the_app_at_start(tmp_path, monkeypatch):
    settings = make_settings(
        tmp_path, monkeypatch, web_extra='sendgrid_webhook_public_key = "bm90IGEga2V5"'
    )
    with pytest.raises(ConfigFileError, match="web.sendgrid_webhook_public_key"):
        create_app(settings)


# SendGrid's own published verification example (sendgrid-python, test/unit/test_eventwebhook.py):
# proves we check the same bytes SendGrid signs, not just what our own test key signs.
SENDGRID_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+"
    "2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
)
SENDGRID_SIGNATURE = (
    "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+"
    "uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM="
)
SENDGRID_TIMESTAMP = "1600112502"
SENDGRID_EVENT = {
    "email": "hello@world.com",
    "event": "dropped",
    "reason": "Bounced Address",
    "sg_event_id": "ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",
    "sg_message_id": "LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",
    "smtp-id": "<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>",
    "timestamp": 1600112492,
}


def test_sendgrids_published_signature_example_verifies(tmp_path, monkeypatch):
    client, engine, _ = make_client(
        tmp_path, monkeypatch, web_extra=f'sendgrid_webhook_public_key = "{SENDGRID_KEY}"'
    )
    subscribers.add(engine, "hello@world.com", status="active")
    client.app.state.web.clock = lambda: int(SENDGRID_TIMESTAMP) + 60  # signed in 2020
    body = (json.dumps([SENDGRID_EVENT], sort_keys=True, separators=(",", ":")) + "\r\n").encode()
    headers = {
        SIGNATURE_HEADER: SENDGRID_SIGNATURE,
        TIMESTAMP_HEADER: SENDGRID_TIMESTAMP,
        "Content-Type": "application/json",
    }

    assert client.post(URL, content=body.rstrip(), headers=headers).status_code == 401
    answer = client.post(URL, content=body, headers=headers)

    assert answer.status_code == 200
    assert statuses(engine) == {"hello@world.com": "bounced"}
