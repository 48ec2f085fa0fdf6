"""A story's summary: the entry's own first meaningful text, whatever its markup.

Feeds put the body in ``<p>`` paragraphs, or as bare text with ``<br>`` line breaks
(forums, many CMSs), or in list items; and they append their own boilerplate ("The post
… appeared first on …", "Statistics: Posted by …", "Continue reading", "[…]"). The
summary is the first block of sanitized HTML that holds real text and is not
boilerplate, with trailing boilerplate cut off, capped at a word.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

from briefcast.text import html_to_text, squash
from briefcast.text_caps import cap

SUMMARY_MAX_CHARS = 600
MIN_LETTERS = 3  # fewer letters than this is a stray mark, a date, an image's leftovers

_BLOCK_TAGS = {"p", "li", "blockquote", "h2", "h3", "h4", "pre", "ul", "ol", "div"}
_INLINE_TAGS = {"a", "strong", "b", "em", "i", "u", "code"}

# Whole blocks that are a feed's furniture, never a story's text.
_BOILERPLATE_BLOCK = re.compile(
    r"""^(?:
        statistics:\s*posted\s+by\b
      | the\s+post\b.{1,300}\bappeared\s+first\s+on\b
      | this\s+(?:entry|post)\s+was\s+posted\s+in\b
      | (?:continue|keep)\s+reading\b
      | read\s+(?:more|the\s+(?:full|rest)|on)\b
      | (?:submitted\s+by\s+/?u/\S+)
      | \[\s*link\s*\]\s*\[\s*comments\s*\]
      | (?:filed\s+under|tagged(?:\s+with)?|posted\s+in|categories)\s*:
      | (?:share\s+this|like\s+this)\s*:
      | comments?\s*(?:\(\d+\))?$
      | (?:\[|\()?\s*(?:…|\.\.\.|&hellip;)\s*(?:\]|\))?$
    )""",
    re.IGNORECASE | re.VERBOSE | re.DOTALL,
)
# Furniture glued to the end of a block of real text.
_BOILERPLATE_TAIL = re.compile(
    r"""\s*(?:
        (?:\[|\()\s*(?:…|\.\.\.|&hellip;|&\#8230;|more)\s*(?:\]|\))
      | (?:(?<=[.!?…\]])|…)\s*(?:continue\s+reading|read\s+more|keep\s+reading)\b[^.!?]{0,120}
      | the\s+post\b.{1,300}\bappeared\s+first\s+on\b.*
      | statistics:\s*posted\s+by\b.*
    )\s*$""",
    re.IGNORECASE | re.VERBOSE | re.DOTALL,
)
_LETTER = re.compile(r"[^\W\d_]")


class _Blocks(HTMLParser):
    """Split sanitized HTML into blocks of inline HTML: at block tags and at a blank line
    made of two or more ``<br>`` (a single ``<br>`` is a line break inside a block)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.blocks: list[str] = []
        self.current: list[str] = []
        self.open_inline: list[tuple[str, str]] = []  # (tag, its start tag as written)
        self.breaks = 0

    def _end_block(self) -> None:
        closing = "".join(f"</{tag}>" for tag, _ in reversed(self.open_inline))
        block = "".join(self.current) + closing
        if block.strip():
            self.blocks.append(block.strip())
        self.current = [raw for _, raw in self.open_inline]
        self.breaks = 0

    def handle_starttag(self, tag, attrs):
        if tag == "br":
            self.breaks += 1
            if self.breaks >= 2:
                self._end_block()
            return
        if tag in _BLOCK_TAGS:
            self._end_block()
            return
        self._pending_break()
        raw = self.get_starttag_text() or f"<{tag}>"
        if tag in _INLINE_TAGS:
            self.open_inline.append((tag, raw))
        self.current.append(raw)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag in _BLOCK_TAGS:
            self._end_block()
        elif tag in _INLINE_TAGS and any(t == tag for t, _ in self.open_inline):
            tags = [t for t, _ in self.open_inline]
            del self.open_inline[len(tags) - 1 - tags[::-1].index(tag)]
            self.current.append(f"</{tag}>")

    def _pending_break(self) -> None:
        if self.breaks == 1:
            self.current.append(" ")
        self.breaks = 0

    def handle_data(self, data):
        if data.strip():
            self._pending_break()
        self.current.append(data)

    def handle_entityref(self, name):
        self.handle_data(f"&{name};")

    def handle_charref(self, name):
        self.handle_data(f"&#{name};")

    def close(self):
        super().close()
        self._end_block()


def text_blocks(fragment: str) -> list[str]:
    """The blocks of inline HTML in ``fragment``, in order."""
    parser = _Blocks()
    parser.feed(fragment or "")
    parser.close()
    return parser.blocks


def _meaningful(text: str) -> bool:
    return len(_LETTER.findall(text)) >= MIN_LETTERS and not _BOILERPLATE_BLOCK.match(text)


def _without_tail(block: str) -> str:
    """The block without boilerplate at its end, as HTML; "" if nothing is left."""
    text = squash(html_to_text(block))
    trimmed = _BOILERPLATE_TAIL.sub("", text)
    if trimmed == text:
        return block
    trimmed = trimmed.rstrip(" ,;:-–—")
    if not trimmed:
        return ""
    # The cut falls inside the block's markup: keep its text only, which is what a
    # summary needs (links in furniture are the furniture's).
    return html.escape(trimmed + ("" if trimmed.endswith((".", "!", "?", "…")) else "…"), False)


def summary_html(fragment: str) -> str:
    """The summary as one HTML paragraph, or "" when the entry has no text of its own."""
    for block in text_blocks(fragment):
        text = squash(html_to_text(block))
        if not _meaningful(text):
            continue
        block = _without_tail(block)
        text = squash(html_to_text(block))
        if not _meaningful(text):
            continue
        if len(text) > SUMMARY_MAX_CHARS:
            return f"<p>{html.escape(cap(text, SUMMARY_MAX_CHARS), quote=False)}</p>"
        return f"<p>{block}</p>"
    return ""
