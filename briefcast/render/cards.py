"""Each story as a card: what every channel's template shows about it, computed once.

A card carries the kicker (section or source), the headline and summary capped to the
lengths a reader scans, the story link with the variant's UTM tags, a link wording that
varies from card to card, and the "keep reading" teaser pointing inside the edition when
the teased story is in it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from briefcast.gather.urls import canonical_url
from briefcast.models import Article, Image
from briefcast.text import html_to_text
from briefcast.text_caps import HEADLINE_MAX, SUMMARY_MAX, cap

WORDS_PER_MINUTE = 230
# One clear link per card, worded differently down the page: ten identical "Read more"
# links read as boilerplate and tell a screen-reader user nothing.
LINK_WORDINGS = (
    "Get the details",
    "Read the story",
    "See the full report",
    "More on this",
    "Read on",
    "Full story",
)
LEAD_LINK_WORDING = "Read the full story"


@dataclass(frozen=True)
class TeaserView:
    title: str
    summary: str
    url: str  # the teased story's own link, or "#story-N" when it is in this edition
    in_edition: bool


@dataclass(frozen=True)
class Card:
    number: int  # 1 for the lead
    anchor: str
    article: Article
    kicker: str
    headline: str
    summary: str  # plain text: the dek, else the summary, capped
    link: str  # the story's URL with the variant's UTM tags
    link_text: str
    thumbnail: Image | None
    byline: str
    minutes: int  # reading time of the full story, 0 when unknown
    teaser: TeaserView | None

    @property
    def is_lead(self) -> bool:
        return self.number == 1


def kicker(article: Article) -> str:
    """The section (first tag), else the source's name."""
    label = article.tags[0] if article.tags else article.source
    return cap(label[:1].upper() + label[1:], 32) if label else ""


def reading_minutes(article: Article) -> int:
    parts = [s.html for s in article.sections] + ([article.view.html] if article.view else [])
    words = sum(len(html_to_text(p).split()) for p in parts)
    return max(1, round(words / WORDS_PER_MINUTE)) if words >= 150 else 0


def _link_text(article: Article, number: int, site_host: str) -> str:
    if number == 1:
        return LEAD_LINK_WORDING
    host = (urlsplit(article.url).hostname or "").removeprefix("www.")
    if host and site_host and host != site_host and not host.endswith("." + site_host):
        return f"Read it at {host}"
    return LINK_WORDINGS[(number - 2) % len(LINK_WORDINGS)]


def build_cards(articles: list[Article], site_url: str, tag: Callable[[str], str]) -> list[Card]:
    """Cards for ``articles`` in order; ``tag`` adds the variant's UTM tags to story links."""
    site_host = (urlsplit(site_url).hostname or "").removeprefix("www.")
    anchors = {canonical_url(a.url): f"#story-{n}" for n, a in enumerate(articles, start=1)}
    anchors.update({a.key: f"#story-{n}" for n, a in enumerate(articles, start=1)})
    cards = []
    for number, article in enumerate(articles, start=1):
        summary = article.dek or html_to_text(article.summary_html)
        cards.append(
            Card(
                number=number,
                anchor=f"story-{number}",
                article=article,
                kicker=kicker(article),
                headline=cap(article.title, HEADLINE_MAX),
                summary=cap(summary, SUMMARY_MAX),
                link=tag(article.url),
                link_text=_link_text(article, number, site_host),
                thumbnail=article.hero,
                byline=article.author,
                minutes=reading_minutes(article),
                teaser=_teaser(article, anchors, tag),
            )
        )
    return cards


def _teaser(article: Article, anchors: dict[str, str], tag) -> TeaserView | None:
    teaser = article.keep_reading
    if teaser is None:
        return None
    inside = anchors.get(canonical_url(teaser.url))
    return TeaserView(
        title=cap(teaser.title, HEADLINE_MAX),
        summary=cap(teaser.summary, SUMMARY_MAX),
        url=inside or tag(teaser.url),
        in_edition=inside is not None,
    )
