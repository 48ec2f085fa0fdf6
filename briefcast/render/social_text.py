"""Fitting text into a social post under a platform's own counting rules.

Bluesky and Mastodon both count grapheme clusters (a family emoji is one),
but differ on links: Bluesky counts the text as written, so a post shows a
short form of the link and a facet carries the full URL; Mastodon counts every
URL as 23 characters, however long. :class:`Counting` captures one platform's
rules; :func:`fit_post` builds the longest post of whole leading parts plus a
link, shortening the first part at a word boundary with an ellipsis when even
it does not fit alone (never inside a grapheme).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import regex

ELLIPSIS = "…"
PART_SEPARATOR = "\n\n"
URL = regex.compile(r"https?://\S+")
_NO_SPACE_SCRIPT = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}]")
_TRAILING_PUNCTUATION = " \t\n,;:-–—"
_INVISIBLE = str.maketrans("", "", "\ufffe\ufeff\uffff")


def graphemes(text: str) -> int:
    return len(regex.findall(r"\X", text))


def mastodon_length(text: str, url_weight: int = 23) -> int:
    """Mastodon's count: graphemes, with every URL counted as ``url_weight`` characters."""
    return graphemes(URL.sub("x" * url_weight, text))


@dataclass(frozen=True)
class Counting:
    limit: int
    length: Callable[[str], int] = graphemes

    def fits(self, text: str) -> bool:
        return self.length(text) <= self.limit


def clean(text: str) -> str:
    """One line of NFC text without invisible characters platforms refuse."""
    return unicodedata.normalize("NFC", " ".join(text.translate(_INVISIBLE).split()))


def compose(parts: list[str], link: str) -> str:
    return PART_SEPARATOR.join([*parts, link] if link else parts)


def fit_post(text_parts: list[str], link: str, counting: Counting) -> str:
    """The longest post of whole leading parts plus ``link`` (which is never cut)."""
    parts = [p for p in (clean(part) for part in text_parts) if p]
    if not parts:
        if link and not counting.fits(link):
            raise ValueError("the link alone does not fit in a post")
        return link
    for count in range(len(parts), 0, -1):
        post = compose(parts[:count], link)
        if counting.fits(post):
            return post
    return compose([shorten(parts[0], link, counting)], link)


def shorten(text: str, link: str, counting: Counting) -> str:
    """``text`` cut at the last boundary that lets it, an ellipsis and ``link`` fit."""
    cuts = _grapheme_boundaries(text)
    words = [c for c in cuts if text[c].isspace() or _NO_SPACE_SCRIPT.search(text[c - 1 : c + 1])]
    for candidates in (words, cuts):
        candidates = [c for c in candidates if text[:c].rstrip(_TRAILING_PUNCTUATION)]
        low, high, found = 0, len(candidates) - 1, None
        while low <= high:  # the length grows with the cut: binary search for the longest
            mid = (low + high) // 2
            attempt = text[: candidates[mid]].rstrip(_TRAILING_PUNCTUATION) + ELLIPSIS
            if counting.fits(compose([attempt], link)):
                found, low = attempt, mid + 1
            else:
                high = mid - 1
        if found is not None:
            return found
    raise ValueError("the link alone does not fit in a post")


def _grapheme_boundaries(text: str) -> list[int]:
    offsets, position = [], 0
    for grapheme in regex.findall(r"\X", text):
        position += len(grapheme)
        if position < len(text):
            offsets.append(position)
    return offsets


def display_link(url: str, width: int = 30) -> str:
    """A link as people read it: no scheme or www., cut with an ellipsis past ``width``."""
    shown = regex.sub(r"^https?://(www\.)?", "", url).rstrip("/")
    if graphemes(shown) <= width:
        return shown
    return "".join(regex.findall(r"\X", shown)[: width - 1]) + ELLIPSIS


def byte_span(text: str, start: int, end: int) -> tuple[int, int]:
    """UTF-8 byte offsets of the character range ``text[start:end]``."""
    before = len(text[:start].encode())
    return before, before + len(text[start:end].encode())
