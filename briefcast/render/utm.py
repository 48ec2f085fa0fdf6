"""UTM tags on story links, per channel variant, from the ``[utm.<variant>]`` config tables.

Gathering strips every utm_* parameter from article URLs (they are part of no story's
identity), so tags added here are the only ones a rendered link carries.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from urllib.parse import quote, urlsplit, urlunsplit

from briefcast.config import UtmTags


def tagger(tags: UtmTags | None, edition_id: str, edition_date: date) -> Callable[[str], str]:
    """A function adding ``tags`` to an http(s) URL; the identity when there are none."""
    if tags is None:
        return lambda url: url

    def fill(value: str) -> str:
        return value.replace("{edition}", edition_id).replace("{date}", edition_date.isoformat())

    pairs = [
        (f"utm_{name}", fill(value))
        for name, value in (
            ("source", tags.source),
            ("medium", tags.medium),
            ("campaign", tags.campaign),
            ("content", tags.content),
        )
        if value
    ]
    if not pairs:
        return lambda url: url
    added = "&".join(f"{name}={quote(value, safe='')}" for name, value in pairs)

    def tag(url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            return url
        kept = [s for s in parts.query.split("&") if s and not s.lower().startswith("utm_")]
        query = "&".join([*kept, added])
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))

    return tag
