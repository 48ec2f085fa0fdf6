"""Cutting Telegram HTML into pieces that fit a length limit.

Each piece is well-formed: tags open at a cut are closed at the end of the
piece and reopened at the start of the next. Cuts are made at paragraph
breaks if possible, else at sentence ends, else between words, and only as a
last resort between two characters (never inside a tag, an entity or an
emoji). Lengths are the raw HTML in UTF-16 code units, a conservative bound
on what Telegram counts after parsing.
"""

from __future__ import annotations

import re

import regex

from briefcast.render.telegram_html import Token, tokenize, utf16_len

PARAGRAPH, SENTENCE, WORD, CHARACTER = range(4)
ELLIPSIS = "…"

_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*\s+$|[。！？]$")
_NO_SPACE_SCRIPT = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}]")
_EMPTY_PAIR = re.compile(r"<([a-z][\w-]*)(?:\s[^>]*)?>(\s*)</\1>")


def _units(text: str) -> list[Token]:
    """Tags, entities and single graphemes: the pieces a cut never goes through."""
    units: list[Token] = []
    for token in tokenize(text):
        if token.kind == "text":
            units.extend(Token("text", g, visible=g) for g in regex.findall(r"\X", token.raw))
        else:
            units.append(token)
    return units


def _cut_levels(units: list[Token]) -> list[int]:
    """How good a cut before each unit is (index 0 and len(units) included)."""
    visible = [u.visible for u in units]
    offsets = [0]
    for piece in visible:
        offsets.append(offsets[-1] + len(piece))
    flat = "".join(visible)
    levels = [CHARACTER] * (len(units) + 1)
    for i in range(1, len(units)):
        tail, after = flat[max(0, offsets[i] - 12) : offsets[i]], flat[offsets[i] : offsets[i] + 1]
        if units[i - 1].kind == "open" or units[i].kind == "close":
            levels[i] = CHARACTER + 1  # would leave an empty tag pair: never cut here
            continue
        if after.isspace() or not tail:
            continue
        if tail.endswith("\n\n"):
            levels[i] = PARAGRAPH
        elif _SENTENCE_END.search(tail):
            levels[i] = SENTENCE
        elif tail[-1].isspace() or _NO_SPACE_SCRIPT.search(tail[-1] + after):
            levels[i] = WORD
    levels[0] = levels[-1] = PARAGRAPH
    return levels


def _open_stacks(units: list[Token]) -> list[tuple[Token, ...]]:
    """The tags still open before each unit."""
    stacks: list[tuple[Token, ...]] = [()]
    stack: list[Token] = []
    for unit in units:
        if unit.kind == "open":
            stack.append(unit)
        elif unit.kind == "close":
            for index in range(len(stack) - 1, -1, -1):
                if stack[index].name == unit.name:
                    del stack[index:]
                    break
        stacks.append(tuple(stack))
    return stacks


def _closing(stack: tuple[Token, ...]) -> str:
    return "".join(f"</{tag.name}>" for tag in reversed(stack))


def split_html(text: str, limit: int) -> list[str]:
    """Pieces of ``text``, each at most ``limit`` UTF-16 units and well-formed on its own."""
    if utf16_len(text) <= limit:
        return [text]
    units = _units(text)
    levels = _cut_levels(units)
    stacks = _open_stacks(units)
    widths = [utf16_len(u.raw) for u in units]
    pieces: list[str] = []
    start = 0
    while start < len(units):
        prefix = "".join(tag.raw for tag in stacks[start])
        used = utf16_len(prefix)
        best: list[int | None] = [None] * (CHARACTER + 1)
        end = start
        while end < len(units):
            used += widths[end]
            end += 1
            if used + utf16_len(_closing(stacks[end])) > limit:
                break
            if end == len(units):
                best = [end] * (CHARACTER + 1)
            elif levels[end] <= CHARACTER:
                for level in range(levels[end], CHARACTER + 1):
                    best[level] = end
        cut = next((b for b in best if b is not None and b > start), None)
        if cut is None:
            raise ValueError(f"cannot fit any text into {limit} characters")
        piece = _tidy(prefix + "".join(u.raw for u in units[start:cut]) + _closing(stacks[cut]))
        if piece:
            pieces.append(piece)
        start = cut
    return pieces


def _tidy(piece: str) -> str:
    """Drop the white space and empty tag pairs a cut leaves at the edges."""
    previous = None
    while previous != piece:
        previous = piece
        piece = _EMPTY_PAIR.sub(r"\2", piece)
    return _strip_edges(piece)


def _strip_edges(piece: str) -> str:
    """Strip white space at the start and end of the visible text, keeping the tags."""
    piece = re.sub(r"^((?:<[^>]+>)*)\s+", r"\1", piece)
    return re.sub(r"\s+((?:</[^>]+>)*)$", r"\1", piece)


def shorten_html(text: str, limit: int) -> str:
    """``text`` if it fits, else its first well-formed piece ending in an ellipsis."""
    if utf16_len(text) <= limit:
        return text
    first = split_html(text, limit - len(ELLIPSIS))[0]
    closing = re.search(r"(?:</[^>]+>)*$", first).group(0)
    body = first[: len(first) - len(closing)].rstrip(" ,;:.")
    return body + ELLIPSIS + closing


def pack(blocks: list[str], limit: int, separator: str = "\n\n") -> list[str]:
    """Messages made of whole blocks where they fit; a block too long alone is split."""
    messages: list[str] = []
    current = ""
    for block in blocks:
        if utf16_len(block) > limit:
            if current:
                messages.append(current)
            *whole, current = split_html(block, limit)
            messages.extend(whole)
        elif not current:
            current = block
        elif utf16_len(current + separator + block) <= limit:
            current += separator + block
        else:
            messages.append(current)
            current = block
    if current:
        messages.append(current)
    return messages
