"""The SMTP channel against a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import itertools
import threading
from collections import Counter

import pytest
from briefcast.channels.base import ChannelContext, Delivery
from briefcast.channels.errors import AuthError, TransientError
from briefcast.channels.smtp_mail import SmtpChannel, SmtpSettings
from fakes.smtp_sink import SmtpSink, free_port
from support import (
    gazette_settings,
    make_edition,
    self_signed_certificate,
    server_tls,
    wait_for,
)

from briefcast import subscribers, tokens
from briefcast.config import Dispatch, Settings
from briefcast.db import get_engine
from briefcast.dispatch import dispatch_channel
from briefcast.ledger import FAILED, SENT, Ledger
from briefcast.models import RenderedEdition

FAST = Dispatch(max_attempts=4, backoff_seconds=0, max_wait_seconds=10)
EDITION = "2026-11-20"


def edition(edition_id: str = EDITION) -> RenderedEdition:
    return make_edition(
        edition_id,
        subject="Your brief — Friday",
        html=(
            "<p>Good morning %%first_name%%,</p><p>The day’s news.</p>"
            '<a href="%%view_url%%">View in browser</a> · '
            '<a href="%%unsubscribe_url%%">Unsubscribe</a>'
        ),
        text="Good morning %%first_name%%,\nThe day’s news.\nUnsubscribe: %%unsubscribe_url%%\n",
    )


@pytest.fixture
def settings(tmp_path) -> Settings:
    return gazette_settings(
        tmp_path,
        sender_email="brief@gazette.example",
        sender_name="The Gazette",
        web_base_url="https://news.gazette.example",
    )


@pytest.fixture
def ledger(settings) -> Ledger:
    return Ledger(get_engine(settings.database_url))


def readers(settings, n: int):
    return [
        subscribers.recipient(settings, f"reader{i}@example.org", EDITION, f"Reader{i} Smith")
        for i in range(n)
    ]


def channel(settings, port, recipients, **overrides) -> SmtpChannel:
    conf = SmtpSettings.model_validate(
        {"host": "127.0.0.1", "port": port, "security": "plain", "timeout_seconds": 5, **overrides}
    )
    context = ChannelContext(
        publication=settings.publication, data_dir=settings.data_dir, recipients=recipients
    )
    return SmtpChannel(conf, context)


def send(settings, sink, recipients, ledger, **overrides):
    """Dispatch edition() to recipients through the SMTP server ``sink``, as a run does."""
    return dispatch_channel(
        channel(settings, sink.port, recipients, **overrides), "smtp", edition(), ledger, FAST
    )


def test_every_recipient_gets_one_well_formed_message_with_their_own_links(settings, ledger):
    recipients = readers(settings, 120)
    secret = subscribers.link_secret(settings)
    with SmtpSink() as sink:
        report = send(settings, sink, recipients, ledger, connections=2, max_batch=50)

    assert report.delivered == 120 and report.failed == 0
    assert Counter(a for r in sink.received for a in r.rcpt_tos) == Counter(
        r.email for r in recipients
    )
    # three batches, at most two sessions each: connections are reused
    assert len(sink.sessions) <= 6
    message_ids = set()
    for received in sink.received:
        (address,) = received.rcpt_tos
        message = received.message
        assert received.mail_from == "brief@gazette.example"
        assert message.get_content_type() == "multipart/alternative"
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        assert message["To"].addresses[0].addr_spec == address
        assert message["From"].addresses[0].display_name == "The Gazette"
        assert str(message["Subject"]) == "Your brief — Friday"
        assert message["Date"].datetime.tzinfo is not None
        message_ids.add(message["Message-ID"].strip())
        link = message["List-Unsubscribe"].strip("<>")
        assert tokens.verify(secret, "unsubscribe", link.rsplit("/", 1)[1]) == address
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert f'href="{link}"' in html and f"Unsubscribe: {link}" in text
        assert f"Good morning {address.split('@')[0].capitalize()}," in text
        assert "The day’s news." in text and "The day’s news." in html
        assert 'href="https://news.gazette.example/archive/2026-11-20"' in html
    assert len(message_ids) == 120
    rows = ledger.rows(EDITION, "smtp").values()
    assert {r.state for r in rows} == {SENT}
    assert {r.receipt for r in rows} == message_ids


def test_a_450_is_retried_and_delivered_once(settings, ledger):
    recipients = readers(settings, 6)
    slow = recipients[2].email
    with SmtpSink() as sink:
        sink.reply(slow, 450)
        report = send(settings, sink, recipients, ledger)

    assert report.delivered == 6 and report.failed == 0
    assert sink.rcpt_attempts[slow] == 2
    assert len(sink.messages_to(slow)) == 1
    assert len(sink.received) == 6


def test_a_550_fails_only_that_recipient(settings, ledger):
    recipients = readers(settings, 6)
    gone = recipients[3].email
    with SmtpSink() as sink:
        sink.reply(gone, 550)
        report = send(settings, sink, recipients, ledger)

    assert report.delivered == 5 and report.failed == 1
    assert sink.rcpt_attempts[gone] == 1  # permanent: not retried
    assert sink.messages_to(gone) == []
    rows = ledger.rows(EDITION, "smtp")
    assert rows[gone].state == FAILED and "550" in rows[gone].error
    assert "no such user" in rows[gone].error
    assert all(r.state == SENT for t, r in rows.items() if t != gone)


def test_a_4xx_after_data_is_transient_and_retried(settings, ledger):
    recipients = readers(settings, 3)
    with SmtpSink() as sink:
        sink.reply(recipients[1].email, 451, at="data")
        report = send(settings, sink, recipients, ledger)
    assert report.delivered == 3
    assert Counter(a for r in sink.received for a in r.rcpt_tos) == Counter(
        r.email for r in recipients
    )


def test_a_dropped_connection_keeps_what_was_accepted_and_retries_the_rest(settings):
    recipients = readers(settings, 8)
    with SmtpSink() as sink:
        sink.drop_at(recipients[3].email)
        adapter = channel(settings, sink.port, recipients, connections=1, max_batch=8)
        adapter.plan(edition())
        outcomes = adapter.send([Delivery(r.email, r) for r in recipients])
    assert [type(o).__name__ for o in outcomes] == ["Receipt"] * 3 + ["TransientError"] * 5
    assert [a for r in sink.received for a in r.rcpt_tos] == [r.email for r in recipients[:3]]


def test_within_one_dispatch_a_drop_delivers_everyone_exactly_once(settings, ledger):
    recipients = readers(settings, 8)
    with SmtpSink() as sink:
        sink.drop_at(recipients[5].email)
        report = send(settings, sink, recipients, ledger, connections=2, max_batch=8)
    assert report.delivered == 8
    assert Counter(a for r in sink.received for a in r.rcpt_tos) == Counter(
        r.email for r in recipients
    )


def test_a_message_lost_after_data_is_in_doubt_and_not_resent(settings, ledger):
    recipients = readers(settings, 5)
    doubtful = recipients[1].email
    with SmtpSink() as sink:
        sink.drop_at(doubtful, at="data")  # the server queued it; its 250 never came
        report = send(settings, sink, recipients, ledger, connections=1)
    assert report.delivered == 4 and report.in_doubt == 1
    assert len(sink.messages_to(doubtful)) == 1  # never sent twice
    assert ledger.rows(EDITION, "smtp")[doubtful].state == "in_flight"
    assert Counter(a for r in sink.received for a in r.rcpt_tos) == Counter(
        r.email for r in recipients
    )


def test_a_refused_connection_fails_the_batch_as_transient(settings):
    recipients = readers(settings, 2)
    adapter = channel(settings, free_port(), recipients)
    adapter.plan(edition())
    with pytest.raises(TransientError, match="cannot connect"):
        adapter.send([Delivery(r.email, r) for r in recipients])


# -- TLS and AUTH -----------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1: (cert file, key file)."""
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


def test_starttls_with_login(settings, ledger, certificate, monkeypatch):
    monkeypatch.setenv("SMTP_TEST_PASSWORD", "pa55-word-xyz")
    recipients = readers(settings, 3)
    with SmtpSink(
        tls_context=server_tls(certificate), credentials=("brief", "pa55-word-xyz")
    ) as sink:
        report = send(
            settings,
            sink,
            recipients,
            ledger,
            security="starttls",
            username="brief",
            password={"env": "SMTP_TEST_PASSWORD"},
            ca_file=certificate[0],
        )
    assert report.delivered == 3
    assert sink.logins and set(sink.logins) == {"brief"}


def test_a_wrong_password_is_an_auth_error_that_does_not_show_it(
    settings, certificate, monkeypatch
):
    monkeypatch.setenv("SMTP_TEST_PASSWORD", "not-the-pa55word")
    recipients = readers(settings, 1)
    with SmtpSink(tls_context=server_tls(certificate), credentials=("brief", "right")) as sink:
        adapter = channel(
            settings,
            sink.port,
            recipients,
            security="starttls",
            username="brief",
            password={"env": "SMTP_TEST_PASSWORD"},
            ca_file=certificate[0],
        )
        adapter.plan(edition())
        with pytest.raises(AuthError) as caught:
            adapter.send([Delivery(r.email, r) for r in recipients])
    assert caught.value.status == 535
    assert "not-the-pa55word" not in f"{caught.value} {caught.value!r} {adapter.settings!r}"
    assert sink.received == []


def test_a_wrong_password_stops_the_channel_and_the_rerun_after_the_fix_delivers(
    settings, ledger, certificate, monkeypatch
):
    """Every later batch would fail the same login: no storm of failed logins
    (mail providers lock accounts for less), and nothing is stuck as failed."""
    recipients = readers(settings, 120)
    conf = {
        "security": "starttls",
        "username": "brief",
        "password": {"env": "SMTP_TEST_PASSWORD"},
        "ca_file": certificate[0],
        "connections": 2,
        "max_batch": 50,
    }
    with SmtpSink(tls_context=server_tls(certificate), credentials=("brief", "right")) as sink:
        monkeypatch.setenv("SMTP_TEST_PASSWORD", "not-the-pa55word")
        report = send(settings, sink, recipients, ledger, **conf)
        assert report.delivered == 0 and report.failed == 120
        assert sink.login_attempts <= 4  # the first batch: 2 sessions (PLAIN, LOGIN), no more
        assert "70 not attempted after:" in "; ".join(report.errors)
        assert "535" in report.as_row()["reasons"]

        monkeypatch.setenv("SMTP_TEST_PASSWORD", "right")
        rerun = send(settings, sink, recipients, ledger, **conf)
    assert rerun.delivered == 120 and rerun.failed == 0
    assert Counter(a for r in sink.received for a in r.rcpt_tos) == Counter(
        r.email for r in recipients
    )
    assert set(ledger.summary(EDITION)["smtp"]) == {SENT}


def test_implicit_tls(settings, ledger, certificate):
    recipients = readers(settings, 2)
    with SmtpSink(ssl_context=server_tls(certificate)) as sink:
        report = send(settings, sink, recipients, ledger, security="tls", ca_file=certificate[0])
    assert report.delivered == 2 and len(sink.received) == 2


def test_an_untrusted_certificate_is_refused(settings, ledger, certificate):
    recipients = readers(settings, 1)
    with SmtpSink(tls_context=server_tls(certificate)) as sink:
        report = send(settings, sink, recipients, ledger, security="starttls")
    assert report.failed == 1 and "certificate verify failed" in report.errors[0]
    assert sink.received == []


def test_starttls_required_but_not_offered(settings, ledger):
    recipients = readers(settings, 1)
    with SmtpSink() as sink:
        report = send(settings, sink, recipients, ledger, security="starttls")
    assert report.failed == 1 and "does not offer STARTTLS" in report.errors[0]
    assert sink.received == []


# -- the crash window: one message per connection, not the batch --------------------------
def test_while_a_message_is_under_way_only_it_is_claimed_and_the_rest_are_recorded(
    settings, ledger
):
    """The ledger at that moment is what a kill -9 would leave: one message in doubt."""
    recipients = readers(settings, 12)
    stuck = recipients[3].email
    reports = []
    with SmtpSink() as sink:
        arrived, release = sink.hold(stuck)
        sender = threading.Thread(
            target=lambda: reports.append(send(settings, sink, recipients, ledger, connections=2))
        )
        sender.start()
        try:
            assert arrived.wait(30), "the held message never reached DATA"

            def states():
                rows = ledger.rows(EDITION, "smtp").values()
                return Counter(r.state for r in rows)

            wait_for(lambda: states()[SENT] == 11, timeout=30, what="the other 11 to be recorded")
            rows = ledger.rows(EDITION, "smtp")
            assert [t for t, r in rows.items() if r.state == "in_flight"] == [stuck]
            assert states() == {SENT: 11, "in_flight": 1}
        finally:
            release.set()
            sender.join(30)
    assert reports[0].delivered == 12 and reports[0].in_doubt == 0
    assert len(sink.messages_to(stuck)) == 1


class RefuseSecond:
    """A handover whose second claim is refused (another run took that row)."""

    def __init__(self) -> None:
        self.claims: list[str] = []
        self.reported: list[tuple[str, object]] = []

    def reserve(self, delivery: Delivery) -> None:
        return None

    def claim(self, delivery: Delivery) -> bool:
        self.claims.append(delivery.target)
        return len(self.claims) != 2

    def done(self, delivery: Delivery, outcome) -> None:
        self.reported.append((delivery.target, outcome))


def test_a_message_whose_claim_is_refused_is_abandoned_before_the_end_of_data(settings):
    recipients = readers(settings, 4)
    handover = RefuseSecond()
    with SmtpSink() as sink:
        smtp = channel(settings, sink.port, recipients, connections=1)
        smtp.plan(edition())
        batch = [Delivery(r.email, r) for r in recipients]
        outcomes = smtp.send(batch, handover)
        smtp.close()
    second = recipients[1].email
    assert handover.claims == [r.email for r in recipients[:2]]  # stopped after the refusal
    assert sink.messages_to(second) == []  # the server discarded it: no final "."
    assert [r.rcpt_tos for r in sink.received] == [[recipients[0].email]]
    assert [t for t, _ in handover.reported] == [recipients[0].email]  # reported at once
    assert all(isinstance(o, TransientError) for o in outcomes[2:])  # for the next attempt


def test_a_stop_lets_the_message_on_the_wire_finish_and_claims_no_more(settings, ledger):
    """SIGTERM mid-batch: the held message is answered and recorded; the others stay pending,
    none in doubt, and the next run sends each of them once."""
    recipients = readers(settings, 20)
    stuck = recipients[2].email
    stop = threading.Event()
    reports = []
    with SmtpSink() as sink:
        arrived, release = sink.hold(stuck)

        def run() -> None:
            smtp = channel(settings, sink.port, recipients, connections=2)
            reports.append(dispatch_channel(smtp, "smtp", edition(), ledger, FAST, stop=stop))

        sender = threading.Thread(target=run)
        sender.start()
        assert arrived.wait(30), "the held message never reached the end of DATA"
        stop.set()
        release.set()
        sender.join(30)
        stopped = reports[0]
        states = Counter(r.state for r in ledger.rows(EDITION, "smtp").values())
        assert stopped.stopped and stopped.in_doubt == 0
        assert len(sink.messages_to(stuck)) == 1
        assert states == {SENT: len(sink.received), "pending": 20 - len(sink.received)}
        assert len(sink.received) < 20

        rerun = send(settings, sink, recipients, ledger)
    assert rerun.delivered == 20 - stopped.delivered and rerun.skipped == stopped.delivered
    assert Counter(a for r in sink.received for a in r.rcpt_tos) == Counter(
        r.email for r in recipients
    )


def test_batch_claims_are_an_explicit_opt_in_that_warns_and_still_sends_each_once(
    settings, ledger, caplog
):
    recipients = readers(settings, 30)
    with SmtpSink() as sink:
        report = send(settings, sink, recipients, ledger, claims="batch", max_batch=10)
    assert report.delivered == 30
    assert sorted(a for r in sink.received for a in r.rcpt_tos) == sorted(
        r.email for r in recipients
    )
    assert 'claims = "batch": a crash leaves up to 10 messages in doubt' in caplog.text


class WriteLog(Ledger):
    """A ledger that notes each claim and each outcome in the order they are written."""

    def __init__(self, engine, fail_outcomes: bool = False) -> None:
        super().__init__(engine)
        self.writes: list[tuple[str, str]] = []  # ("claim" | "outcome", target)
        self.fail_outcomes = fail_outcomes
        self.ids: dict[int, str] = {}

    def claim_targets(self, edition_id, channel, targets, *, recording=None):
        if recording is not None and self.fail_outcomes:
            raise RuntimeError("disk I/O error")
        got = super().claim_targets(edition_id, channel, targets, recording=recording)
        self.ids.update({row_id: target for target, row_id in got.items()})
        if recording is not None:
            self.writes += [("outcome", self.ids[row_id]) for row_id, _ in recording.sent]
        self.writes += [("claim", target) for target in got]
        return got


def test_on_one_connection_each_outcome_is_written_before_the_next_claim(settings):
    """What a kill -9 leaves: never a delivered message still in flight behind the next one."""
    recipients = readers(settings, 6)
    ledger = WriteLog(get_engine(settings.database_url))
    with SmtpSink() as sink:
        report = send(settings, sink, recipients, ledger, connections=1)
    assert report.delivered == 6
    emails = [r.email for r in recipients]
    assert [target for kind, target in ledger.writes if kind == "claim"] == emails
    for before, after in itertools.pairwise(emails):
        assert ledger.writes.index(("outcome", before)) < ledger.writes.index(("claim", after))
    states = Counter(r.state for r in ledger.rows(EDITION, "smtp").values())
    assert states == {SENT: 6}


def test_a_delivered_message_whose_outcome_cannot_be_written_is_in_doubt(settings):
    """Sent, but the ledger could not say so: in doubt (in flight), counted, never resent."""
    recipients = readers(settings, 3)
    engine = get_engine(settings.database_url)
    with SmtpSink() as sink:
        report = send(settings, sink, recipients, WriteLog(engine, fail_outcomes=True))
        assert len(sink.received) >= 1
        assert report.delivered == 0 and report.in_doubt == len(sink.received)
        assert any("outcome not recorded: disk I/O error" in note for note in report.errors)
        rows = Ledger(engine).rows(EDITION, "smtp")
        in_flight = {t for t, r in rows.items() if r.state == "in_flight"}
        assert in_flight == {a for m in sink.received for a in m.rcpt_tos}

        rerun = send(settings, sink, recipients, Ledger(engine))
        assert rerun.in_doubt == len(in_flight) and rerun.delivered == 3 - len(in_flight)
        assert Counter(a for m in sink.received for a in m.rcpt_tos) == Counter(
            r.email for r in recipients
        )
