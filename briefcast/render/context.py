"""What every template of an edition sees."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from briefcast.config import Settings
from briefcast.models import Article, Gathered
from briefcast.render import placeholders
from briefcast.render.cards import WORDS_PER_MINUTE, Card, build_cards
from briefcast.render.errors import RenderError
from briefcast.render.palette import palette
from briefcast.render.utm import tagger
from briefcast.text import html_to_text


def date_label(day: date) -> str:
    return f"{day:%A}, {day.day} {day:%B %Y}"


def lead_body_html(article: Article) -> str:
    """The lead's summary, or its first section when it has no summary."""
    if article.summary_html:
        return article.summary_html
    return article.sections[0].html if article.sections else ""


def link_tagger(settings: Settings, gathered: Gathered, edition_id: str, variant: str):
    """The UTM tagger for one channel variant (``[utm.<variant>]``), identity if none."""
    return tagger(settings.utm.get(variant), edition_id, gathered.edition_date)


def tagged_articles(articles: list[Article], tag: Callable[[str], str]) -> list[Article]:
    """Copies of ``articles`` whose story links carry a variant's UTM tags."""
    return [a.model_copy(update={"url": tag(a.url)}) for a in articles]


def brief_minutes(cards: list[Card]) -> int:
    """How long the brief itself takes to read (the lead's opening and view, every card)."""
    lead = cards[0].article
    parts = [html_to_text(lead_body_html(lead))]
    parts += [html_to_text(lead.view.html)] if lead.view else []
    parts += [f"{card.headline} {card.summary}" for card in cards]
    return max(1, round(sum(len(p.split()) for p in parts) / WORDS_PER_MINUTE))


def edition_context(settings: Settings, gathered: Gathered, edition_id: str) -> dict[str, Any]:
    if not gathered.articles:
        raise RenderError(f"edition {edition_id} has no articles to render")
    publication = settings.publication
    lead, *others = gathered.articles
    cards = build_cards(
        gathered.articles,
        publication.site_url,
        link_tagger(settings, gathered, edition_id, "email"),
    )
    return {
        "publication": publication,
        "design": settings.design,
        "palette": palette(settings.design.brand_color),
        "site_host": (urlsplit(publication.site_url).hostname or "").removeprefix("www."),
        "edition_id": edition_id,
        "edition_date": gathered.edition_date,
        "date_label": date_label(gathered.edition_date),
        "articles": gathered.articles,
        "lead": lead,
        "others": others,
        "cards": cards,
        "lead_card": cards[0],
        "brief_minutes": brief_minutes(cards),
        "other_cards": cards[1:],
        "subscribe_url": publication.subscribe_url or publication.site_url,
        "subscribe_call": publication.subscribe_call,
        "unsubscribe_url": placeholders.UNSUBSCRIBE_URL,
        "view_url": placeholders.VIEW_URL,
        "first_name": placeholders.FIRST_NAME,
    }
