"""The Telegram edition: a digest in Telegram's HTML parse mode, plus the lead's photo.

Messages are filled with whole stories; a story too long for one message is
split into well-formed pieces. Limits are applied to the raw HTML in UTF-16
units, which is never less than what Telegram counts after parsing.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from briefcast.models import Article, TelegramMessage, TelegramPhoto
from briefcast.render.context import lead_body_html
from briefcast.render.html_split import pack, shorten_html
from briefcast.render.telegram_html import (
    CAPTION_LIMIT,
    MESSAGE_LIMIT,
    escape,
    to_telegram_html,
    utf16_len,
)
from briefcast.render.templating import Templates


def _tidy(rendered: str) -> str:
    # Autoescaping writes ' and " as numeric entities (five characters each); in text
    # Telegram needs neither escaped. Templates quote attributes with double quotes.
    return rendered.replace("&#39;", "'").replace("&#34;", "&quot;").strip()


def _story(templates: Templates, context: dict[str, Any], article: Article, lead: bool) -> str:
    # Other stories get their summary only when they have no dek: a digest, not the paper.
    body = lead_body_html(article) if lead else ("" if article.dek else article.summary_html)
    summary = to_telegram_html(body)
    view = to_telegram_html(article.view.html) if lead and article.view else ""
    return _tidy(
        templates.render(
            "telegram_story.html.j2",
            context,
            article=article,
            is_lead=lead,
            summary=Markup(summary),
            view=Markup(view),
        )
    )


def render_messages(
    templates: Templates, context: dict[str, Any], limit: int = MESSAGE_LIMIT
) -> list[TelegramMessage]:
    header = _tidy(templates.render("telegram_header.html.j2", context))
    lead = _story(templates, context, context["lead"], lead=True)
    # The header travels with the lead, so a long lead never leaves it alone in a message.
    blocks = ["\n\n".join(part for part in (header, lead) if part)]
    blocks.extend(_story(templates, context, a, lead=False) for a in context["others"])
    # The footer travels with the last story, so it never arrives as a message of its own.
    footer = _tidy(templates.render("telegram_footer.html.j2", context))
    blocks[-1] = "\n\n".join(part for part in (blocks[-1], footer) if part)
    return [TelegramMessage(text=text) for text in pack([b for b in blocks if b], limit)]


def render_photo(
    templates: Templates, context: dict[str, Any], limit: int = CAPTION_LIMIT
) -> TelegramPhoto | None:
    """The lead story's hero image with a caption, if it has one Telegram can fetch."""
    lead: Article = context["lead"]
    if lead.hero is None or not lead.hero.url.startswith(("https://", "http://")):
        return None

    def caption(dek: str) -> str:
        return _tidy(
            templates.render("telegram_caption.html.j2", context, article=lead, dek=Markup(dek))
        )

    bare = caption("")
    dek = escape(lead.dek)
    room = limit - utf16_len(bare) - 1  # the line break before the dek
    text = caption(shorten_html(dek, room)) if dek and room > 20 else bare
    return TelegramPhoto(url=lead.hero.url, caption=shorten_html(text, limit))
