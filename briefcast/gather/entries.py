"""Helpers every source reader shares while turning an entry into an Article."""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime, time, tzinfo

from briefcast.sanitize import clean_text
from briefcast.text import html_to_text, squash

_FIRST_PARAGRAPH = re.compile(r"<p>.*?</p>", re.DOTALL)
SUMMARY_MAX_CHARS = 600


class SkipEntry(Exception):
    """This entry cannot become an article; the message says why."""

    def __init__(self, reason: str, entry: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.entry = entry


def first_paragraph(fragment: str) -> str:
    """The first ``<p>`` of sanitized HTML, or the whole fragment if it has none."""
    match = _FIRST_PARAGRAPH.search(fragment or "")
    return match.group(0) if match else (fragment or "")


def short_summary(fragment: str) -> str:
    """A feed entry's summary for the brief: its first paragraph, and if that is longer than
    SUMMARY_MAX_CHARS characters of text, the text cut at a word with an ellipsis.

    Many feeds carry the whole article in the description; shown in full, twelve of them
    made a 340 KB text part and a Telegram digest of almost a hundred messages.
    """
    first = first_paragraph(fragment)
    text = squash(html_to_text(first))
    if len(text) <= SUMMARY_MAX_CHARS:
        return first
    cut = text[: SUMMARY_MAX_CHARS - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return f"<p>{html.escape(cut.rstrip(' ,;:.-–—'), quote=False)}…</p>"


def text_to_html(text: str) -> str:
    """Plain text as HTML paragraphs (blank lines separate paragraphs)."""
    paragraphs = [clean_text(p) for p in re.split(r"\n\s*\n", text or "")]
    return "".join(f"<p>{html.escape(p, quote=False)}</p>" for p in paragraphs if p)


def as_datetime(value: object, zone: tzinfo = UTC) -> datetime | None:
    """A timezone-aware datetime from a datetime, date or ISO 8601 string.

    Values without an offset are read in ``zone``; a bare date means local midnight.
    Returns None for anything unreadable.
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    elif isinstance(value, str) and value.strip():
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def label(title: str, url: str, fallback: str = "") -> str:
    """How an entry is named in a SourceProblem."""
    return clean_text(title) or (url or "").strip() or fallback
