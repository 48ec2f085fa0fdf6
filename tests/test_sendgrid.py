"""The SendGrid channel against a fake SendGrid that enforces the documented contract."""

from __future__ import annotations

import logging
import socket
import time
from collections import Counter

import pytest
from briefcast.channels.base import ChannelContext, Delivery, InDoubt, Recipient
from briefcast.channels.errors import AuthError, PermanentError, RateLimited, TransientError
from briefcast.channels.sendgrid_mail import SendGridChannel, SendGridSettings
from fakes.sendgrid_server import FakeSendGrid
from sendgrid import SendGridAPIClient
from support import gazette_settings, make_edition, self_signed_certificate, server_tls

from briefcast import subscribers, tokens
from briefcast.config import Dispatch, Settings
from briefcast.db import get_engine
from briefcast.dispatch import dispatch_channel
from briefcast.ledger import FAILED, SENT, Ledger
from briefcast.models import RenderedEdition

API_KEY = "SG.unit-test-key-5f2c9e"
FAST = Dispatch(max_attempts=4, backoff_seconds=0, max_wait_seconds=10)


def edition(edition_id: str = "2026-11-20") -> RenderedEdition:
    return make_edition(
        edition_id,
        subject="Your brief",
        html=(
            "<p>Good morning %%first_name%%,</p><p>The day's news.</p>"
            '<a href="%%view_url%%">View in browser</a> · '
            '<a href="%%unsubscribe_url%%">Unsubscribe</a>'
        ),
        text="Good morning %%first_name%%,\nThe day's news.\nUnsubscribe: %%unsubscribe_url%%\n",
    )


@pytest.fixture
def settings(tmp_path) -> Settings:
    return gazette_settings(
        tmp_path, sender_name="The Gazette", web_base_url="https://news.gazette.example"
    )


@pytest.fixture
def fake():
    with FakeSendGrid(API_KEY) as server:
        yield server


@pytest.fixture(autouse=True)
def api_key_env(monkeypatch):
    monkeypatch.setenv("SENDGRID_TEST_KEY", API_KEY)


def channel(settings, fake, recipients, key_env="SENDGRID_TEST_KEY", test_send=False, **overrides):
    conf = SendGridSettings.model_validate(
        {"api_key": {"env": key_env}, "base_url": fake.url, "timeout_seconds": 2, **overrides}
    )
    context = ChannelContext(
        publication=settings.publication,
        data_dir=settings.data_dir,
        recipients=recipients,
        test_send=test_send,
    )
    return SendGridChannel(conf, context)


def few(settings, n=3, edition_id="2026-11-20"):
    return [
        subscribers.recipient(settings, f"reader{i}@example.org", edition_id, f"Reader {i}")
        for i in range(n)
    ]


def send(settings, fake, recipients, ledger, *, sleep=time.sleep, **overrides):
    """Dispatch edition() to recipients through the fake SendGrid, as a run does."""
    return dispatch_channel(
        channel(settings, fake, recipients, **overrides),
        "sendgrid",
        edition(),
        ledger,
        FAST,
        sleep=sleep,
    )


def test_2500_subscribers_in_three_requests_each_with_their_own_links(settings, fake):
    engine = get_engine(settings.database_url)
    csv_path = settings.data_dir.parent / "list.csv"
    csv_path.write_text(
        "email,name\n" + "".join(f"reader{i}@example.org,Reader {i}\n" for i in range(2499))
    )
    assert subscribers.import_csv(engine, csv_path).imported == 2499
    subscribers.add(engine, "ann@example.org", name="<Ann&amp;> Smith")
    recipients = subscribers.recipients_for(engine, settings, "2026-11-20")
    ledger = Ledger(engine)

    report = send(settings, fake, recipients, ledger)

    assert report.delivered == 2500 and report.failed == 0
    assert sorted(c.recipients for c in fake.calls) == [500, 1000, 1000]  # side by side
    assert [c.status for c in fake.calls] == [202, 202, 202]
    per_address = Counter(m.to for m in fake.delivered)
    assert len(per_address) == 2500 and set(per_address.values()) == {1}
    secret = subscribers.link_secret(settings)
    unsubscribe_links = set()
    for message in fake.delivered:
        link = message.headers["List-Unsubscribe"].strip("<>")
        assert link.startswith("https://news.gazette.example/u/")
        assert tokens.verify(secret, "unsubscribe", link.rsplit("/", 1)[1]) == message.to
        assert f'href="{link}"' in message.html and f"Unsubscribe: {link}" in message.text
        assert 'href="https://news.gazette.example/archive/2026-11-20"' in message.html
        assert message.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message.custom_args["edition_id"] == "2026-11-20"
        assert message.subject == "Your brief"
        unsubscribe_links.add(link)
    assert len(unsubscribe_links) == 2500
    ann = next(m for m in fake.delivered if m.to == "ann@example.org")
    assert "Good morning &lt;Ann&amp;amp;&gt;," in ann.html  # escaped once, in HTML only
    assert "Good morning <Ann&amp;>," in ann.text
    assert all(m.categories == ["daily-brief"] for m in fake.delivered)
    rows = ledger.rows("2026-11-20", "sendgrid")
    assert {r.state for r in rows.values()} == {SENT}
    message_ids = {m.message_id for m in fake.delivered}
    assert len(message_ids) == 3 and {r.receipt for r in rows.values()} == message_ids

    again = send(settings, fake, recipients, ledger)
    assert (again.delivered, again.skipped) == (0, 2500)
    assert len(fake.calls) == 3


def test_a_429_is_waited_out_until_the_reset_then_sent_once(settings, fake):
    recipients = few(settings, 5)
    fake.rate_limit_next(1, reset_in=1.5)
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # the dispatcher's wait, on the fake's clock
        waits.append(seconds)
        fake.let_time_pass(seconds)

    report = send(
        settings, fake, recipients, Ledger(get_engine(settings.database_url)), sleep=sleep
    )

    assert report.delivered == 5
    # The fake keeps answering 429 until the reset: one 429 means the wait was long enough.
    assert [c.status for c in fake.calls] == [429, 202]
    assert len(waits) == 1 and 0.4 <= waits[0] <= 2.5
    assert sorted(m.to for m in fake.delivered) == sorted(r.email for r in recipients)


@pytest.mark.parametrize(
    "script",
    [lambda fake: fake.fail_next(2, 503), lambda fake: fake.fail_next(1, 500)],
    ids=["503-twice", "500"],
)
def test_transient_failures_are_retried_and_deliver_once(settings, fake, script):
    recipients = few(settings, 4)
    script(fake)
    report = send(settings, fake, recipients, Ledger(get_engine(settings.database_url)))
    assert report.delivered == 4 and report.failed == 0
    assert fake.calls[-1].status == 202
    assert Counter(m.to for m in fake.delivered) == Counter(r.email for r in recipients)


UNKNOWN_FATE = {
    # SendGrid answers after the 2 s client timeout (the fake sends nothing; we cannot know)
    "read-timeout": (lambda fake: fake.delay_next(1, seconds=4), 0, "did not answer within 2s"),
    "dropped": (lambda fake: fake.drop_next(1), 0, "Server disconnected without sending"),
    "ghost": (lambda fake: fake.ghost_next(1), 1, "Server disconnected without sending"),
    "garbled": (lambda fake: fake.ghost_next(1, garble=True), 1, "illegal status line"),
}


@pytest.mark.parametrize("fault", list(UNKNOWN_FATE))
def test_a_request_of_unknown_fate_is_in_doubt_and_never_sent_again(settings, fake, fault):
    script, went_out, cause = UNKNOWN_FATE[fault]
    recipients = few(settings, 4)
    ledger = Ledger(get_engine(settings.database_url))
    script(fake)

    report = send(settings, fake, recipients, ledger)

    assert (report.delivered, report.failed, report.in_doubt) == (0, 0, 4)
    assert not report.ok
    assert len(fake.calls) == 1  # not retried: a retry could mail everyone twice
    assert len(fake.delivered) == 4 * went_out
    assert {r.state for r in ledger.rows("2026-11-20", "sendgrid").values()} == {"in_flight"}
    assert "in doubt, it may have gone out" in report.errors[0] and cause in report.errors[0]
    assert "after the request went out" in report.errors[0]

    rerun = send(settings, fake, recipients, ledger)
    assert len(fake.calls) == 1 and len(fake.delivered) == 4 * went_out
    assert (rerun.delivered, rerun.in_doubt) == (0, 4)
    assert "in doubt, it may have gone out" in rerun.errors[0] and cause in rerun.errors[0]


def test_several_requests_are_in_flight_and_each_recipient_gets_one_mail(settings, fake):
    fake.latency = 0.3
    recipients = few(settings, 4500)
    report = send(settings, fake, recipients, Ledger(get_engine(settings.database_url)))
    assert report.delivered == 4500 and report.ok
    assert sorted(c.recipients for c in fake.calls) == [500, 1000, 1000, 1000, 1000]
    # several at once, never above the default
    assert 1 < fake.peak_in_flight <= SendGridChannel.concurrency
    assert Counter(m.to for m in fake.delivered) == Counter(r.email for r in recipients)


def test_each_sender_keeps_its_connection_from_one_request_to_the_next(settings, fake):
    fake.latency = 0.05
    recipients = few(settings, 24000)
    adapter = channel(settings, fake, recipients)
    ledger = Ledger(get_engine(settings.database_url))
    report = dispatch_channel(adapter, "sendgrid", edition(), ledger, FAST, sleep=time.sleep)
    adapter.close()

    assert report.delivered == 24000 and report.ok and len(fake.calls) == 24
    # a connection (and over HTTPS a TLS session) per sender, not one per request
    assert 1 <= fake.connections <= SendGridChannel.concurrency
    assert Counter(m.to for m in fake.delivered) == Counter(r.email for r in recipients)


def test_a_connection_the_server_closed_while_idle_is_replaced_not_in_doubt(settings, fake):
    recipients = few(settings, 4)
    adapter = channel(settings, fake, recipients)
    adapter.plan(edition())
    fake.close_idle_next(1)
    first = adapter.send([Delivery(r.email, r) for r in recipients[:2]])
    assert fake.idle_closed.wait(5)

    second = adapter.send([Delivery(r.email, r) for r in recipients[2:]])
    adapter.close()

    assert [type(o).__name__ for o in first + second] == ["Receipt"] * 4
    assert [c.status for c in fake.calls] == [202, 202] and fake.connections == 2
    assert sorted(m.to for m in fake.delivered) == sorted(r.email for r in recipients)


def test_behind_a_proxy_from_the_environment_requests_go_through_it(settings, fake, monkeypatch):
    for name in ("no_proxy", "NO_PROXY", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", fake.url)  # the fake answers the proxied request itself
    recipients = few(settings, 2)
    # a name that resolves nowhere: only the proxy can carry the request
    adapter = channel(settings, fake, recipients, base_url="http://sendgrid-api.invalid")
    adapter.plan(edition())

    outcomes = adapter.send([Delivery(r.email, r) for r in recipients])
    adapter.close()

    assert [type(o).__name__ for o in outcomes] == ["Receipt", "Receipt"]
    assert sorted(m.to for m in fake.delivered) == sorted(r.email for r in recipients)


def test_over_https_each_sender_keeps_one_verified_connection(settings, tmp_path, monkeypatch):
    certificate = self_signed_certificate(tmp_path)
    # trusted as an operator trusts a corporate CA: verification stays on
    monkeypatch.setenv("SSL_CERT_FILE", certificate[0])
    with FakeSendGrid(API_KEY, tls=server_tls(certificate)) as https:
        recipients = few(settings, 3)
        adapter = channel(settings, https, recipients)
        adapter.plan(edition())
        outcomes = [adapter.send([Delivery(r.email, r)]) for r in recipients]
        adapter.close()

        assert https.url.startswith("https://")
        assert [type(o).__name__ for [o] in outcomes] == ["Receipt"] * 3
        assert https.connections == 1
        assert sorted(m.to for m in https.delivered) == sorted(r.email for r in recipients)


def test_a_certificate_nobody_vouches_for_is_refused_before_anything_is_sent(
    settings, tmp_path, monkeypatch
):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with FakeSendGrid(API_KEY, tls=server_tls(self_signed_certificate(tmp_path))) as https:
        recipients = few(settings, 2)
        adapter = channel(settings, https, recipients)
        adapter.plan(edition())
        with pytest.raises(TransientError) as caught:  # never arrived: retried, not in doubt
            adapter.send([Delivery(r.email, r) for r in recipients])
        adapter.close()

        assert "cannot reach SendGrid" in str(caught.value)
        assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
        assert https.calls == [] and https.delivered == []


def test_a_429_makes_every_sender_wait_not_only_the_one_that_got_it(settings, fake):
    fake.latency = 0.2
    recipients = few(settings, 12000)
    fake.pass_next(3)
    fake.rate_limit_next(1, reset_in=1.5)  # the 4th request, with others on the wire

    report = send(settings, fake, recipients, Ledger(get_engine(settings.database_url)))

    assert report.delivered == 12000 and report.ok
    in_flight = SendGridChannel.concurrency
    limited = [c for c in fake.calls if c.status == 429]
    assert 1 <= len(limited) <= in_flight  # only those already on the wire hit the limit
    answered, reset = limited[0].at + fake.latency, limited[0].at + 1.5
    early = [c for c in fake.calls if answered + 0.1 < c.at < reset - 0.05]
    # Once one sender got the 429, no sender made a new request until the reset: what came
    # in meanwhile is at most the requests already on their way, never a sender retrying
    # every 0.2 s on its own.
    assert len({id(c) for c in [*early, *limited]}) <= in_flight
    assert Counter(m.to for m in fake.delivered) == Counter(r.email for r in recipients)


def test_a_permanent_400_is_reported_with_sendgrids_message_and_not_retried(settings, fake):
    recipients = few(settings, 3)
    fake.fail_next(1, 400, "The from address does not match a verified Sender Identity.")
    ledger = Ledger(get_engine(settings.database_url))

    report = send(settings, fake, recipients, ledger)

    assert report.failed == 3 and report.delivered == 0
    assert len(fake.calls) == 1
    assert all("does not match a verified Sender Identity" in e for e in report.errors)
    rows = ledger.rows("2026-11-20", "sendgrid").values()
    assert {r.state for r in rows} == {FAILED}
    assert all("verified Sender Identity" in r.error for r in rows)


def test_the_contracts_own_400_for_a_duplicate_address_is_mapped(settings, fake):
    ann = subscribers.recipient(settings, "ann@example.org", "2026-11-20")
    adapter = channel(settings, fake, [ann])
    adapter.plan(edition())
    with pytest.raises(PermanentError) as caught:
        adapter.send([Delivery("ann@example.org", ann), Delivery("ANN@example.org", ann)])
    assert caught.value.status == 400
    assert "We found the first duplicate instance of [ann@example.org]" in str(caught.value)
    assert fake.delivered == []


def test_plan_deduplicates_addresses_case_insensitively(settings, fake):
    ann = subscribers.recipient(settings, "ann@example.org", "2026-11-20")
    ann_upper = Recipient("Ann@Example.org", "", ann.unsubscribe_url, ann.view_url)
    adapter = channel(settings, fake, [ann, ann_upper])
    assert [d.target for d in adapter.plan(edition())] == ["ann@example.org"]


def test_a_401_never_shows_the_api_key(settings, fake, monkeypatch, caplog):
    monkeypatch.setenv("WRONG_KEY", "SG.wrong-key-0042-secret")
    caplog.set_level(logging.DEBUG)
    recipients = few(settings, 2)
    adapter = channel(settings, fake, recipients, key_env="WRONG_KEY")
    adapter.plan(edition())
    with pytest.raises(AuthError) as caught:
        adapter.send([Delivery(r.email, r) for r in recipients])
    error = caught.value
    assert error.status == 401 and "authorization required" in str(error)
    assert fake.calls[0].authorization == "Bearer SG.wrong-key-0042-secret"  # it was sent...
    shown = [str(error), repr(error), str(error.__cause__), repr(error.__cause__)]
    shown += [repr(adapter.settings), caplog.text]
    assert all("wrong-key-0042" not in text for text in shown)  # ...but never shown

    report = dispatch_channel(
        adapter, "sendgrid", edition(), Ledger(get_engine(settings.database_url)), FAST
    )
    assert report.failed == 2 and not any("wrong-key" in e for e in report.errors)


def test_a_refused_key_stops_the_channel_and_the_rerun_after_the_fix_delivers(
    settings, fake, monkeypatch
):
    engine = get_engine(settings.database_url)
    recipients = few(settings, 2001)
    ledger = Ledger(engine)
    monkeypatch.setenv("WRONG_KEY", "SG.wrong-key-0042-secret")
    adapter = channel(settings, fake, recipients, key_env="WRONG_KEY")
    report = dispatch_channel(adapter, "sendgrid", edition(), ledger, FAST)
    assert report.delivered == 0 and report.failed == 2001
    assert [call.status for call in fake.calls] == [401]  # not once per batch
    assert "1001 not attempted after: SendGrid 401" in "; ".join(report.errors)

    # The operator fixes the key and runs the edition again: everyone gets it, once.
    rerun = send(settings, fake, recipients, ledger)
    assert rerun.delivered == 2001 and rerun.failed == 0 and rerun.skipped == 0
    assert Counter(m.to for m in fake.delivered) == Counter(r.email for r in recipients)
    assert set(ledger.summary("2026-11-20")["sendgrid"]) == {SENT}


def test_an_idn_domain_is_sent_in_punycode(settings, fake):
    recipients = [subscribers.recipient(settings, "leitor@bücher.example", "2026-11-20", "Jürgen")]
    ledger = Ledger(get_engine(settings.database_url))
    report = send(settings, fake, recipients, ledger)
    assert report.delivered == 1
    assert [(m.to, m.name) for m in fake.delivered] == [("leitor@xn--bcher-kva.example", "Jürgen")]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


STATUS_TABLE = [
    (400, PermanentError, "invalid request"),
    (401, AuthError, "authorization required"),
    (403, AuthError, "access forbidden"),
    (404, PermanentError, "not found"),
    (405, PermanentError, "method not allowed"),
    (413, PermanentError, "content too large"),
    (415, PermanentError, "unsupported media type"),
    (500, TransientError, "internal server error"),
    (502, TransientError, "bad gateway"),
    (503, TransientError, "service unavailable"),
    (504, TransientError, "gateway timeout"),
]


@pytest.mark.parametrize(("status", "kind", "message"), STATUS_TABLE)
def test_every_documented_status_maps_into_the_error_tree(settings, fake, status, kind, message):
    recipients = few(settings, 1)
    adapter = channel(settings, fake, recipients)
    adapter.plan(edition())
    fake.fail_next(1, status, message)
    with pytest.raises(kind) as caught:
        adapter.send([Delivery(r.email, r) for r in recipients])
    assert type(caught.value) is kind
    assert caught.value.status == status and message in str(caught.value)
    assert caught.value.channel == "sendgrid"


def test_429_carries_the_wait_until_x_ratelimit_reset(settings, fake):
    recipients = few(settings, 1)
    adapter = channel(settings, fake, recipients)
    adapter.plan(edition())
    fake.rate_limit_next(1, reset_in=30)
    with pytest.raises(RateLimited) as caught:
        adapter.send([Delivery(r.email, r) for r in recipients])
    assert 28 <= caught.value.retry_after <= 31
    assert "too many requests" in str(caught.value)


@pytest.mark.parametrize("failure", ["refused", "no-such-host"])
def test_a_request_that_never_left_is_transient(settings, fake, failure):
    recipients = few(settings, 1)
    base_url = {
        "refused": f"http://127.0.0.1:{_closed_port()}",
        "no-such-host": "http://sendgrid.invalid",
    }[failure]
    adapter = channel(settings, fake, recipients, base_url=base_url, timeout_seconds=0.5)
    adapter.plan(edition())
    with pytest.raises(TransientError) as caught:
        adapter.send([Delivery(r.email, r) for r in recipients])
    assert type(caught.value) is TransientError
    assert "cannot reach SendGrid" in str(caught.value)


@pytest.mark.parametrize("failure", ["timeout", "dropped", "ghost"])
def test_a_request_that_left_without_an_answer_is_in_doubt(settings, fake, failure):
    recipients = few(settings, 2)
    adapter = channel(settings, fake, recipients, timeout_seconds=0.5)
    adapter.plan(edition())
    {"timeout": lambda: fake.delay_next(1, seconds=3), "dropped": lambda: fake.drop_next(1)}.get(
        failure, lambda: fake.ghost_next(1)
    )()
    outcomes = adapter.send([Delivery(r.email, r) for r in recipients])
    assert [type(o) for o in outcomes] == [InDoubt, InDoubt]
    if failure == "timeout":
        assert "did not answer within 0.5s after the request went out" in outcomes[0].reason


def test_sandbox_mode_gets_200_and_nothing_is_delivered(settings, fake):
    recipients = few(settings, 2)
    ledger = Ledger(get_engine(settings.database_url))
    report = send(settings, fake, recipients, ledger, sandbox_mode=True)
    assert report.delivered == 0 and report.held == 2 and report.ok
    assert "2 held back: sandbox mode" in report.as_row()["reasons"]
    assert [c.status for c in fake.calls] == [200]
    assert fake.delivered == [] and len(fake.sandboxed) == 1
    assert fake.sandboxed[0]["mail_settings"]["sandbox_mode"]["enable"] is True

    # Trying it in the sandbox first does not stop the live run from delivering.
    live = send(settings, fake, recipients, ledger)
    assert live.delivered == 2 and live.skipped == 0
    assert sorted(m.to for m in fake.delivered) == sorted(r.email for r in recipients)


def test_a_test_send_is_marked_in_the_subject(settings, fake):
    recipients = few(settings, 1)
    adapter = channel(settings, fake, recipients, test_send=True)
    dispatch_channel(
        adapter,
        "sendgrid",
        edition("2026-11-20-test"),
        Ledger(get_engine(settings.database_url)),
        FAST,
    )
    assert [m.subject for m in fake.delivered] == ["[TEST] Your brief"]
    assert fake.delivered[0].custom_args["test_send"] == "true"


def test_configured_extras_reach_sendgrid(settings, fake):
    recipients = few(settings, 1)
    adapter = channel(
        settings,
        fake,
        recipients,
        categories=["brief", "morning"],
        unsubscribe_mailto="leave@gazette.example",
        asm_group_id=42,
        from_email="news@gazette.example",
    )
    dispatch_channel(
        adapter, "sendgrid", edition(), Ledger(get_engine(settings.database_url)), FAST
    )
    message = fake.delivered[0]
    assert message.categories == ["brief", "morning"]
    assert message.asm_group_id == 42 and message.from_email == "news@gazette.example"
    assert message.headers["List-Unsubscribe"] == (
        f"<{recipients[0].unsubscribe_url}>, <mailto:leave@gazette.example?subject=unsubscribe>"
    )


def test_settings_refuse_more_than_ten_categories():
    with pytest.raises(ValueError, match="at most 10 categories"):
        SendGridSettings.model_validate(
            {"api_key": {"env": "SENDGRID_TEST_KEY"}, "categories": [f"c{i}" for i in range(11)]}
        )


@pytest.mark.parametrize("base_url", ["api.sendgrid.com", "ftp://api.sendgrid.com", "https://"])
def test_settings_refuse_a_base_url_that_is_not_an_http_url(base_url):
    with pytest.raises(ValueError, match="must be an http:// or https:// URL"):
        SendGridSettings.model_validate(
            {"api_key": {"env": "SENDGRID_TEST_KEY"}, "base_url": base_url}
        )


def test_the_fake_enforces_the_1000_recipient_cap():
    with FakeSendGrid(API_KEY) as server:
        client = SendGridAPIClient(API_KEY, host=server.url)
        body = {
            "from": {"email": "a@example.org"},
            "subject": "s",
            "content": [{"type": "text/plain", "value": "x"}],
            "personalizations": [
                {"to": [{"email": f"r{i}-{j}@example.org"} for j in range(2)]} for i in range(501)
            ],
        }
        with pytest.raises(Exception) as caught:
            client.send(body)
        assert caught.value.status_code == 400
        assert b"may not exceed 1000" in caught.value.body


def test_configured_through_the_registry_and_the_pipeline(tmp_path, fake):
    from briefcast.channels.registry import load_registry

    from briefcast import pipeline

    assert load_registry().get("sendgrid") is SendGridChannel
    settings = Settings.model_validate(
        {
            "publication": {
                "name": "G",
                "site_url": "https://g.example",
                "postal_address": "1 Main St",
                "sender_email": "brief@g.example",
                "web_base_url": "https://g.example",
            },
            "data_dir": str(tmp_path / "data"),
            "channels": {
                "sendgrid": {"api_key": {"env": "SENDGRID_TEST_KEY"}, "base_url": fake.url}
            },
        }
    )
    engine = get_engine(settings.database_url)
    subscribers.add(engine, "a@example.org")
    subscribers.add(engine, "b@example.org")
    recipients = subscribers.recipients_for(engine, settings, "2026-11-20")

    report = pipeline.deliver(settings, edition(), "sendgrid", recipients)

    assert report.delivered == 2
    assert sorted(m.to for m in fake.delivered) == ["a@example.org", "b@example.org"]


def test_a_copy_without_an_unsubscribe_link_gets_no_one_click_header(settings, fake):
    # A test copy to a colleague: no link, so no RFC 8058 pair (a POST header alone is wrong).
    proof = Recipient("editor@example.org", "Ed Itor")
    adapter = channel(settings, fake, [proof], test_send=True)
    plain = make_edition(
        "2026-11-20-test", subject="Proof", html="<p>Hi %%first_name%%</p>", text="Hi\n"
    )
    report = dispatch_channel(
        adapter, "sendgrid", plain, Ledger(get_engine(settings.database_url)), FAST
    )
    assert report.delivered == 1, report.errors
    [message] = fake.delivered
    assert message.to == "editor@example.org"
    assert "List-Unsubscribe" not in message.headers
    assert "List-Unsubscribe-Post" not in message.headers
