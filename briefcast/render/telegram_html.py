"""Telegram's HTML parse mode: converting to it, measuring it, checking it.

Telegram accepts a small set of tags (b, i, u, s, a href, code, pre,
blockquote, spoilers, custom emoji) and four named entities; every other
``<``, ``>`` and ``&`` must be escaped. Lengths are counted in UTF-16 code
units, as Telegram does.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from html.parser import HTMLParser

MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024

# tag -> attributes it may carry (None: no attributes at all)
ALLOWED_TAGS: dict[str, frozenset[str]] = {
    **{t: frozenset() for t in ("b", "strong", "i", "em", "u", "ins", "s", "strike", "del")},
    "a": frozenset({"href"}),
    "code": frozenset({"class"}),
    "pre": frozenset(),
    "blockquote": frozenset({"expandable"}),
    "span": frozenset({"class"}),
    "tg-spoiler": frozenset(),
    "tg-emoji": frozenset({"emoji-id"}),
}
NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}

_ATTR = r"""[A-Za-z][\w-]*(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'<>=`]+))?"""
TOKEN = re.compile(
    rf"<(?P<close>/?)(?P<name>[A-Za-z][\w-]*)(?P<attrs>(?:\s+{_ATTR})*)\s*/?>"
    r"|&(?P<entity>#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);"
)
_ATTR_PAIR = re.compile(r"""([A-Za-z][\w-]*)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s"'<>=`]+))?""")


@dataclass(frozen=True)
class Token:
    kind: str  # "open", "close", "entity" or "text"
    raw: str
    name: str = ""  # tag name, lower case
    visible: str = ""  # what the reader sees: decoded entity or the text itself


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def tokenize(text: str) -> list[Token]:
    """Tags, entities and the text between them, in order."""
    tokens: list[Token] = []
    pos = 0
    for match in TOKEN.finditer(text):
        if match.start() > pos:
            chunk = text[pos : match.start()]
            tokens.append(Token("text", chunk, visible=chunk))
        raw = match.group(0)
        if match.group("entity"):
            tokens.append(Token("entity", raw, visible=_decode_entity(match.group("entity"))))
        else:
            kind = "close" if match.group("close") else "open"
            tokens.append(Token(kind, raw, name=match.group("name").lower()))
        pos = match.end()
    if pos < len(text):
        tokens.append(Token("text", text[pos:], visible=text[pos:]))
    return tokens


def _decode_entity(body: str) -> str:
    if body.startswith("#"):
        try:
            number = int(body[2:], 16) if body[1:2] in "xX" else int(body[1:])
            return chr(number)
        except (ValueError, OverflowError):
            return ""
    return NAMED_ENTITIES.get(body, "")


def visible_text(text: str) -> str:
    """The text a reader sees once Telegram has parsed the entities."""
    return "".join(t.visible for t in tokenize(text))


def telegram_length(text: str) -> int:
    """Length after entity parsing, in UTF-16 code units (Telegram's own count)."""
    return utf16_len(visible_text(text))


def validate_telegram_html(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Problems Telegram would refuse: bad tags or attributes, unbalanced tags, length."""
    problems: list[str] = []
    stack: list[str] = []
    for token in tokenize(text):
        if token.kind == "text":
            for char, label in (("<", "'<'"), (">", "'>'"), ("&", "'&'")):
                if char in token.raw:
                    problems.append(f"unescaped {label} in text: {_excerpt(token.raw, char)!r}")
        elif token.kind == "entity":
            name = token.raw[1:-1]
            if not name.startswith("#") and name not in NAMED_ENTITIES:
                problems.append(f"unsupported entity {token.raw}")
        elif token.name not in ALLOWED_TAGS:
            problems.append(f"tag <{token.name}> is not allowed")
        elif token.kind == "open":
            problems.extend(_attribute_problems(token))
            stack.append(token.name)
        elif not stack:
            problems.append(f"</{token.name}> closes nothing")
        elif stack[-1] != token.name:
            problems.append(f"</{token.name}> closes <{stack[-1]}>")
            if token.name in stack:
                del stack[len(stack) - 1 - stack[::-1].index(token.name) :]
        else:
            stack.pop()
    problems.extend(f"<{name}> is never closed" for name in reversed(stack))
    length = telegram_length(text)
    if not visible_text(text).strip():
        problems.append("text is empty")
    if length > limit:
        problems.append(f"too long: {length} characters, the limit is {limit}")
    return problems


def _attribute_problems(token: Token) -> list[str]:
    attrs = _ATTR_PAIR.findall(token.raw[len(token.name) + 1 : -1])
    allowed = ALLOWED_TAGS[token.name]
    problems = [
        f"attribute {name!r} is not allowed on <{token.name}>"
        for name, _ in attrs
        if name.lower() not in allowed
    ]
    names = {name.lower(): value.strip("\"'") for name, value in attrs}
    if token.name == "a" and not names.get("href"):
        problems.append("<a> without href")
    if token.name == "span" and names.get("class") != "tg-spoiler":
        problems.append('<span> needs class="tg-spoiler"')
    if token.name == "tg-emoji" and not names.get("emoji-id"):
        problems.append("<tg-emoji> without emoji-id")
    return problems


def _excerpt(text: str, char: str) -> str:
    at = text.index(char)
    return text[max(0, at - 15) : at + 15]


# -- converting sanitized article HTML -------------------------------------

_INLINE = {
    "b": "b",
    "strong": "b",
    "i": "i",
    "em": "i",
    "u": "u",
    "ins": "u",
    "s": "s",
    "strike": "s",
    "del": "s",
    "code": "code",
}
_BLOCKS = {"p": 2, "div": 1, "ul": 2, "ol": 2, "li": 1, "tr": 1, "table": 2, "figure": 2}
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_SKIP_CONTENT = {"script", "style", "template", "head", "title"}
_SAFE_SCHEMES = ("http://", "https://", "mailto:", "tg://")


class _TelegramWriter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.stack: list[tuple[str, str | None]] = []  # (source tag, emitted tag)
        self.pending = 0  # newlines owed before the next visible thing
        self.skipping = 0
        self.in_pre = 0

    # the output so far ends a line: leading spaces of the next text are dropped
    def _at_line_start(self) -> bool:
        return not self.out or self.out[-1].endswith("\n") or self.pending > 0

    def _flush(self) -> None:
        if self.pending and self.out:
            self.out.append("\n" * self.pending)
        self.pending = 0

    def _break(self, lines: int) -> None:
        self.pending = max(self.pending, lines)

    def _open(self, source: str, tag: str | None, raw: str = "") -> None:
        if tag is not None and any(emitted == tag for _, emitted in self.stack):
            tag = None  # Telegram gains nothing from <b><b>
        if tag is not None:
            self._flush()
            self.out.append(raw or f"<{tag}>")
        self.stack.append((source, tag))

    def _close(self, source: str) -> None:
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index][0] == source:
                for _, emitted in reversed(self.stack[index:]):
                    if emitted is not None:
                        self.out.append(f"</{emitted}>")
                del self.stack[index:]
                return

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP_CONTENT:
            self.skipping += 1
            return
        if tag == "br":
            if self.out:
                self._flush()
                self.out.append("\n")
            return
        if tag in _BLOCKS:
            self._break(_BLOCKS[tag])
            if tag == "li":
                self._flush()
                self.out.append("• ")
            return
        if tag in _HEADINGS:
            self._break(2)
            self._open(tag, "b")
        elif tag in _INLINE:
            self._open(tag, _INLINE[tag])
        elif tag == "a":
            href = dict(attrs).get("href") or ""
            if href.startswith(_SAFE_SCHEMES):
                self._open(tag, "a", f'<a href="{html.escape(href, quote=True)}">')
            else:
                self._open(tag, None)
        elif tag in {"pre", "blockquote"}:
            self._break(2)
            self._open(tag, tag)
            self.in_pre += tag == "pre"

    def handle_startendtag(self, tag, attrs):
        if tag == "br":
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag in _SKIP_CONTENT:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCKS:
            self._break(_BLOCKS[tag])
        elif tag in _HEADINGS or tag in {"pre", "blockquote"}:
            self._close(tag)
            self._break(2)
            self.in_pre -= tag == "pre"
        elif tag in _INLINE or tag == "a":
            self._close(tag)

    def handle_data(self, data):
        if self.skipping:
            return
        if not self.in_pre:
            data = re.sub(r"\s+", " ", data)
            if self._at_line_start():
                data = data.lstrip()
        if not data:
            return
        self._flush()
        self.out.append(html.escape(data, quote=False))

    def result(self) -> str:
        for _, emitted in reversed(self.stack):
            if emitted is not None:
                self.out.append(f"</{emitted}>")
        text = "".join(self.out)
        text = re.sub(r"[ \t]+\n", "\n", text)
        return re.sub(r"\n{3,}", "\n\n", text).strip()


def to_telegram_html(fragment: str) -> str:
    """Telegram HTML from a sanitized HTML fragment: known tags mapped, the rest unwrapped."""
    if not fragment:
        return ""
    writer = _TelegramWriter()
    writer.feed(fragment)
    writer.close()
    return writer.result()


def escape(text: str) -> str:
    """Plain text made safe for Telegram HTML."""
    return html.escape(text, quote=False)
