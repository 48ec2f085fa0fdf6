"""The email edition: MJML compiled to responsive HTML, plus a plain-text part.

Both parts carry the per-recipient placeholders of
:mod:`briefcast.render.placeholders`; the sender fills them for each reader.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup
from mjml import mjml2html

from briefcast.models import Article, EmailVariant
from briefcast.render.context import lead_body_html
from briefcast.render.errors import RenderError
from briefcast.render.templating import Templates
from briefcast.text import html_to_text, squash

# Gmail clips messages over 102 KB, hiding the footer and its unsubscribe link.
# The budget leaves room for the placeholders' values filled in at send time.
HTML_BUDGET_BYTES = 100_000
PREHEADER_LIMIT = 150

HTML_TEMPLATE = "email.mjml.j2"
TEXT_TEMPLATE = "email.txt.j2"
SUBJECT_TEMPLATE = "email_subject.txt.j2"
PREHEADER_TEMPLATE = "email_preheader.txt.j2"


def clip(text: str, limit: int) -> str:
    """``text`` on one line, cut at a word boundary with an ellipsis if longer than ``limit``."""
    text = squash(text)
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:.-–—") + "…"


def _story_html(article: Article, lead: bool) -> dict[str, Any]:
    """HTML fields marked safe (they arrive sanitized) for the markup template."""
    return {
        "article": article,
        "body": Markup(lead_body_html(article) if lead else article.summary_html),
        "view": Markup(article.view.html) if article.view else None,
        "image_alt": (article.hero.alt or article.title) if article.hero else "",
        "also_in": _other_headings(article) if lead else [],
    }


def _story_text(article: Article, lead: bool) -> dict[str, Any]:
    return {
        "article": article,
        "body": html_to_text(lead_body_html(article) if lead else ""),
        "view": html_to_text(article.view.html) if article.view else "",
        "also_in": _other_headings(article) if lead else [],
    }


def _other_headings(article: Article) -> list[str]:
    """Headings of the sections the email leaves out (it shows the first one at most)."""
    return [section.heading for section in article.sections[1:] if section.heading]


def render_email(templates: Templates, context: dict[str, Any]) -> EmailVariant:
    lead, others = context["lead"], context["others"]
    subject = squash(templates.render(SUBJECT_TEMPLATE, context))
    preheader = clip(templates.render(PREHEADER_TEMPLATE, context), PREHEADER_LIMIT)
    common = {**context, "subject": subject, "preheader": preheader}
    text = templates.render(
        TEXT_TEMPLATE,
        common,
        lead_story=_story_text(lead, True),
        stories=[_story_text(a, False) for a in others],
    ).strip()
    html = _compile(templates, common, compact=False)
    if len(html.encode()) > HTML_BUDGET_BYTES:
        html = _compile(templates, common, compact=True)
    size = len(html.encode())
    if size > HTML_BUDGET_BYTES:
        raise RenderError(
            f"email HTML is {size} bytes even in compact form; Gmail clips over 102 KB"
        )
    return EmailVariant(subject=subject, preheader=preheader, html=html, text=text + "\n")


def _compile(templates: Templates, context: dict[str, Any], compact: bool) -> str:
    """Render the MJML template and compile it; ``compact`` drops the long parts."""
    source = templates.render(
        HTML_TEMPLATE,
        context,
        compact=compact,
        lead_story=_story_html(context["lead"], True),
        stories=[_story_html(a, False) for a in context["others"]],
    )
    try:
        return mjml2html(source, disable_comments=True)
    except Exception as exc:  # mjml-python raises plain errors for invalid markup
        raise RenderError(f"{HTML_TEMPLATE} is not valid MJML: {exc}") from exc
