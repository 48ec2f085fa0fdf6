"""The Bluesky adapter with the real atproto SDK against a fake PDS on 127.0.0.1, dispatched."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from briefcast.channels.base import ChannelContext
from briefcast.channels.bluesky_posts import BlueskyChannel, BlueskySettings, map_error
from briefcast.channels.errors import AuthError, PermanentError, RateLimited, TransientError
from briefcast.channels.registry import load_registry
from fakes.bluesky_server import Account, FakeBluesky
from fakes.x_server import ImageHost, drop, rate_limited, server_error
from pydantic import SecretStr
from social_support import social_edition

from briefcast.config import Dispatch
from briefcast.db import get_engine
from briefcast.dispatch import dispatch_channel
from briefcast.ledger import IN_FLIGHT, SENT, Ledger
from briefcast.models import Image, LinkFacet, SocialPost

ACCOUNT = Account(handle="gazette.test", app_password="abcd-efgh-ijkl-mnop")
NO_BACKOFF = Dispatch(backoff_seconds=0)


def channel(fake: FakeBluesky, ledger: Ledger, **overrides) -> BlueskyChannel:
    values = {
        "handle": ACCOUNT.handle,
        "app_password": SecretStr(ACCOUNT.app_password),
        "base_url": fake.url,
        "timeout_seconds": 2,
    }
    context = ChannelContext(
        publication=None, data_dir=Path("."), extra={"ledger": ledger, "channel": "bluesky"}
    )
    return BlueskyChannel(BlueskySettings(**{**values, **overrides}), context)


def dispatch(adapter, edition, ledger, sleep=time.sleep, progress=None):
    try:
        return dispatch_channel(
            adapter, "bluesky", edition, ledger, NO_BACKOFF, sleep=sleep, progress=progress
        )
    finally:
        adapter.close()


def assert_one_thread(posts) -> None:
    root = posts[0]
    assert root.parent is None and root.root is None
    assert [p.parent for p in posts[1:]] == [p.uri for p in posts[:-1]]
    assert {p.root for p in posts[1:]} == {root.uri}


@pytest.fixture
def fake():
    with FakeBluesky(ACCOUNT) as server:
        yield server


@pytest.fixture
def ledger(tmp_path):
    return Ledger(get_engine(f"sqlite:///{tmp_path / 'ledger.db'}"))


def test_registered_as_bluesky_channel():
    assert load_registry().get("bluesky") is BlueskyChannel


def test_thread_arrives_chained_with_links_and_a_card_for_the_lead(fake, ledger):
    edition = social_edition(4)

    report = dispatch(channel(fake, ledger), edition, ledger)

    assert (report.delivered, report.ok) == (5, True)
    assert [p.text for p in fake.posts] == [p.text for p in edition.bluesky_posts]
    assert_one_thread(fake.posts)
    # every link is a facet over the short link shown in the text, pointing at the full URL
    for post, article in zip(fake.posts[1:], edition.articles, strict=True):
        [(shown, uri)] = post.links
        assert uri == article.url and shown.startswith("gazette.example/2026-11-20/")
    assert fake.posts[0].links == [("gazette.example", "https://gazette.example")]
    lead = edition.articles[0]
    assert fake.posts[1].card == {
        "$type": "app.bsky.embed.external#external",
        "uri": lead.url,
        "title": lead.title,
        "description": lead.dek,
    }
    assert [p.card for p in fake.posts[2:]] == [None] * 3
    assert fake.blobs == {}  # the lead has no image: a card without a thumbnail
    rows = ledger.rows(edition.edition_id, "bluesky")
    assert [rows[f"post-{n}"].receipt for n in range(1, 6)] == [p.uri for p in fake.posts]
    assert fake.logins == 1


def test_without_thread_mode_posts_stand_alone(fake, ledger):
    report = dispatch(channel(fake, ledger), social_edition(3, thread=False), ledger)

    assert report.delivered == 3
    assert [p.parent for p in fake.posts] == [None] * 3


def test_429_waits_for_the_reset_and_completes_without_duplicates(fake, ledger):
    fake.on_call(3, rate_limited(reset_in=2))
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        time.sleep(seconds)

    report = dispatch(channel(fake, ledger), social_edition(4), ledger, sleep=sleep)

    assert report.delivered == 5 and report.ok
    assert len(waits) == 1 and 1.0 <= waits[0] <= 3.1
    assert fake.rejected == [(3, 429)]  # the fake refuses anything before the reset
    assert len({p.text for p in fake.posts}) == 5
    assert_one_thread(fake.posts)


def test_a_post_over_300_graphemes_is_refused_before_anything_is_sent(fake, ledger):
    edition = social_edition(3)
    too_long = SocialPost(text="ä" * 301, length=301)
    edition.bluesky_posts[2] = too_long

    report = dispatch(channel(fake, ledger), edition, ledger)

    assert report.failed == 1 and fake.calls == 0
    assert "post-3 is 301 graphemes" in report.errors[0]


def test_a_facet_that_splits_a_character_is_refused_before_sending(fake, ledger):
    edition = social_edition(1)
    text = "Café news"
    bad = LinkFacet(byte_start=0, byte_end=4, uri="https://gazette.example")  # inside "é"
    edition.bluesky_posts[1] = SocialPost(text=text, length=9, links=[bad])

    report = dispatch(channel(fake, ledger), edition, ledger)

    assert report.failed == 1 and fake.calls == 0
    assert "post-2 has a link facet outside its text" in report.errors[0]


def test_an_answer_lost_after_the_post_was_made_is_read_back_not_posted_twice(fake, ledger):
    edition = social_edition(3)
    fake.on_call(2, drop(create_post=True))

    report = dispatch(channel(fake, ledger), edition, ledger)

    assert (report.delivered, report.in_doubt, report.ok) == (4, 0, True)
    assert fake.calls == 4 and fake.rejected == [(2, 0)]  # post 2 was never sent again
    assert [p.text for p in fake.posts] == [p.text for p in edition.bluesky_posts]
    assert_one_thread(fake.posts)
    assert ledger.rows(edition.edition_id, "bluesky")["post-2"].receipt == fake.posts[1].uri


def test_an_answer_lost_before_the_post_was_made_is_in_doubt_until_settled(fake, ledger):
    edition = social_edition(3)
    fake.on_call(2, drop(create_post=False))

    report = dispatch(channel(fake, ledger), edition, ledger)

    assert (report.delivered, report.in_doubt, report.held) == (1, 1, 2)
    assert "post-2: in doubt" in report.errors[0]
    assert "post-3: waiting on post-2 (in doubt)" in report.errors  # the thread waits
    assert ledger.rows(edition.edition_id, "bluesky")["post-2"].state == IN_FLIGHT
    again = dispatch(channel(fake, ledger), edition, ledger)
    assert (again.delivered, again.in_doubt) == (0, 1) and len(fake.posts) == 1

    # The operator finds no post 2 on the account and settles it as not sent.
    assert ledger.resolve(edition.edition_id, "bluesky", "post-2", as_sent=False)
    final = dispatch(channel(fake, ledger), edition, ledger)

    assert (final.delivered, final.skipped, final.ok) == (3, 1, True)
    assert [p.text for p in fake.posts] == [p.text for p in edition.bluesky_posts]
    assert_one_thread(fake.posts)


def test_the_rerun_finds_a_post_left_in_doubt_on_the_account_and_goes_on(fake, ledger):
    edition = social_edition(3)
    fake.on_call(2, drop(create_post=True))
    fake.listing_status = 503  # the run cannot read the account back
    report = dispatch(channel(fake, ledger), edition, ledger)
    assert (report.delivered, report.in_doubt) == (1, 1) and len(fake.posts) == 2
    fake.listing_status = None

    rerun = dispatch(channel(fake, ledger), edition, ledger)  # looks before it sends

    assert (rerun.delivered, rerun.ok) == (2, True)
    assert [p.text for p in fake.posts] == [p.text for p in edition.bluesky_posts]
    assert_one_thread(fake.posts)
    assert ledger.rows(edition.edition_id, "bluesky")["post-2"].receipt == fake.posts[1].uri


def test_a_post_settled_by_hand_with_its_bsky_link_is_replied_to(fake, ledger):
    edition = social_edition(3)
    fake.on_call(2, drop(create_post=True))
    fake.listing_status = 503  # nor can the adapter read the account back

    report = dispatch(channel(fake, ledger), edition, ledger)

    assert (report.delivered, report.in_doubt) == (1, 1) and len(fake.posts) == 2

    # The operator finds post 2 on the account and settles it with its bsky.app link.
    made = fake.posts[1]
    link = f"https://bsky.app/profile/{ACCOUNT.handle}/post/{made.uri.rsplit('/', 1)[1]}"
    assert ledger.resolve(edition.edition_id, "bluesky", "post-2", as_sent=True, receipt=link)
    final = dispatch(channel(fake, ledger), edition, ledger)

    assert (final.delivered, final.skipped, final.ok) == (2, 2, True)
    assert [p.text for p in fake.posts] == [p.text for p in edition.bluesky_posts]
    assert_one_thread(fake.posts)


def test_a_502_from_the_pds_is_retried(fake, ledger):
    edition = social_edition(2)
    fake.on_call(2, server_error(502))

    report = dispatch(channel(fake, ledger), edition, ledger)

    assert (report.delivered, report.ok) == (3, True)
    assert fake.rejected == [(2, 502)]
    assert len(fake.posts) == 3


def test_a_run_that_stops_after_post_3_is_continued_by_the_rerun(fake, ledger):
    edition = social_edition(5)

    class Crash(BaseException):
        pass

    def crash_after_3(name, done, total):
        if done == 3:
            raise Crash

    with pytest.raises(Crash):
        dispatch(channel(fake, ledger), edition, ledger, progress=crash_after_3)
    assert len(fake.posts) == 3

    report = dispatch(channel(fake, ledger), edition, ledger)  # a fresh adapter: no memory

    assert (report.skipped, report.delivered, report.ok) == (3, 3, True)
    assert [p.text for p in fake.posts] == [p.text for p in edition.bluesky_posts]
    assert_one_thread(fake.posts)
    assert fake.thread_of(fake.posts[-1].uri) == fake.posts


def test_a_wrong_app_password_fails_clearly_and_posts_nothing(fake, ledger):
    edition = social_edition(2)

    report = dispatch(channel(fake, ledger, app_password=SecretStr("wrong")), edition, ledger)

    assert report.failed == 3 and fake.posts == []
    assert "Bluesky refused our credentials" in report.errors[0]
    assert "wrong" not in " ".join(report.errors)
    assert ledger.rows(edition.edition_id, "bluesky")["post-1"].state != SENT


def test_error_tree_mapping():
    from atproto_client import exceptions as atp
    from atproto_client.request import Response

    def response(status, headers=None):
        return Response(success=False, status_code=status, content=None, headers=headers or {})

    limited = map_error(
        atp.RateLimitExceededError(response(429, {"ratelimit-reset": "1000"})), now=lambda: 990
    )
    assert isinstance(limited, RateLimited) and limited.retry_after == 10
    assert isinstance(map_error(atp.UnauthorizedError(response(401))), AuthError)
    assert isinstance(map_error(atp.BadRequestError(response(400))), PermanentError)
    assert isinstance(map_error(atp.RequestException(response(503))), TransientError)
    assert isinstance(map_error(atp.NetworkError(response(413))), PermanentError)
    assert isinstance(map_error(atp.InvokeTimeoutError()), TransientError)


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 2048


def test_the_lead_image_becomes_the_link_cards_thumbnail(fake, ledger):
    with ImageHost() as images:
        hero = Image(url=images.add("/lead.png", PNG, "image/png"), alt="The harbour at dawn")
        edition = social_edition(2)
        edition.articles[0] = edition.articles[0].model_copy(update={"hero": hero})

        report = dispatch(channel(fake, ledger, card_image=True), edition, ledger)

    assert report.delivered == 3
    thumb = fake.posts[1].card["thumb"]
    assert fake.blobs[thumb["ref"]["$link"]] == (PNG, "image/png")
    assert thumb["mimeType"] == "image/png" and thumb["size"] == len(PNG)


def test_an_image_too_big_for_a_thumbnail_leaves_the_card_without_one(fake, ledger, caplog):
    with ImageHost() as images:
        big = PNG + b"\x00" * 1_000_000
        hero = Image(url=images.add("/big.png", big, "image/png"))
        edition = social_edition(1)
        edition.articles[0] = edition.articles[0].model_copy(update={"hero": hero})

        report = dispatch(channel(fake, ledger, card_image=True), edition, ledger)

    assert report.delivered == 2 and fake.blobs == {}
    assert fake.posts[1].card["title"] == edition.articles[0].title
    assert "link card without thumbnail: image larger than" in caplog.text
