"""An edition with stories rendered for Bluesky and Mastodon, for the social channel tests."""

from __future__ import annotations

from datetime import UTC, datetime

from support import make_edition

from briefcast.models import Article, RenderedEdition
from briefcast.render.social_posts import build_bluesky_posts, build_mastodon_posts

SITE = "https://gazette.example"


def stories(count: int, edition_id: str = "2026-11-20") -> list[Article]:
    return [
        Article(
            key=f"{SITE}/{edition_id}/story-{n}",
            url=f"{SITE}/{edition_id}/harbour-and-town-council-story-number-{n}",
            title=f"Story {n}: the harbour café reopens after the storm 🌊",
            dek=f"What changed in part {n}, and why the town council voted the way it did.",
            source="Gazette",
            published=datetime(2026, 11, 20, 6, tzinfo=UTC),
        )
        for n in range(1, count + 1)
    ]


def social_edition(
    count: int = 4, *, thread: bool = True, edition_id: str = "2026-11-20", **fields
) -> RenderedEdition:
    """``count`` stories as Bluesky and Mastodon posts, under an opener when a thread."""
    articles = stories(count, edition_id)
    bluesky_opener = "Today's brief from The Test Gazette 🧵" if thread else None
    mastodon_opener = "Today's brief from The Test Gazette, one story per reply" if thread else None
    values = dict(
        articles=articles,
        x_thread=thread,
        bluesky_posts=build_bluesky_posts(articles, bluesky_opener, SITE),
        mastodon_posts=build_mastodon_posts(articles, mastodon_opener, SITE),
    )
    return make_edition(edition_id, **{**values, **fields})
