"""The X adapter with real tweepy against a fake X API on 127.0.0.1, through the dispatcher."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from briefcast.channels.base import ChannelContext, Delivery
from briefcast.channels.errors import (
    AuthError,
    PermanentError,
    RateLimited,
    TransientError,
)
from briefcast.channels.registry import load_registry
from briefcast.channels.x_posts import PostPayload, XChannel, XSettings
from fakes.x_server import (
    DUPLICATE_BODY,
    RATE_LIMIT_BODY,
    Account,
    FakeX,
    ImageHost,
    delay,
    drop,
    hold,
    invalid_request,
    rate_limited,
    respond,
    server_error,
)
from pydantic import SecretStr
from sqlalchemy import update

from briefcast.config import Dispatch
from briefcast.db import get_engine
from briefcast.dispatch import dispatch_channel
from briefcast.ledger import FAILED, IN_FLIGHT, SENT, Ledger, deliveries
from briefcast.models import Article, EmailVariant, Image, RenderedEdition, XPost

ACCOUNT = Account(
    consumer_key="ck-7f3a9c",
    consumer_secret="cs-secret-d41d8cd98f",
    access_token="at-1234-e3b0c44298",
    access_token_secret="ats-secret-8f14e45f",
)
SECRET_VALUES = [
    ACCOUNT.consumer_key,
    ACCOUNT.consumer_secret,
    ACCOUNT.access_token,
    ACCOUNT.access_token_secret,
]
NO_BACKOFF = Dispatch(backoff_seconds=0)


# -- helpers -------------------------------------------------------------------
def make_edition(
    posts: int | list[str] = 6,
    *,
    thread: bool = True,
    edition_id: str = "2026-11-20",
    hero: Image | None = None,
) -> RenderedEdition:
    if isinstance(posts, int):
        posts = [f"Story {n} of {edition_id}: what changed and why." for n in range(1, posts + 1)]
    texts = posts
    articles = [
        Article(
            key=f"https://gazette.example/{edition_id}/story-{n}",
            url=f"https://gazette.example/{edition_id}/story-{n}",
            title=f"Story {n}",
            source="Gazette",
            published=datetime(2026, 11, 20, 6, tzinfo=UTC),
            hero=hero if n == 1 else None,
        )
        for n in range(1, len(texts) + 1)
    ]
    return RenderedEdition(
        edition_id=edition_id,
        edition_date=date(2026, 11, 20),
        publication="The Test Gazette",
        site_url="https://gazette.example",
        articles=articles,
        email=EmailVariant(subject="s", preheader="p", html="<p>h</p>", text="t"),
        x_posts=[
            XPost(text=text, weighted_length=len(text), article_key=a.key)
            for text, a in zip(texts, articles, strict=True)
        ],
        x_thread=thread,
        telegram_messages=[],
    )


def x_settings(fake: FakeX, account: Account = ACCOUNT, **overrides) -> XSettings:
    values = {
        "consumer_key": SecretStr(account.consumer_key),
        "consumer_secret": SecretStr(account.consumer_secret),
        "access_token": SecretStr(account.access_token),
        "access_token_secret": SecretStr(account.access_token_secret),
        "base_url": fake.url,
        "upload_base_url": fake.url,
        "timeout_seconds": 2,
    }
    return XSettings(**{**values, **overrides})


def x_channel(fake: FakeX, ledger: Ledger | None = None, **overrides) -> XChannel:
    extra = {"ledger": ledger, "channel": "x"} if ledger is not None else {}
    context = ChannelContext(publication=None, data_dir=Path("."), extra=extra)
    return XChannel(x_settings(fake, **overrides), context)


def dispatch(adapter, edition, ledger, policy=NO_BACKOFF, sleep=time.sleep):
    try:
        return dispatch_channel(adapter, "x", edition, ledger, policy, sleep=sleep)
    finally:
        adapter.close()


def assert_chained(posts) -> None:
    assert posts[0].reply_to is None
    assert [p.reply_to for p in posts[1:]] == [p.id for p in posts[:-1]]


@pytest.fixture
def fake():
    with FakeX(ACCOUNT) as server:
        yield server


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def ledger(db_url):
    return Ledger(get_engine(db_url))


# -- threads -------------------------------------------------------------------
def test_registered_as_x_channel():
    assert load_registry().get("x") is XChannel


def test_six_story_thread_arrives_as_six_chained_posts(fake, ledger):
    edition = make_edition(6)

    report = dispatch(x_channel(fake, ledger), edition, ledger)

    assert (report.delivered, report.failed, report.ok) == (6, 0, True)
    assert [p.text for p in fake.posts] == [p.text for p in edition.x_posts]
    assert_chained(fake.posts)
    rows = ledger.rows(edition.edition_id, "x")
    assert [rows[f"post-{n}"].receipt for n in range(1, 7)] == [p.id for p in fake.posts]


def test_without_thread_mode_posts_stand_alone(fake, ledger):
    report = dispatch(x_channel(fake, ledger), make_edition(3, thread=False), ledger)

    assert report.delivered == 3
    assert [p.reply_to for p in fake.posts] == [None, None, None]


def test_429_on_post_4_waits_for_the_reset_and_completes_without_duplicates(fake, ledger):
    fake.on_call(4, rate_limited(reset_in=2))
    waits = []

    def sleep(seconds):  # the dispatcher's wait, on the fake's clock
        waits.append(seconds)
        fake.let_time_pass(seconds)

    report = dispatch(x_channel(fake, ledger), make_edition(6), ledger, sleep=sleep)

    assert report.delivered == 6 and report.ok
    assert len(waits) == 1 and 1.9 <= waits[0] <= 3.1
    # The fake answers 429 to anything before the reset: one refusal means no early retry.
    assert fake.rejected == [(4, 429)]
    assert len(fake.posts) == 6 == len({p.text for p in fake.posts})
    assert_chained(fake.posts)


CRASHING_RUN = """
import json, os, sys
from pathlib import Path
from briefcast.config import Dispatch
from briefcast.db import get_engine
from briefcast.dispatch import dispatch_channel
from briefcast.ledger import Ledger
from briefcast.models import RenderedEdition
from briefcast.channels.base import ChannelContext
from briefcast.channels.x_posts import XChannel

edition_file, db_url, settings_json, die_after = sys.argv[1:5]
edition = RenderedEdition.model_validate_json(Path(edition_file).read_text())
ledger = Ledger(get_engine(db_url))
settings = XChannel.Settings.model_validate(json.loads(settings_json))
context = ChannelContext(publication=None, data_dir=Path("."),
                         extra={"ledger": ledger, "channel": "x"})

def progress(channel, done, total):
    if done == int(die_after):
        os._exit(3)  # dies on the spot: no cleanup, no report

dispatch_channel(XChannel(settings, context), "x", edition, ledger, Dispatch(),
                 progress=progress)
"""


def start_run(fake: FakeX, edition: RenderedEdition, db_url: str, tmp_path, die_after: int):
    """A separate process that posts the edition (secrets by env reference, as in config)."""
    edition_file = tmp_path / "edition.json"
    edition_file.write_text(edition.model_dump_json())
    env_names = {
        "consumer_key": "X_CONSUMER_KEY",
        "consumer_secret": "X_CONSUMER_SECRET",
        "access_token": "X_ACCESS_TOKEN",
        "access_token_secret": "X_ACCESS_TOKEN_SECRET",
    }
    settings = {key: {"env": name} for key, name in env_names.items()}
    settings |= {"base_url": fake.url, "upload_base_url": fake.url, "timeout_seconds": 5}
    env = {**os.environ} | {name: getattr(ACCOUNT, key) for key, name in env_names.items()}
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            CRASHING_RUN,
            str(edition_file),
            db_url,
            json.dumps(settings),
            str(die_after),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_a_run_that_dies_after_post_3_is_continued_by_the_rerun(fake, ledger, db_url, tmp_path):
    edition = make_edition(6)

    crashed = start_run(fake, edition, db_url, tmp_path, die_after=3)
    _, stderr = crashed.communicate(timeout=60)
    assert crashed.returncode == 3, stderr.decode()
    assert len(fake.posts) == 3

    report = dispatch(x_channel(fake, ledger), edition, ledger)

    assert (report.skipped, report.delivered, report.ok) == (3, 3, True)
    assert len(fake.posts) == 6
    assert fake.posts[3].reply_to == fake.posts[2].id
    assert_chained(fake.posts)
    assert fake.thread_of(fake.posts[-1].id) == fake.posts


def test_a_run_killed_while_post_4_is_in_flight_is_never_resent_blindly(
    fake, ledger, db_url, tmp_path
):
    edition = make_edition(6)
    fake.on_call(4, hold())
    run = start_run(fake, edition, db_url, tmp_path, die_after=-1)
    assert fake.holding.wait(timeout=60), "post 4 never reached the fake"
    run.kill()
    run.wait(timeout=30)
    fake.release()  # the fake drops the request: post 4 never appeared on X

    report = dispatch(x_channel(fake, ledger), edition, ledger)

    assert (report.skipped, report.delivered, report.in_doubt) == (3, 0, 1)
    assert (report.failed, report.held) == (0, 2)  # the rest of the thread waits; not failed
    assert "post-4: in doubt, left by a crashed run" in report.errors[0]
    assert "post-5: waiting on post-4 (in doubt)" in report.errors
    assert "post-6: waiting on post-4 (in doubt)" in report.errors
    assert len(fake.posts) == 3

    # The operator checks the account, finds no post 4, and settles the row as not sent.
    assert ledger.resolve(edition.edition_id, "x", "post-4", as_sent=False) == 1
    report = dispatch(x_channel(fake, ledger), edition, ledger)

    assert (report.delivered, report.ok) == (3, True)
    assert fake.posts[3].reply_to == fake.posts[2].id
    assert_chained(fake.posts)


def test_reply_to_a_post_settled_by_hand_without_an_id_is_refused_clearly(fake, ledger):
    edition = make_edition(2)
    ledger.ensure(edition.edition_id, "x", ["post-1", "post-2"])
    ledger.claim([ledger.rows(edition.edition_id, "x")["post-1"].id])
    ledger.resolve(edition.edition_id, "x", "post-1", as_sent=True)

    report = dispatch(x_channel(fake, ledger), edition, ledger)

    assert report.failed == 1 and fake.calls == 0
    assert "cannot reply to post-1: the ledger has no X post id" in report.errors[0]
    assert "--target post-1 --receipt <post id>" in report.errors[0]


def test_operator_gives_the_id_of_a_post_settled_by_hand_and_the_thread_continues(fake, ledger):
    edition = make_edition(3)
    crashed = fake.seed_post(edition.x_posts[0].text)  # arrived; the run died before the answer
    ledger.ensure(edition.edition_id, "x", ["post-1", "post-2", "post-3"])
    ledger.claim([ledger.rows(edition.edition_id, "x")["post-1"].id])
    ledger.resolve(edition.edition_id, "x", "post-1", as_sent=True)  # as the README shows
    refused = dispatch(x_channel(fake, ledger), edition, ledger)
    assert refused.failed == 2 and fake.calls == 0

    assert ledger.resolve(edition.edition_id, "x", "post-1", as_sent=True, receipt=crashed.id) == 1
    report = dispatch(x_channel(fake, ledger), edition, ledger)

    assert (report.skipped, report.delivered, report.ok) == (1, 2, True)
    assert_chained(fake.posts)
    assert [p.text for p in fake.posts] == [p.text for p in edition.x_posts]


def test_a_receipt_never_overwrites_the_id_of_a_post_the_run_recorded(fake, ledger):
    edition = make_edition(1)
    dispatch(x_channel(fake, ledger), edition, ledger)

    assert ledger.resolve(edition.edition_id, "x", "post-1", as_sent=True, receipt="123") == 0
    assert ledger.rows(edition.edition_id, "x")["post-1"].receipt == fake.posts[0].id


# -- the daily budget ------------------------------------------------------------
def test_budget_of_3_with_6_stories_sends_3_and_reports_3_held_back(fake, ledger):
    edition = make_edition(6)

    report = dispatch(x_channel(fake, ledger, daily_budget=3), edition, ledger)

    assert (report.delivered, report.held) == (3, 3)
    assert "3 held back: daily budget of 3 posts reached" in report.errors
    assert len(fake.posts) == 3
    states = {t: r.state for t, r in ledger.rows(edition.edition_id, "x").items()}
    assert [states[f"post-{n}"] for n in range(1, 7)] == [SENT] * 3 + ["held"] * 3


def test_budget_counts_the_last_24_hours_across_editions_and_the_thread_resumes(fake, ledger):
    yesterday_evening = make_edition(2, edition_id="special")
    dispatch(x_channel(fake, ledger, daily_budget=3), yesterday_evening, ledger)
    today = make_edition(6)

    report = dispatch(x_channel(fake, ledger, daily_budget=3), today, ledger)

    assert (report.delivered, report.held) == (1, 5)

    with ledger.engine.begin() as conn:  # a day passes
        conn.execute(update(deliveries).values(updated_at=datetime.now(UTC) - timedelta(hours=25)))
    report = dispatch(x_channel(fake, ledger, daily_budget=3), today, ledger)

    assert (report.skipped, report.delivered, report.held) == (1, 3, 2)
    thread = fake.thread_of(fake.posts[-1].id)
    assert [p.text for p in thread] == [p.text for p in today.x_posts[:4]]


def test_budget_without_a_ledger_counts_only_this_run(fake):
    adapter = x_channel(fake, daily_budget=2)
    todo = [Delivery(f"post-{n}", PostPayload(f"post {n}")) for n in range(1, 4)]

    assert adapter.admit(todo) == (2, "daily budget of 2 posts reached")
    adapter.send_one(todo[0])
    assert adapter.admit(todo[1:])[0] == 1
    adapter.close()


# -- checks before sending --------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "weight"),
    [("a" * 281, 281), ("漢" * 141, 282), ("👨‍👩‍👧" * 141, 282)],
    ids=["latin", "cjk", "emoji"],
)
def test_an_over_long_post_refuses_the_whole_edition(fake, ledger, text, weight):
    texts = [p.text for p in make_edition(6).x_posts]
    texts[2] = text

    report = dispatch(x_channel(fake, ledger), make_edition(texts), ledger)

    assert report.failed == 1 and report.delivered == 0
    assert f"post-3 is {weight} weighted characters (limit 280)" in report.errors[0]
    assert fake.calls == 0 and fake.posts == []


def test_long_links_count_as_23_so_a_post_over_280_characters_can_go(fake, ledger):
    links = " ".join(f"https://gazette.org/2026/11/20/{'long-slug-' * 6}{n}" for n in range(5))
    text = f"Today's reading: {links}"
    assert len(text) > 280

    report = dispatch(x_channel(fake, ledger), make_edition([text]), ledger)

    assert report.delivered == 1 and fake.posts[0].text == text


def test_empty_and_repeated_posts_are_refused_before_sending(fake, ledger):
    report = dispatch(x_channel(fake, ledger), make_edition(["same", " ", "same"]), ledger)

    assert report.failed == 1 and fake.calls == 0
    assert "post-2 is empty" in report.errors[0]
    assert "post-3 repeats post-1 word for word" in report.errors[0]


def test_duplicate_content_is_reported_clearly_and_not_as_a_credentials_problem(fake, ledger):
    edition = make_edition(3)
    fake.seed_post(edition.x_posts[0].text)  # posted by hand earlier today

    report = dispatch(x_channel(fake, ledger), edition, ledger)

    assert report.delivered == 0
    assert report.errors[0].startswith("post-1: duplicate content: X refuses a post identical")
    assert "post-2: not sent, post-1 did not go out" in report.errors
    row = ledger.rows(edition.edition_id, "x")["post-1"]
    assert row.state == FAILED and "403" in row.error


def test_a_timed_out_post_that_did_arrive_is_not_posted_twice(fake, ledger, caplog):
    fake.on_call(1, delay(5))  # X creates the post but answers after our timeout
    edition = make_edition(3)

    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        report = dispatch(x_channel(fake, ledger, timeout_seconds=0.5), edition, ledger)

    assert time.monotonic() - started < 4
    assert len(fake.posts) == 1
    # In doubt, not failed: the operator settles it with the id X gave the post ...
    assert (report.delivered, report.in_doubt, report.failed) == (0, 1, 0), report.errors
    assert report.held == 2 and "post-2: waiting on post-1 (in doubt)" in report.errors
    assert report.errors[0].startswith("post-1: in doubt, it may have gone out (X already has")
    assert "most likely from the earlier attempt that went unanswered" in caplog.text
    assert "ledger resolve x sent --target post-1 --receipt <post id>" in caplog.text
    assert ledger.rows(edition.edition_id, "x")["post-1"].state == IN_FLIGHT
    assert ledger.resolve(edition.edition_id, "x", "post-1", True, receipt=fake.posts[0].id) == 1

    # ... and the rerun carries the thread on under that post.
    report = dispatch(x_channel(fake, ledger), edition, ledger)

    assert (report.skipped, report.delivered, report.failed) == (1, 2, 0), report.errors
    assert [p.text for p in fake.posts] == [p.text for p in edition.x_posts]
    assert_chained(fake.posts)


# -- the lead image -----------------------------------------------------------------
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 2048


def test_lead_image_is_uploaded_and_attached_to_the_first_post(fake, ledger):
    with ImageHost() as images:
        hero = Image(url=images.add("/lead.png", PNG, "image/png"), alt="The harbour at dawn")
        edition = make_edition(3, hero=hero)

        report = dispatch(x_channel(fake, ledger, attach_lead_image=True), edition, ledger)

    assert report.delivered == 3
    (media_id,) = fake.posts[0].media_ids
    assert fake.media[media_id].data == PNG
    assert fake.media[media_id].alt_text == "The harbour at dawn"
    assert fake.media[media_id].api == "v2"  # POST /2/media/upload, not the deprecated v1.1
    assert [p.media_ids for p in fake.posts[1:]] == [[], []]


def test_where_x_has_no_v2_media_upload_the_v1_1_endpoint_still_carries_the_image(fake, ledger):
    fake.v2_media = False
    with ImageHost() as images:
        hero = Image(url=images.add("/lead.png", PNG, "image/png"), alt="The harbour at dawn")
        edition = make_edition(2, hero=hero)

        report = dispatch(x_channel(fake, ledger, attach_lead_image=True), edition, ledger)

    assert report.delivered == 2
    (media_id,) = fake.posts[0].media_ids
    media = fake.media[media_id]
    assert (media.api, media.data, media.alt_text) == ("v1.1", PNG, "The harbour at dawn")


def test_an_image_x_refuses_for_good_goes_without_holding_the_thread(fake, ledger, caplog):
    fake.on_upload(respond(400, invalid_request("Unsupported image.", "media", "")))
    with ImageHost() as images:
        hero = Image(url=images.add("/lead.png", PNG, "image/png"))
        edition = make_edition(2, hero=hero)
        report = dispatch(x_channel(fake, ledger, attach_lead_image=True), edition, ledger)

    assert report.delivered == 2 and fake.posts[0].media_ids == [] and fake.media == {}
    assert "posting without the lead image: upload refused" in caplog.text


def test_lead_image_stays_off_unless_configured(fake, ledger):
    with ImageHost() as images:
        hero = Image(url=images.add("/lead.png", PNG, "image/png"))
        report = dispatch(x_channel(fake, ledger), make_edition(2, hero=hero), ledger)
        assert images.requests == 0

    assert report.delivered == 2 and fake.media == {}


def test_a_missing_lead_image_does_not_block_the_thread(fake, ledger, caplog):
    with ImageHost() as images:
        hero = Image(url=images.url("/missing.png"))
        edition = make_edition(2, hero=hero)
        report = dispatch(x_channel(fake, ledger, attach_lead_image=True), edition, ledger)

    assert report.delivered == 2 and fake.posts[0].media_ids == [] and fake.media == {}
    assert "posting without the lead image: Client error '404 Not Found'" in caplog.text


@pytest.mark.parametrize("fault", [server_error(503), drop()], ids=["503", "dropped"])
def test_a_failed_upload_is_retried_and_the_image_still_goes(fake, ledger, fault):
    fake.on_upload(fault)
    with ImageHost() as images:
        hero = Image(url=images.add("/lead.png", PNG, "image/png"))
        edition = make_edition(2, hero=hero)
        report = dispatch(x_channel(fake, ledger, attach_lead_image=True), edition, ledger)

    assert report.delivered == 2 and len(fake.posts) == 2
    assert fake.posts[0].media_ids == list(fake.media)


# -- the error table ---------------------------------------------------------------
def _reset_in(seconds: int) -> str:
    return str(int(time.time()) + seconds)


ERROR_TABLE = [
    ("429 with reset", lambda: rate_limited(reset_in=30), RateLimited, "rate limit", (28, 31)),
    ("429 without reset", lambda: rate_limited(reset_in=None), RateLimited, "rate limit", (60, 60)),
    (
        "429 from the 24-hour cap",
        lambda: respond(
            429,
            RATE_LIMIT_BODY,
            {
                "x-rate-limit-remaining": "40",
                "x-rate-limit-reset": _reset_in(600),
                "x-user-limit-24hour-remaining": "0",
                "x-user-limit-24hour-reset": _reset_in(7200),
            },
        ),
        RateLimited,
        "rate limit",
        (7190, 7201),
    ),
    ("403 duplicate", lambda: respond(403, DUPLICATE_BODY), PermanentError, "duplicate", None),
    (
        "403 other",
        lambda: respond(
            403,
            {
                "title": "Client Forbidden",
                "detail": "This app is not attached to a Project.",
                "type": "https://api.twitter.com/2/problems/client-forbidden",
            },
        ),
        AuthError,
        "not attached to a Project",
        None,
    ),
    (
        "401",
        lambda: respond(401, {"title": "Unauthorized", "detail": "Unauthorized", "status": 401}),
        AuthError,
        "credentials",
        None,
    ),
    (
        "400",
        lambda: respond(400, invalid_request("Reply target is gone.", "reply", "1")),
        PermanentError,
        "Reply target is gone.",
        None,
    ),
    ("404", lambda: respond(404, {"title": "Not Found"}), PermanentError, "404", None),
    ("500", lambda: server_error(500), TransientError, "server error", None),
    ("503", lambda: server_error(503), TransientError, "server error", None),
    ("timeout", lambda: delay(3), TransientError, "did not answer in time", None),
    ("dropped connection", lambda: drop(), TransientError, "connection", None),
]


@pytest.mark.parametrize(
    ("fault", "error_type", "message", "wait"),
    [case[1:] for case in ERROR_TABLE],
    ids=[case[0] for case in ERROR_TABLE],
)
def test_error_table(fake, fault, error_type, message, wait):
    fake.on_call(1, fault())
    adapter = x_channel(fake, timeout_seconds=0.5)

    with pytest.raises(error_type) as caught:
        adapter.send_one(Delivery("post-1", PostPayload("Hello from the gazette")))
    adapter.close()

    error = caught.value
    assert type(error) is error_type
    assert message in str(error) and error.channel == "x"
    if wait is not None:
        assert wait[0] <= error.retry_after <= wait[1]
    assert not any(secret in str(error) for secret in SECRET_VALUES)


def test_wrong_credentials_are_an_auth_error(fake):
    wrong = Account(**{**ACCOUNT.__dict__, "access_token_secret": "ats-wrong"})
    context = ChannelContext(publication=None, data_dir=Path("."))
    adapter = XChannel(x_settings(fake, wrong), context)

    with pytest.raises(AuthError):
        adapter.send_one(Delivery("post-1", PostPayload("Hello")))
    adapter.close()
    assert fake.rejected == [(1, 401)] and fake.posts == []


def test_an_unreachable_server_is_transient(fake):
    adapter = x_channel(fake)
    fake.stop()

    with pytest.raises(TransientError, match="connection to X failed"):
        adapter.send_one(Delivery("post-1", PostPayload("Hello")))
    adapter.close()


def test_secrets_stay_out_of_logs_and_reprs(fake, ledger, caplog):
    caplog.set_level(logging.DEBUG)
    fake.on_call(2, server_error(503))
    adapter = x_channel(fake, ledger)
    shown = repr(adapter.settings) + str(adapter.settings.model_dump())

    report = dispatch(adapter, make_edition(3), ledger)

    assert report.delivered == 3
    for secret in SECRET_VALUES:
        assert secret not in caplog.text
        assert secret not in shown


def test_an_edition_cap_keeps_the_thread_short_enough_for_tomorrow(fake, ledger):
    edition = make_edition(6)
    adapter = x_channel(fake, ledger, daily_budget=17, max_posts_per_edition=4)
    report = dispatch(adapter, edition, ledger)
    assert report.delivered == 4 and report.held == 2
    assert "2 held back: an edition posts at most 4 (max_posts_per_edition)" in report.errors
    assert [p.text for p in fake.posts] == [p.text for p in edition.x_posts[:4]]
