"""Deliveries in doubt settle themselves where the provider lets us look.

X: before sending, the account's own posts are read (the fake serves them from what
it accepted, with t.co links and escaped text as X shows them); a post in doubt that
is there is marked sent with its id, and the thread goes on under it. SendGrid: the
Event Webhook's processed/delivered events (built by the fake from what it accepted)
settle the rows of a run that was killed after its request went out. Telegram: left
to the operator, and ``briefcast ledger reconcile`` says where to look.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from briefcast.channels.base import ChannelContext
from briefcast.channels.sendgrid_mail import SendGridChannel, SendGridSettings
from briefcast.channels.x_posts import XChannel, XSettings
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fakes.sendgrid_server import FakeSendGrid
from fakes.x_server import Account, FakeX, drop
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner
from web_support import make_settings

from briefcast import pipeline, subscribers
from briefcast.cli import app
from briefcast.config import Dispatch, load_settings
from briefcast.db import get_engine
from briefcast.dispatch import dispatch_channel
from briefcast.ledger import IN_FLIGHT, SENT, Ledger
from briefcast.models import Article, EmailVariant, RenderedEdition, XPost
from briefcast.web.app import create_app
from briefcast.web.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER

EDITION = "2026-11-20"
NO_WAIT = Dispatch(backoff_seconds=0, max_wait_seconds=5)
ACCOUNT = Account("ck-reconcile", "cs-reconcile-secret", "at-77-reconcile", "ats-reconcile-secret")
SENDGRID_KEY = "SG.reconcile-test-key"


# -- X ------------------------------------------------------------------------------
def thread(n: int = 6) -> RenderedEdition:
    """A thread whose posts carry links and an ampersand, as X rewrites them when shown."""
    articles = [
        Article(
            key=f"https://gazette.example/{EDITION}/story-{i}",
            url=f"https://gazette.example/{EDITION}/story-{i}",
            title=f"Story {i}",
            source="Gazette",
            published=datetime(2026, 11, 20, 6, tzinfo=UTC),
        )
        for i in range(1, n + 1)
    ]
    texts = [f"Story {i}: tides & trains <today> {a.url}" for i, a in enumerate(articles, 1)]
    return RenderedEdition(
        edition_id=EDITION,
        edition_date=date(2026, 11, 20),
        publication="The Test Gazette",
        site_url="https://gazette.example",
        articles=articles,
        email=EmailVariant(subject="s", preheader="p", html="<p>h</p>", text="t"),
        x_posts=[
            XPost(text=t, weighted_length=len(t), article_key=a.key)
            for t, a in zip(texts, articles, strict=True)
        ],
        x_thread=True,
        telegram_messages=[],
    )


def x_channel(fake: FakeX, ledger: Ledger) -> XChannel:
    settings = XSettings(
        consumer_key=SecretStr(ACCOUNT.consumer_key),
        consumer_secret=SecretStr(ACCOUNT.consumer_secret),
        access_token=SecretStr(ACCOUNT.access_token),
        access_token_secret=SecretStr(ACCOUNT.access_token_secret),
        base_url=fake.url,
        timeout_seconds=2,
    )
    context = ChannelContext(
        publication=None, data_dir=Path("."), extra={"ledger": ledger, "channel": "x"}
    )
    return XChannel(settings, context)


def dispatch_x(fake: FakeX, edition: RenderedEdition, ledger: Ledger):
    adapter = x_channel(fake, ledger)
    try:
        return dispatch_channel(adapter, "x", edition, ledger, NO_WAIT, sleep=lambda _: None)
    finally:
        adapter.close()


@pytest.fixture
def fake_x():
    with FakeX(ACCOUNT) as server:
        yield server


@pytest.fixture
def ledger(tmp_path):
    return Ledger(get_engine(f"sqlite:///{tmp_path / 'ledger.db'}"))


def test_a_post_in_doubt_that_reached_x_is_found_and_the_thread_goes_on_under_it(fake_x, ledger):
    edition = thread(6)
    fake_x.on_call(3, drop(create_post=True))  # X made post 3; our answer never came
    first = dispatch_x(fake_x, edition, ledger)
    assert (first.delivered, first.in_doubt) == (2, 1), first.errors
    assert len(fake_x.posts) == 3

    rerun = dispatch_x(fake_x, edition, ledger)

    assert (rerun.skipped, rerun.delivered, rerun.in_doubt, rerun.failed) == (3, 3, 0, 0)
    assert [p.text for p in fake_x.posts] == [p.text for p in edition.x_posts]  # each once
    assert fake_x.posts[3].reply_to == fake_x.posts[2].id  # post 4 answers the found post 3
    assert [p.reply_to for p in fake_x.posts[1:]] == [p.id for p in fake_x.posts[:-1]]
    row = ledger.rows(EDITION, "x")["post-3"]
    assert (row.state, row.receipt) == (SENT, fake_x.posts[2].id)


def test_a_post_in_doubt_behind_a_hundred_newer_posts_is_found_on_a_later_page(fake_x, ledger):
    edition = thread(2)
    fake_x.on_call(1, drop(create_post=True))
    dispatch_x(fake_x, edition, ledger)
    for n in range(130):  # the newsroom kept posting by hand meanwhile
        fake_x.seed_post(f"Live update {n} from the harbour")

    report = dispatch_x(fake_x, edition, ledger)

    assert (report.skipped, report.delivered, report.in_doubt) == (1, 1, 0), report.errors
    assert ledger.rows(EDITION, "x")["post-1"].receipt == fake_x.posts[0].id
    assert fake_x.posts[-1].reply_to == fake_x.posts[0].id
    assert fake_x.timeline_reads == 2  # 100 a page


def test_a_run_with_nothing_in_doubt_never_reads_the_timeline(fake_x, ledger):
    report = dispatch_x(fake_x, thread(3), ledger)

    assert report.delivered == 3
    assert fake_x.timeline_reads == 0  # a read costs quota: only when something may have gone


def test_a_post_in_doubt_that_is_not_on_the_account_stays_in_doubt(fake_x, ledger):
    edition = thread(3)
    killed = Ledger(ledger.engine, run_id="killed-run")
    killed.ensure(EDITION, "x", ["post-1", "post-2", "post-3"])
    killed.claim([killed.rows(EDITION, "x")["post-1"].id])  # killed before the request left

    report = dispatch_x(fake_x, edition, ledger)

    assert (report.delivered, report.in_doubt) == (0, 1), report.errors
    assert fake_x.posts == [] and fake_x.timeline_reads == 1
    assert ledger.rows(EDITION, "x")["post-1"].state == IN_FLIGHT


def test_an_account_that_may_not_read_its_timeline_leaves_the_post_in_doubt(fake_x, ledger, caplog):
    edition = thread(3)
    fake_x.on_call(1, drop(create_post=True))
    dispatch_x(fake_x, edition, ledger)
    fake_x.timeline_forbidden = True  # X's free tier

    with caplog.at_level(logging.WARNING):
        report = dispatch_x(fake_x, edition, ledger)

    assert (report.delivered, report.in_doubt) == (0, 1)
    assert len(fake_x.posts) == 1
    assert "X does not let this app read the account's posts" in caplog.text
    assert ACCOUNT.access_token not in caplog.text


# -- briefcast ledger reconcile --------------------------------------------------------
RECONCILE_CONFIG = """
data_dir = "data"

[publication]
name = "The Test Gazette"
site_url = "https://gazette.example"
postal_address = "1 Main St"
sender_email = "brief@gazette.example"

[database]
url = "sqlite:///{db}"

[channels.x]
consumer_key = {{ env = "RECONCILE_X_CK" }}
consumer_secret = {{ env = "RECONCILE_X_CS" }}
access_token = {{ env = "RECONCILE_X_AT" }}
access_token_secret = {{ env = "RECONCILE_X_ATS" }}
base_url = "{x_url}"
timeout_seconds = 2

[channels.telegram]
bot_token = {{ env = "RECONCILE_TG_TOKEN" }}
chats = ["@gazette"]
"""


def test_reconcile_settles_what_x_shows_and_says_where_to_look_for_telegram(
    fake_x, tmp_path, monkeypatch
):
    for name, value in zip(
        ("RECONCILE_X_CK", "RECONCILE_X_CS", "RECONCILE_X_AT", "RECONCILE_X_ATS"),
        (
            ACCOUNT.consumer_key,
            ACCOUNT.consumer_secret,
            ACCOUNT.access_token,
            ACCOUNT.access_token_secret,
        ),
        strict=True,
    ):
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RECONCILE_TG_TOKEN", "123456:reconcile-token")
    config = tmp_path / "briefcast.toml"
    config.write_text(RECONCILE_CONFIG.format(db=tmp_path / "b.db", x_url=fake_x.url))
    settings = load_settings(config)
    edition = thread(4)
    ledger = pipeline.ledger_for(settings, run_id="morning-run")
    ledger.keep_content(EDITION, edition.model_dump_json())
    fake_x.on_call(2, drop(create_post=True))
    adapter = pipeline.open_channel(settings, "x", [], ledger=ledger)
    dispatch_channel(adapter, "x", edition, ledger, NO_WAIT, sleep=lambda _: None)
    adapter.close()
    ledger.ensure(EDITION, "telegram", ["@gazette:msg-1"])
    ledger.claim([ledger.rows(EDITION, "telegram")["@gazette:msg-1"].id])
    options = ["--date", EDITION, "--config", str(config)]

    result = CliRunner().invoke(app, ["ledger", "reconcile", *options])
    again = CliRunner().invoke(app, ["ledger", "reconcile", "--channel", "x", *options])

    assert result.exit_code == 1, result.output  # telegram is still in doubt
    lines = result.output.splitlines()
    assert lines[0].startswith("telegram: 1 in doubt; 1 still in doubt: the Bot API cannot read")
    assert lines[1] == (
        f"x: 1 in doubt, 1 found at the provider and marked sent: post-2 ({fake_x.posts[1].id})"
    )
    assert "briefcast ledger resolve CHANNEL sent|resend --date 2026-11-20" in lines[2]
    assert ledger.rows(EDITION, "x")["post-2"].receipt == fake_x.posts[1].id
    assert (again.exit_code, again.output.strip()) == (0, f"Nothing in doubt in edition {EDITION}.")
    assert ACCOUNT.consumer_secret not in result.output + again.output


# -- SendGrid's Event Webhook -------------------------------------------------------------
WEBHOOK_KEY = ec.generate_private_key(ec.SECP256R1())  # SendGrid's signing key, for the test


def post_events(client: TestClient, events: list[dict]):
    """POST events as SendGrid's Signed Event Webhook does: ECDSA over timestamp + body."""
    body = json.dumps(events).encode()
    timestamp = str(int(time.time()))
    signature = WEBHOOK_KEY.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    headers = {
        SIGNATURE_HEADER: base64.b64encode(signature).decode(),
        TIMESTAMP_HEADER: timestamp,
        "Content-Type": "application/json",
    }
    return client.post("/webhooks/sendgrid", content=body, headers=headers)


def sendgrid_setup(tmp_path, monkeypatch, fake: FakeSendGrid, database_url: str = ""):
    monkeypatch.setenv("RECONCILE_SG_KEY", SENDGRID_KEY)
    public_key = WEBHOOK_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    channel_table = (
        f'sendgrid_webhook_public_key = "{base64.b64encode(public_key).decode()}"\n'
        '\n[channels.sendgrid]\napi_key = { env = "RECONCILE_SG_KEY" }\n'
        f'base_url = "{fake.url}"\n'
        '\n[channels.smtp]\nhost = "127.0.0.1"\nport = 1\nsecurity = "plain"\n'
    )
    settings = make_settings(
        tmp_path, monkeypatch, web_extra=channel_table, database_url=database_url
    )
    engine = get_engine(settings.database_url)
    conf = SendGridSettings.model_validate(
        {"api_key": {"env": "RECONCILE_SG_KEY"}, "base_url": fake.url, "timeout_seconds": 2}
    )
    recipients = [
        subscribers.recipient(settings, f"reader{i}@example.org", EDITION, f"Reader {i}")
        for i in range(3)
    ]
    context = ChannelContext(
        publication=settings.publication, data_dir=settings.data_dir, recipients=recipients
    )
    return settings, engine, lambda: SendGridChannel(conf, context)


def sendgrid_edition() -> RenderedEdition:
    return RenderedEdition(
        edition_id=EDITION,
        edition_date=date(2026, 11, 20),
        publication="The Test Gazette",
        site_url="https://gazette.example",
        articles=[],
        email=EmailVariant(subject="Your brief", preheader="p", html="<p>News</p>", text="News"),
        x_posts=[],
        x_thread=False,
        telegram_messages=[],
    )


def killed_after_the_request(engine, adapter, edition) -> None:
    """A run that claimed the rows and sent the request, then died before recording it."""
    killed = Ledger(engine, run_id="killed-run")
    planned = adapter.plan(edition)
    killed.ensure(EDITION, "sendgrid", [d.target for d in planned])
    killed.claim(r.id for r in killed.rows(EDITION, "sendgrid").values())
    adapter.send(planned)


@pytest.fixture
def fake_sendgrid():
    with FakeSendGrid(SENDGRID_KEY) as server:
        yield server


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_sendgrid_events_settle_a_killed_runs_rows_and_the_rerun_sends_nothing_again(
    tmp_path, monkeypatch, fake_sendgrid, request, database
):
    url = request.getfixturevalue("postgres_url") if database == "postgresql" else ""
    settings, engine, sendgrid = sendgrid_setup(tmp_path, monkeypatch, fake_sendgrid, url)
    edition = sendgrid_edition()
    killed_after_the_request(engine, sendgrid(), edition)
    smtp = Ledger(engine, run_id="killed-run")  # the same reader, in doubt on another channel
    smtp.ensure(EDITION, "smtp", ["reader0@example.org"])
    smtp.claim([smtp.rows(EDITION, "smtp")["reader0@example.org"].id])

    client = TestClient(create_app(settings))
    response = post_events(client, fake_sendgrid.events("processed"))

    assert response.status_code == 200
    rows = Ledger(engine).rows(EDITION, "sendgrid")
    message_id = fake_sendgrid.delivered[0].message_id
    assert {(r.state, r.receipt) for r in rows.values()} == {(SENT, message_id)}
    assert Ledger(engine).rows(EDITION, "smtp")["reader0@example.org"].state == IN_FLIGHT

    report = dispatch_channel(sendgrid(), "sendgrid", edition, Ledger(engine), NO_WAIT)

    assert (report.skipped, report.delivered, report.in_doubt) == (3, 0, 0)
    assert len(fake_sendgrid.requests) == 1  # nobody got the brief twice


def test_only_processed_or_delivered_events_of_the_same_edition_settle_a_row(
    tmp_path, monkeypatch, fake_sendgrid
):
    settings, engine, sendgrid = sendgrid_setup(tmp_path, monkeypatch, fake_sendgrid)
    killed_after_the_request(engine, sendgrid(), sendgrid_edition())
    events = {e["email"]: e for e in fake_sendgrid.events("delivered")}
    events["reader0@example.org"]["event"] = "deferred"  # SendGrid has not taken it yet
    events["reader1@example.org"]["edition_id"] = "2026-11-19"  # another edition's mail
    events["reader2@example.org"]["email"] = "Reader2@Example.org"  # case as the provider says

    client = TestClient(create_app(settings))
    assert post_events(client, list(events.values())).status_code == 200

    states = {t: r.state for t, r in Ledger(engine).rows(EDITION, "sendgrid").items()}
    assert states == {
        "reader0@example.org": IN_FLIGHT,
        "reader1@example.org": IN_FLIGHT,
        "reader2@example.org": SENT,
    }
