"""Hard bounces: an address the mail server refuses for good is not mailed again."""

from __future__ import annotations

from datetime import date, datetime

from fakes.smtp_sink import SmtpSink
from support import make_edition

from briefcast import pipeline, subscribers
from briefcast.config import Settings
from briefcast.db import get_engine

GONE, BUSY, SPAMMY, FINE = (
    "gone@example.org",
    "busy@example.org",
    "spammy@example.org",
    "fine@example.org",
)


def newsroom(tmp_path, port: int) -> Settings:
    return Settings.model_validate(
        {
            "publication": {
                "name": "The Test Gazette",
                "site_url": "https://gazette.example",
                "postal_address": "1 Main St",
                "sender_email": "brief@gazette.example",
                "web_base_url": "https://news.gazette.example",
            },
            "data_dir": str(tmp_path / "data"),
            "dispatch": {"backoff_seconds": 0},
            "channels": {"smtp": {"host": "127.0.0.1", "port": port, "security": "plain"}},
        }
    )


def edition(edition_id: str):
    return make_edition(
        edition_id,
        edition_date=date.fromisoformat(edition_id),
        subject="Your brief",
        html='<p>News.</p><a href="%%unsubscribe_url%%">Unsubscribe</a>',
        text="News.\nUnsubscribe: %%unsubscribe_url%%\n",
    )


def send(settings: Settings, edition_id: str):
    day = edition(edition_id)
    return pipeline.deliver(settings, day, "smtp", pipeline.recipients(settings, day, []))


def test_a_mailbox_refused_for_good_is_marked_bounced_and_skipped_next_time(tmp_path):
    with SmtpSink() as sink:
        settings = newsroom(tmp_path, sink.port)
        engine = get_engine(settings.database_url)
        for address in (GONE, BUSY, SPAMMY, FINE):
            subscribers.add(engine, address, source="test")
        sink.reply(GONE, 550)  # 5.1.1 user unknown, at RCPT TO
        sink.reply(BUSY, 450)  # mailbox busy: try again later
        sink.reply(SPAMMY, 554, at="data")  # this message refused, not the address

        first = send(settings, "2026-11-20")

        assert first.rejected == [GONE]
        assert subscribers.get(engine, GONE).status == "bounced"
        assert subscribers.get(engine, BUSY).status == "active"
        assert subscribers.get(engine, SPAMMY).status == "active"
        assert len(sink.messages_to(BUSY)) == 1 and len(sink.messages_to(FINE)) == 1

        send(settings, "2026-11-21")

        assert sink.rcpt_attempts[GONE] == 1  # never tried again
        assert len(sink.messages_to(FINE)) == 2 and len(sink.messages_to(SPAMMY)) == 1


def test_a_test_send_refusal_changes_no_subscriber(tmp_path):
    with SmtpSink() as sink:
        settings = newsroom(tmp_path, sink.port)
        engine = get_engine(settings.database_url)
        subscribers.add(engine, GONE, source="test")
        sink.reply(GONE, 550)
        day = edition("2026-11-20")
        proof = pipeline.for_test_send(day, datetime(2026, 11, 20, 9, 0))
        recipients = pipeline.recipients(settings, day, [GONE])

        report = pipeline.deliver(settings, proof, "smtp", recipients, test_send=True)

        assert report.rejected == [GONE]
        assert subscribers.get(engine, GONE).status == "active"
