"""The Mastodon adapter with the real Mastodon.py against a fake instance on 127.0.0.1."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from briefcast.channels.base import ChannelContext
from briefcast.channels.mastodon_posts import MastodonChannel, MastodonSettings
from briefcast.channels.registry import load_registry
from fakes.mastodon_server import FakeMastodon
from fakes.x_server import drop, rate_limited
from pydantic import SecretStr
from social_support import social_edition
from support import GAZETTE

from briefcast.config import Dispatch, Publication
from briefcast.db import get_engine
from briefcast.dispatch import dispatch_channel
from briefcast.ledger import Ledger
from briefcast.models import SocialPost

TOKEN = "mastodon-token-3f9a7c1e"
NO_BACKOFF = Dispatch(backoff_seconds=0)


def channel(fake: FakeMastodon, ledger: Ledger, **overrides) -> MastodonChannel:
    values = {
        "instance_url": fake.url,
        "access_token": SecretStr(TOKEN),
        "timeout_seconds": 2,
    }
    publication = Publication.model_validate({**GAZETTE, "language": "pt"})
    context = ChannelContext(
        publication=publication,
        data_dir=Path("."),
        extra={"ledger": ledger, "channel": "mastodon"},
    )
    return MastodonChannel(MastodonSettings(**{**values, **overrides}), context)


def dispatch(adapter, edition, ledger, sleep=time.sleep, progress=None):
    try:
        return dispatch_channel(
            adapter, "mastodon", edition, ledger, NO_BACKOFF, sleep=sleep, progress=progress
        )
    finally:
        adapter.close()


def assert_chained(statuses) -> None:
    assert statuses[0].in_reply_to_id is None
    assert [s.in_reply_to_id for s in statuses[1:]] == [s.id for s in statuses[:-1]]


@pytest.fixture
def fake():
    with FakeMastodon(TOKEN) as server:
        yield server


@pytest.fixture
def ledger(tmp_path):
    return Ledger(get_engine(f"sqlite:///{tmp_path / 'ledger.db'}"))


def test_registered_as_mastodon_channel():
    assert load_registry().get("mastodon") is MastodonChannel


def test_thread_arrives_chained_with_visibility_language_and_one_key_each(fake, ledger):
    edition = social_edition(4)

    report = dispatch(channel(fake, ledger, visibility="unlisted"), edition, ledger)

    assert (report.delivered, report.ok) == (5, True)
    assert [s.text for s in fake.statuses] == [p.text for p in edition.mastodon_posts]
    assert_chained(fake.statuses)
    assert {s.visibility for s in fake.statuses} == {"unlisted"}
    assert {s.language for s in fake.statuses} == {"pt"}  # the publication's language
    assert len({s.idempotency_key for s in fake.statuses}) == 5
    rows = ledger.rows(edition.edition_id, "mastodon")
    assert [rows[f"status-{n}"].receipt for n in range(1, 6)] == [s.id for s in fake.statuses]


def test_full_links_count_23_so_stories_keep_their_whole_text(fake, ledger):
    edition = social_edition(2)
    story = edition.mastodon_posts[1].text
    assert edition.articles[0].url in story and edition.articles[0].dek in story

    dispatch(channel(fake, ledger), edition, ledger)

    assert fake.statuses[1].text == story


def test_the_instance_limit_is_read_and_an_edition_over_it_is_refused_before_sending(ledger):
    with FakeMastodon(TOKEN, max_characters=100) as fake:
        edition = social_edition(2)
        report = dispatch(channel(fake, ledger), edition, ledger)

    assert report.failed == 1 and fake.calls == 0
    assert "this instance allows 100" in report.errors[0]


def test_an_instance_that_does_not_say_allows_500(ledger):
    with FakeMastodon(TOKEN, max_characters=None) as fake:
        edition = social_edition(1, thread=False)
        edition.mastodon_posts[0] = SocialPost(text="é" * 501, length=501)
        report = dispatch(channel(fake, ledger), edition, ledger)

    assert report.failed == 1 and fake.calls == 0
    assert "status-1 is 501 characters (this instance allows 500)" in report.errors[0]


def test_429_waits_for_the_reset_header(fake, ledger):
    fake.on_call(3, rate_limited(reset_in=2))
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        time.sleep(seconds)

    report = dispatch(channel(fake, ledger), social_edition(3), ledger, sleep=sleep)

    assert (report.delivered, report.ok) == (4, True)
    assert len(waits) == 1 and 0.5 <= waits[0] <= 3.1
    assert fake.rejected == [(3, 429)]  # no retry before the reset
    assert_chained(fake.statuses)


def test_a_lost_answer_is_retried_with_the_same_key_and_posts_once(fake, ledger):
    fake.on_call(2, drop(create_post=True))

    report = dispatch(channel(fake, ledger), social_edition(3), ledger)

    assert (report.delivered, report.in_doubt, report.ok) == (4, 0, True)
    assert fake.calls == 5 and len(fake.statuses) == 4  # the retry got the first status back
    assert_chained(fake.statuses)


def test_a_run_that_stops_after_status_2_is_continued_by_the_rerun(fake, ledger):
    edition = social_edition(4)

    class Crash(BaseException):
        pass

    def crash_after_2(name, done, total):
        if done == 2:
            raise Crash

    with pytest.raises(Crash):
        dispatch(channel(fake, ledger), edition, ledger, progress=crash_after_2)

    report = dispatch(channel(fake, ledger), edition, ledger)

    assert (report.skipped, report.delivered, report.ok) == (2, 3, True)
    assert [s.text for s in fake.statuses] == [p.text for p in edition.mastodon_posts]
    assert fake.thread_of(fake.statuses[-1].id) == fake.statuses


def test_a_wrong_token_fails_clearly_and_posts_nothing(fake, ledger):
    report = dispatch(
        channel(fake, ledger, access_token=SecretStr("not-the-token")), social_edition(2), ledger
    )

    assert report.failed == 3 and fake.statuses == []
    assert "Mastodon refused our token" in report.errors[0]
    assert "not-the-token" not in " ".join(report.errors)
