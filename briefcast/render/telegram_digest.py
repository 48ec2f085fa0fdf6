"""The Telegram edition: a digest in Telegram's HTML parse mode, plus the lead's photo.

Each story reads as a card: bold headline, short summary, one link. When the lead has a
photo, its caption is the lead's card and the first message goes on from there (the
story's opening and the editor's view) instead of repeating the headline and summary.
Messages are filled with whole stories; a story too long for one message is split into
well-formed pieces. Limits are applied to the raw HTML in UTF-16 units, which is never
less than what Telegram counts after parsing.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from briefcast.models import TelegramMessage, TelegramPhoto
from briefcast.render.cards import Card
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
from briefcast.text_caps import cap

CARD_SUMMARY_MAX = 280  # "short": a card in a chat, not the story


def _tidy(rendered: str) -> str:
    # Autoescaping writes ' and " as numeric entities (five characters each); in text
    # Telegram needs neither escaped. Templates quote attributes with double quotes.
    return rendered.replace("&#39;", "'").replace("&#34;", "&quot;").strip()


def has_photo(card: Card) -> bool:
    hero = card.article.hero
    return hero is not None and hero.url.startswith(("https://", "http://"))


def _story(templates: Templates, context: dict[str, Any], card: Card, continued: bool) -> str:
    article = card.article
    lead = card.is_lead
    body = to_telegram_html(lead_body_html(article)) if lead else ""
    view = to_telegram_html(article.view.html) if lead and article.view else ""
    # The lead's body opens with its summary; shown above it as well only when it is a dek.
    summary = "" if lead and not article.dek else cap(card.summary, CARD_SUMMARY_MAX)
    return _tidy(
        templates.render(
            "telegram_story.html.j2",
            context,
            card=card,
            article=article,
            is_lead=lead,
            continued=continued,
            summary=Markup(escape(summary)),
            body=Markup(body),
            view=Markup(view),
        )
    )


def render_messages(
    templates: Templates, context: dict[str, Any], cards: list[Card], limit: int = MESSAGE_LIMIT
) -> list[TelegramMessage]:
    header = _tidy(templates.render("telegram_header.html.j2", context))
    lead = _story(templates, context, cards[0], continued=has_photo(cards[0]))
    # The header travels with the lead, so a long lead never leaves it alone in a message.
    blocks = ["\n\n".join(part for part in (header, lead) if part)]
    blocks.extend(_story(templates, context, card, continued=False) for card in cards[1:])
    # The footer travels with the last story, so it never arrives as a message of its own.
    footer = _tidy(templates.render("telegram_footer.html.j2", context))
    blocks[-1] = "\n\n".join(part for part in (blocks[-1], footer) if part)
    return [TelegramMessage(text=text) for text in pack([b for b in blocks if b], limit)]


def render_photo(
    templates: Templates, context: dict[str, Any], card: Card, limit: int = CAPTION_LIMIT
) -> TelegramPhoto | None:
    """The lead story's hero image with its card as the caption, if Telegram can fetch it."""
    if not has_photo(card):
        return None

    def caption(summary: str) -> str:
        return _tidy(
            templates.render(
                "telegram_caption.html.j2", context, card=card, summary=Markup(summary)
            )
        )

    bare = caption("")
    summary = escape(cap(card.summary, CARD_SUMMARY_MAX))
    room = limit - utf16_len(bare) - 1  # the line break before the summary
    text = caption(shorten_html(summary, room)) if summary and room > 20 else bare
    return TelegramPhoto(url=card.article.hero.url, caption=shorten_html(text, limit))
