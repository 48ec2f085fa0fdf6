"""Characters a reader cannot see but that change what they read.

Bidi controls reorder text on screen (U+202E shows "gpj.exe" as "exe.jpg"), and
zero-width characters hide inside words, defeat search and pad lengths. They are
removed from every text field at gathering. The zero-width joiner is kept where it
glues an emoji sequence (👩‍💻, 🏳️‍🌈), and the zero-width non-joiner between letters of
the scripts that need it (Persian, the Indic scripts).
"""

from __future__ import annotations

import regex

BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
ZERO_WIDTH = "\u200b\u2060\u2061\u2062\u2063\u2064\ufeff\u180e\u00ad"
ZWJ, ZWNJ = "\u200d", "\u200c"

_ALWAYS = regex.compile(f"[{BIDI_CONTROLS}{ZERO_WIDTH}]")
_JOINERS = regex.compile(f"[{ZWJ}{ZWNJ}]")
_EMOJI = regex.compile(r"[\p{Extended_Pictographic}\p{Emoji_Modifier}\ufe0f\u20e3]")
_JOINING_SCRIPT = regex.compile(r"[\p{L}\p{M}&&[^\p{Latin}\p{Common}]]", regex.V1)


def strip_invisible(text: str) -> str:
    """``text`` without bidi controls or zero-width characters outside emoji sequences."""
    if not text:
        return text
    text = _ALWAYS.sub("", text)
    if ZWJ not in text and ZWNJ not in text:
        return text
    return _JOINERS.sub(lambda m: m.group(0) if _keeps(text, m.start()) else "", text)


def _keeps(text: str, at: int) -> bool:
    before, after = text[at - 1 : at], text[at + 1 : at + 2]
    if text[at] == ZWJ:
        return bool(before and after and _EMOJI.match(before) and _EMOJI.match(after))
    return bool(before and after and _JOINING_SCRIPT.match(before) and _JOINING_SCRIPT.match(after))
