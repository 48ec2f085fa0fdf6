"""Helpers every source reader shares while turning an entry into an Article."""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime, time, tzinfo

from briefcast.gather.summary import summary_html
from briefcast.sanitize import clean_text, plain_text


class SkipEntry(Exception):
    """This entry cannot become an article; the message says why."""

    def __init__(self, reason: str, entry: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.entry = entry


def short_summary(fragment: str) -> str:
    """A feed entry's summary for the brief: its first meaningful text (see
    briefcast.gather.summary), never the feed's boilerplate, capped at a word.

    Many feeds carry the whole article in the description; shown in full, twelve of them
    made a 340 KB text part and a Telegram digest of almost a hundred messages.
    """
    return summary_html(fragment)


def text_to_html(text: str) -> str:
    """Plain text as HTML paragraphs (blank lines separate paragraphs)."""
    paragraphs = [plain_text(p) for p in re.split(r"\n\s*\n", text or "")]
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
