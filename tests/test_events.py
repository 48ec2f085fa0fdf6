"""Provider events kept per edition and channel, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import pytest
from support import gazette_settings

from briefcast import events
from briefcast.db import get_engine
from briefcast.ledger import Ledger
from briefcast.report import edition_report


def sent(ledger: Ledger, edition_id: str, channel: str, targets: list[str]) -> None:
    ledger.ensure(edition_id, channel, targets)
    rows = ledger.rows(edition_id, channel)
    ledger.claim(r.id for r in rows.values())
    for target in targets:
        ledger.mark_sent(rows[target].id, f"receipt-{target}")


def batch(edition_id: str) -> list:
    return [
        {
            "email": "A@example.org",
            "event": "delivered",
            "sg_event_id": "e1",
            "timestamp": 1,
            "edition_id": edition_id,
        },
        {
            "email": "a@example.org",
            "event": "open",
            "sg_event_id": "e2",
            "timestamp": 2,
            "edition_id": edition_id,
        },
        {
            "email": "a@example.org",
            "event": "click",
            "sg_event_id": "e3",
            "timestamp": 3,
            "edition_id": edition_id,
            "url": "https://gazette.example/a",
        },
        {
            "email": "b@example.org",
            "event": "bounce",
            "sg_event_id": "e4",
            "timestamp": 3,
            "edition_id": edition_id,
            "type": "bounce",
            "reason": "550 unknown user",
        },
        {"email": "c@example.org", "event": "not-an-event", "sg_event_id": "e5"},
        "not even an object",
    ]


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        return get_engine(f"sqlite:///{tmp_path / 'events.db'}")
    return get_engine(request.getfixturevalue("postgres_url"))


def test_a_batch_sendgrid_sends_twice_is_kept_once_and_counted(engine, tmp_path):
    settings = gazette_settings(tmp_path).model_copy(update={"channels": {"sendgrid": {}}})
    sent(Ledger(engine), "2026-11-20", "sendgrid", ["a@example.org", "b@example.org"])

    assert events.record_sendgrid(engine, batch("2026-11-20")) == 4
    assert events.record_sendgrid(engine, batch("2026-11-20")) == 0  # SendGrid's retry

    [stats] = edition_report(engine, settings, "2026-11-20").channels
    assert (stats.sent, stats.delivered, stats.opened, stats.clicked, stats.bounced) == (
        2,
        1,
        1,
        1,
        1,
    )


def test_a_web_unsubscribe_counts_against_the_last_edition_the_reader_got(engine, tmp_path):
    settings = gazette_settings(tmp_path).model_copy(update={"channels": {"smtp": {}}})
    ledger = Ledger(engine)
    sent(ledger, "2026-11-19", "smtp", ["a@example.org"])
    sent(ledger, "2026-11-20", "smtp", ["a@example.org"])

    events.record_unsubscribe(engine, "A@Example.org", "unsubscribe link")
    events.record_unsubscribe(engine, "nobody@example.org", "unsubscribe link")

    report = edition_report(engine, settings, "2026-11-20")
    assert [(s.channel, s.unsubscribed) for s in report.channels] == [("smtp", 1)]
    assert [(p.edition_id, p.unsubscribes) for p in report.trend] == [
        ("2026-11-19", 0),
        ("2026-11-20", 1),
    ]
