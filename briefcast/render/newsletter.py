"""The email edition: MJML compiled to responsive HTML, plus a plain-text part.

Both parts carry the per-recipient placeholders of
:mod:`briefcast.render.placeholders`; the sender fills them for each reader.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup
from mjml import mjml2html

from briefcast.models import EmailVariant
from briefcast.render.cards import Card
from briefcast.render.context import lead_body_html
from briefcast.render.errors import RenderError
from briefcast.render.templating import Templates
from briefcast.text import html_to_text, squash
from briefcast.text_caps import HEADLINE_MAX, SUBJECT_MAX, cap

# Gmail clips messages over 102 KB, hiding the footer and its unsubscribe link.
# The budget leaves room for the placeholders' values filled in at send time.
HTML_BUDGET_BYTES = 100_000
PREHEADER_LIMIT = 150

HTML_TEMPLATE = "email.mjml.j2"
TEXT_TEMPLATE = "email.txt.j2"
SUBJECT_TEMPLATE = "email_subject.txt.j2"
PREHEADER_TEMPLATE = "email_preheader.txt.j2"


def _lead_html(card: Card) -> dict[str, Any]:
    """The lead's HTML fields marked safe (they arrive sanitized) for the markup template."""
    article = card.article
    return {
        "body": Markup(lead_body_html(article)),
        "view": Markup(article.view.html) if article.view else None,
        "image_alt": (article.hero.alt or article.title) if article.hero else "",
        "also_in": _other_headings(card),
    }


def _lead_text(card: Card) -> dict[str, Any]:
    article = card.article
    return {
        "body": html_to_text(lead_body_html(article)),
        "view": html_to_text(article.view.html) if article.view else "",
        "also_in": _other_headings(card),
    }


def _other_headings(card: Card) -> list[str]:
    """Headings of the sections the email leaves out (it shows the first one at most)."""
    sections = card.article.sections[1:]
    return [cap(section.heading, HEADLINE_MAX) for section in sections if section.heading]


def render_email(templates: Templates, context: dict[str, Any]) -> EmailVariant:
    subject = cap(squash(templates.render(SUBJECT_TEMPLATE, context)), SUBJECT_MAX)
    preheader = cap(templates.render(PREHEADER_TEMPLATE, context), PREHEADER_LIMIT)
    common = {**context, "subject": subject, "preheader": preheader}
    text = templates.render(TEXT_TEMPLATE, common, lead_story=_lead_text(context["lead_card"]))
    html = _compile(templates, common, compact=False)
    if len(html.encode()) > HTML_BUDGET_BYTES:
        html = _compile(templates, common, compact=True)
    size = len(html.encode())
    if size > HTML_BUDGET_BYTES:
        raise RenderError(
            f"email HTML is {size} bytes even in compact form; Gmail clips over 102 KB"
        )
    return EmailVariant(subject=subject, preheader=preheader, html=html, text=text.strip() + "\n")


def _compile(templates: Templates, context: dict[str, Any], compact: bool) -> str:
    """Render the MJML template and compile it; ``compact`` drops the long parts."""
    source = templates.render(
        HTML_TEMPLATE, context, compact=compact, lead_story=_lead_html(context["lead_card"])
    )
    try:
        return mjml2html(source, disable_comments=True)
    except Exception as exc:  # mjml-python raises plain errors for invalid markup
        raise RenderError(f"{HTML_TEMPLATE} is not valid MJML: {exc}") from exc
