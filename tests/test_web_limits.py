"""The subscribe form can't be turned into a mail cannon, over real HTTP (uvicorn on 127.0.0.1)
with an SMTP sink: limits per client IP, overall and per mailbox (``+tag`` variants are one
mailbox), kept in memory or in Redis for several web processes; X-Forwarded-For believed
only from configured proxies; sign-ups nobody confirms expire.

Mail is counted after the server stopped: uvicorn waits for the requests' background tasks
(the confirmation mails) before it exits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update
from web_support import listening_socket, make_settings, served, smtp_sink

from briefcast import subscribers
from briefcast.db import get_engine


@pytest.fixture
def sink():
    with smtp_sink() as sink:
        yield sink


def limits(**values) -> str:
    lines = ["[web.limits]"]
    for key, value in values.items():
        lines.append(f"{key} = {value!r}".replace("'", '"'))
    return "\n".join(lines)


def setup(tmp_path, monkeypatch, sink, **values):
    sock, base = listening_socket()
    settings = make_settings(
        tmp_path, monkeypatch, smtp_port=sink.port, base_url=base, web_extra=limits(**values)
    )
    return sock, base, settings


def subscribe(base: str, address: str, forwarded_for: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return httpx.post(f"{base}/subscribe", data={"email": address}, headers=headers).status_code


def recipients(sink) -> list[str]:
    return sorted(address for message in sink.received for address in message.rcpt_tos)


def test_plus_tag_variants_of_one_mailbox_get_one_mail(tmp_path, monkeypatch, sink):
    sock, base, settings = setup(tmp_path, monkeypatch, sink, per_client="100/hour")
    with served(settings, sock):
        answers = {subscribe(base, f"victim+{n}@example.org") for n in range(10)}
        answers.add(subscribe(base, "Victim@Example.org"))

    assert answers == {200}  # the page says nothing about the limit
    assert len(recipients(sink)) == 1


def test_one_client_gets_a_few_requests_then_429(tmp_path, monkeypatch, sink):
    sock, base, settings = setup(tmp_path, monkeypatch, sink, per_client="3/hour")
    with served(settings, sock):
        answers = [subscribe(base, f"reader{n}@example.org") for n in range(5)]

    assert answers == [200, 200, 200, 429, 429]
    assert recipients(sink) == ["reader0@example.org", "reader1@example.org", "reader2@example.org"]


def test_x_forwarded_for_from_anyone_but_a_configured_proxy_is_ignored(tmp_path, monkeypatch, sink):
    sock, base, settings = setup(tmp_path, monkeypatch, sink, per_client="2/hour")
    with served(settings, sock):
        answers = [
            subscribe(base, f"reader{n}@example.org", forwarded_for=f"198.51.100.{n}")
            for n in range(4)
        ]

    assert answers == [200, 200, 429, 429]  # all one client: 127.0.0.1


def test_behind_a_configured_proxy_each_forwarded_client_counts_apart(tmp_path, monkeypatch, sink):
    sock, base, settings = setup(
        tmp_path, monkeypatch, sink, per_client="2/hour", trusted_proxies=["127.0.0.1"]
    )
    with served(settings, sock):
        first = [subscribe(base, f"a{n}@example.org", forwarded_for="198.51.100.7") for n in (1, 2)]
        spoofed = subscribe(base, "a3@example.org", forwarded_for="203.0.113.5, 198.51.100.7")
        other = subscribe(base, "b1@example.org", forwarded_for="198.51.100.8")

    assert first == [200, 200]
    assert spoofed == 429  # the client may prepend anything; the proxy appends the real one
    assert other == 200


def test_addresses_from_one_ipv6_64_count_as_one_client(tmp_path, monkeypatch, sink):
    sock, base, settings = setup(
        tmp_path, monkeypatch, sink, per_client="2/hour", trusted_proxies=["127.0.0.1"]
    )
    with served(settings, sock):
        same_64 = [
            subscribe(base, f"v{n}@example.org", forwarded_for=f"2001:db8:1:2::{n:x}")
            for n in range(1, 4)
        ]
        next_64 = subscribe(base, "w@example.org", forwarded_for="2001:db8:1:3::1")

    assert same_64 == [200, 200, 429]
    assert next_64 == 200


def test_everyone_together_gets_no_more_than_the_overall_limit(tmp_path, monkeypatch, sink):
    sock, base, settings = setup(
        tmp_path,
        monkeypatch,
        sink,
        per_client="100/hour",
        overall="4/hour",
        trusted_proxies=["127.0.0.0/8"],
    )
    with served(settings, sock):
        answers = [
            subscribe(base, f"r{n}@example.org", forwarded_for=f"198.51.100.{n}") for n in range(6)
        ]

    assert answers == [200, 200, 200, 200, 429, 429]
    assert len(recipients(sink)) == 4


def test_sign_ups_nobody_confirmed_expire(tmp_path, monkeypatch, sink):
    sock, base, settings = setup(tmp_path, monkeypatch, sink, pending_days=7)
    engine = get_engine(settings.database_url)
    for address in ("stale@example.org", "fresh@example.org", "member@example.org"):
        subscribers.add(engine, address, status="active" if "member" in address else "pending")
    eight_days_ago = datetime.now(UTC) - timedelta(days=8)
    table = subscribers.subscribers
    with engine.begin() as conn:
        conn.execute(
            update(table)
            .where(table.c.address.in_(["stale@example.org", "member@example.org"]))
            .values(created_at=eight_days_ago, updated_at=eight_days_ago)
        )

    with served(settings, sock):
        assert subscribe(base, "newcomer@example.org") == 200

    statuses = {s.address: s.status for s in subscribers.list_subscribers(engine)}
    assert statuses == {
        "fresh@example.org": "pending",
        "member@example.org": "active",
        "newcomer@example.org": "pending",
    }


def test_several_web_processes_share_the_limits_through_redis(
    tmp_path, monkeypatch, sink, redis_url
):
    shared = {
        "storage_url": redis_url,
        "key_prefix": f"test-{uuid.uuid4().hex}",  # our own counters on a shared Redis
        "per_client": "3/hour",
    }
    sock_a, base_a, settings = setup(tmp_path, monkeypatch, sink, **shared)
    sock_b, base_b = listening_socket()
    with served(settings, sock_a), served(settings, sock_b):
        one_mailbox = [
            subscribe(base_a, "twice@example.org"),
            subscribe(base_b, "twice@example.org"),
        ]
        per_client = [subscribe(base_b, "x@example.org"), subscribe(base_a, "y@example.org")]

    assert one_mailbox == [200, 200]
    assert per_client == [200, 429]  # the fourth request from 127.0.0.1 on either process
    assert recipients(sink) == ["twice@example.org", "x@example.org"]


def test_a_redis_that_does_not_answer_stops_the_app_at_start(tmp_path, monkeypatch):
    from fakes.smtp_sink import free_port

    from briefcast.config import ConfigFileError
    from briefcast.web.app import create_app

    url = f"redis://127.0.0.1:{free_port()}/0"  # nobody listening
    settings = make_settings(tmp_path, monkeypatch, web_extra=limits(storage_url=url))
    with pytest.raises(ConfigFileError, match="web.limits.storage_url"):
        create_app(settings)
