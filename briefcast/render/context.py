"""What every template of an edition sees."""

from __future__ import annotations

from datetime import date
from typing import Any

from briefcast.config import Settings
from briefcast.models import Article, Gathered
from briefcast.render import placeholders
from briefcast.render.errors import RenderError


def date_label(day: date) -> str:
    return f"{day:%A}, {day.day} {day:%B %Y}"


def lead_body_html(article: Article) -> str:
    """The lead's summary, or its first section when it has no summary."""
    if article.summary_html:
        return article.summary_html
    return article.sections[0].html if article.sections else ""


def edition_context(settings: Settings, gathered: Gathered, edition_id: str) -> dict[str, Any]:
    if not gathered.articles:
        raise RenderError(f"edition {edition_id} has no articles to render")
    publication = settings.publication
    lead, *others = gathered.articles
    return {
        "publication": publication,
        "edition_id": edition_id,
        "edition_date": gathered.edition_date,
        "date_label": date_label(gathered.edition_date),
        "articles": gathered.articles,
        "lead": lead,
        "others": others,
        "subscribe_url": publication.subscribe_url or publication.site_url,
        "subscribe_call": publication.subscribe_call,
        "unsubscribe_url": placeholders.UNSUBSCRIBE_URL,
        "view_url": placeholders.VIEW_URL,
        "first_name": placeholders.FIRST_NAME,
    }
