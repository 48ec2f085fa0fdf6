"""Capping text to a length for a channel: at a word, with an ellipsis, never inside a
grapheme cluster (a flag, an emoji with a skin tone, a letter with its accents).

Shared by every renderer (email subject and headings, summaries, Telegram, X, and the
channels other modules add): ``cap`` counts characters by default, or any unit a channel
counts in via ``measure`` (Telegram counts UTF-16 code units).
"""

from __future__ import annotations

from collections.abc import Callable

import regex

ELLIPSIS = "…"
# Left at the end of a cut text before the ellipsis, these read as a typo.
TRAILING = " \t\n,;:.-–—([{\"'“‘/"

SUBJECT_MAX = 90  # inboxes show 40-90; past ~100 a subject is a paragraph
HEADLINE_MAX = 140
SUMMARY_MAX = 320  # a story card's summary: two or three sentences

_GRAPHEME = regex.compile(r"\X")
_NO_SPACE_SCRIPT = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}]")


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def squash(text: str) -> str:
    return " ".join((text or "").split())


def cap(
    text: str,
    limit: int,
    *,
    measure: Callable[[str], int] = len,
) -> str:
    """``text`` on one line, and if it measures more than ``limit``, cut with an ellipsis
    so that the result measures at most ``limit``.

    The cut falls at the last word boundary that fits, between grapheme clusters only;
    text in a script written without spaces is cut between characters.
    """
    text = squash(text)
    if measure(text) <= limit:
        return text
    room = limit - measure(ELLIPSIS)
    graphemes = _GRAPHEME.findall(text)
    ends: list[int] = []  # offset after each grapheme that still fits
    used = 0
    offset = 0
    for grapheme in graphemes:
        used += measure(grapheme)
        if used > room:
            break
        offset += len(grapheme)
        ends.append(offset)
    if not ends:
        return ELLIPSIS if measure(ELLIPSIS) <= limit else ""
    word_cuts = [e for e in ends if e < len(text) and _is_word_boundary(text, e)]
    cut = word_cuts[-1] if word_cuts else ends[-1]
    kept = text[:cut].rstrip(TRAILING) or text[: ends[-1]]
    return kept + ELLIPSIS


def _is_word_boundary(text: str, offset: int) -> bool:
    before, after = text[offset - 1], text[offset]
    return after.isspace() or bool(_NO_SPACE_SCRIPT.search(before + after))
