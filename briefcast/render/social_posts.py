"""Posts for Bluesky and Mastodon: one per story, as a thread under an opener like X's.

Bluesky: at most 300 graphemes; the link is shown short ("gazette.example/2026/…")
and a link facet at its UTF-8 byte offsets carries the full URL. Mastodon: at most
the instance's limit (500 unless the instance says otherwise; the adapter checks
the real one before the first send), every URL counting 23.
"""

from __future__ import annotations

import logging

from briefcast.models import Article, LinkFacet, SocialPost
from briefcast.render.social_text import (
    Counting,
    byte_span,
    display_link,
    fit_post,
    graphemes,
    mastodon_length,
)

BLUESKY = Counting(300, graphemes)
MASTODON_DEFAULT_LIMIT = 500
MASTODON = Counting(MASTODON_DEFAULT_LIMIT, mastodon_length)

log = logging.getLogger("briefcast.render")


def bluesky_post(parts: list[str], url: str, article_key: str = "") -> SocialPost:
    shown = display_link(url) if url else ""
    text = fit_post(parts, shown, BLUESKY)
    links = []
    if shown:
        start = len(text) - len(shown)  # the link is always the post's last part
        byte_start, byte_end = byte_span(text, start, len(text))
        links.append(LinkFacet(byte_start=byte_start, byte_end=byte_end, uri=url))
    return SocialPost(text=text, length=graphemes(text), links=links, article_key=article_key)


def mastodon_post(parts: list[str], url: str, article_key: str = "") -> SocialPost:
    text = fit_post(parts, url, MASTODON)
    return SocialPost(text=text, length=mastodon_length(text), article_key=article_key)


def _build(make, articles: list[Article], opener: str | None, opener_url: str, platform: str):
    posts = [make([opener], opener_url)] if opener else []
    for article in articles:
        try:
            posts.append(make([article.title, article.dek], article.url, article.key))
        except ValueError as exc:  # one unpostable link must not sink the whole edition
            log.warning("no %s post for %r (%s): %s", platform, article.title, article.url, exc)
    return posts


def build_bluesky_posts(
    articles: list[Article], opener: str | None, opener_url: str = ""
) -> list[SocialPost]:
    return _build(bluesky_post, articles, opener, opener_url, "Bluesky")


def build_mastodon_posts(
    articles: list[Article], opener: str | None, opener_url: str = ""
) -> list[SocialPost]:
    return _build(mastodon_post, articles, opener, opener_url, "Mastodon")
