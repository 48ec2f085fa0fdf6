"""Subscriber mail as the bytes that leave: what a mailbox provider reads, unparsed.

The ``email`` package decodes what it encoded, so a test that parses a message
back cannot see a header a mailbox provider would misread; these look at the raw
lines as the SMTP server received them and as the outbox wrote them.
"""

from __future__ import annotations

import re

import pytest
from briefcast.channels.base import ChannelContext
from briefcast.channels.outbox import OutboxChannel, OutboxSettings
from briefcast.channels.smtp_mail import SmtpChannel, SmtpSettings
from fakes.smtp_sink import SmtpSink
from support import gazette_settings, make_edition

from briefcast import subscribers
from briefcast.config import Dispatch, Settings
from briefcast.db import get_engine
from briefcast.dispatch import dispatch_channel
from briefcast.ledger import Ledger
from briefcast.models import RenderedEdition

FAST = Dispatch(max_attempts=2, backoff_seconds=0, max_wait_seconds=5)
EDITION = "2026-11-20"


def edition() -> RenderedEdition:
    return make_edition(
        EDITION,
        subject="Your brief — Friday",
        html='<a href="%%unsubscribe_url%%">Unsubscribe</a>',
        text="Unsubscribe: %%unsubscribe_url%%\n",
    )


@pytest.fixture
def settings(tmp_path) -> Settings:
    return gazette_settings(tmp_path, web_base_url="https://news.gazette.example/brief")


def context(settings, addresses) -> ChannelContext:
    recipients = [subscribers.recipient(settings, a, EDITION, "Ana Ribeiro") for a in addresses]
    return ChannelContext(
        publication=settings.publication, data_dir=settings.data_dir, recipients=recipients
    )


def header_lines(raw: bytes, name: str) -> list[str]:
    """Each occurrence of header ``name``, unfolded, exactly as written on the wire."""
    head = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode()  # UTF-8: RFC 6532
    unfolded = re.sub(r"\n[ \t]", " ", head)
    return [line for line in unfolded.split("\n") if line.lower().startswith(name.lower() + ":")]


def assert_one_click_header_readable(raw: bytes, address: str, settings, mailto="") -> None:
    (line,) = header_lines(raw, "List-Unsubscribe")
    assert "=?" not in line, f"encoded words hide the URL from mailbox providers: {line}"
    link = subscribers.recipient(settings, address, EDITION).unsubscribe_url
    expected = f"List-Unsubscribe: <{link}>"
    if mailto:
        expected += f", <mailto:{mailto}?subject=unsubscribe>"
    assert line == expected
    assert header_lines(raw, "List-Unsubscribe-Post") == [
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click"
    ]


def smtp(port: int, **overrides) -> SmtpSettings:
    return SmtpSettings(
        host="127.0.0.1", port=port, security="plain", timeout_seconds=5, **overrides
    )


def test_smtp_sends_the_unsubscribe_url_itself_not_encoded_words(settings):
    address = "ana.ribeiro@example.org"
    ledger = Ledger(get_engine(settings.database_url))
    with SmtpSink() as sink:
        conf = smtp(sink.port, unsubscribe_mailto="leave@gazette.example")
        adapter = SmtpChannel(conf, context(settings, [address]))
        report = dispatch_channel(adapter, "smtp", edition(), ledger, FAST)
    assert report.delivered == 1
    (received,) = sink.received
    assert len(header_lines(received.raw, "List-Unsubscribe")[0]) < 998
    assert_one_click_header_readable(received.raw, address, settings, "leave@gazette.example")


def test_outbox_writes_the_unsubscribe_url_itself(settings, tmp_path):
    address = "ana.ribeiro@example.org"
    ledger = Ledger(get_engine(settings.database_url))
    adapter = OutboxChannel(
        OutboxSettings(path=str(tmp_path / "out")), context(settings, [address])
    )
    report = dispatch_channel(adapter, "outbox", edition(), ledger, FAST)
    assert report.delivered == 1
    raw = (tmp_path / "out" / EDITION / "email" / f"{address}.eml").read_bytes()
    assert_one_click_header_readable(raw, address, settings)


def test_an_idn_domain_goes_out_in_punycode_to_a_server_without_smtputf8(settings):
    """Many relays (Amazon SES among them) offer no SMTPUTF8; the ASCII form reaches the
    same mailbox, so only an address with a non-ASCII local part needs it."""
    ledger = Ledger(get_engine(settings.database_url))
    addresses = ["leitor@bücher.example", "ana.ribeiro@example.org", "jürgen@bücher.example"]
    with SmtpSink(smtputf8=False) as sink:
        adapter = SmtpChannel(smtp(sink.port), context(settings, addresses))
        report = dispatch_channel(adapter, "smtp", edition(), ledger, FAST)
    assert report.delivered == 2 and report.failed == 1
    assert "jürgen@bücher.example: the server does not accept international" in report.errors[0]
    received = {r.rcpt_tos[0]: r for r in sink.received}
    assert set(received) == {"leitor@xn--bcher-kva.example", "ana.ribeiro@example.org"}
    raw = received["leitor@xn--bcher-kva.example"].raw
    assert header_lines(raw, "To") == ["To: Ana Ribeiro <leitor@xn--bcher-kva.example>"]
    # The ledger keeps the address as the subscriber list has it.
    assert ledger.rows(EDITION, "smtp")["leitor@bücher.example"].state == "sent"


def test_an_international_local_part_does_not_stop_the_edition(settings, tmp_path):
    """``jürgen@bücher.example`` is a valid address (email-validator imports it); the email
    package refuses it as an addr_spec, which used to refuse the whole edition."""
    addresses = ["jürgen@bücher.example", "ana.ribeiro@example.org"]
    ledger = Ledger(get_engine(settings.database_url))
    with SmtpSink() as sink:  # this one offers SMTPUTF8
        adapter = SmtpChannel(smtp(sink.port), context(settings, addresses))
        report = dispatch_channel(adapter, "smtp", edition(), ledger, FAST)
    assert report.delivered == 2, report.errors
    (received,) = sink.messages_to("jürgen@bücher.example")
    assert header_lines(received.raw, "To") == ["To: Ana Ribeiro <jürgen@bücher.example>"]

    adapter = OutboxChannel(
        OutboxSettings(path=str(tmp_path / "out")), context(settings, addresses)
    )
    assert dispatch_channel(adapter, "outbox", edition(), ledger, FAST).delivered == 2
    (written,) = (tmp_path / "out" / EDITION / "email").glob("j*.eml")
    assert header_lines(written.read_bytes(), "To") == ["To: Ana Ribeiro <jürgen@bücher.example>"]
