"""A Telegram message as a reader sees it: Markdown for the artifact, HTML for the page.

Telegram's HTML subset (b, i, u, s, a, code, pre, blockquote, spoilers) becomes the
Markdown the Prefect UI renders: bold, italics, working links, line breaks kept. Text is
escaped, so nothing in a story can turn into markup; link targets are not (that broke them).
For the served preview page the same subset is re-emitted as HTML from an allow-list.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~])")
_SAFE_LINK = re.compile(r"^(https?://|tg://|mailto:)", re.IGNORECASE)


def _escape(text: str) -> str:
    return _SPECIAL.sub(r"\\\1", text)


def _code_span(text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    tick = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{tick}{pad}{text}{pad}{tick}"


def _target(url: str) -> str:
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")


class _Converter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[tuple[str, str]] = []  # ("text" | "block", markdown)
        self.links: list[tuple[int, str]] = []
        self.quotes: list[int] = []
        self.code: list[str] | None = None
        self.pre: list[str] | None = None

    def _text(self, markdown: str) -> None:
        self.parts.append(("text", markdown))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.pre is not None:
            return
        if tag in ("b", "strong"):
            self._text("**")
        elif tag in ("i", "em"):
            self._text("*")
        elif tag in ("s", "strike", "del"):
            self._text("~~")
        elif tag == "a":
            self.links.append((len(self.parts), dict(attrs).get("href") or ""))
            self._text("[")
        elif tag == "code":
            self.code = []
        elif tag == "pre":
            self.pre = []
        elif tag == "blockquote":
            self.quotes.append(len(self.parts))

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre" and self.pre is not None:
            body = "".join(self.pre)
            longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
            fence = "`" * max(3, longest + 1)
            self.parts.append(("block", f"{fence}\n{body.rstrip()}\n{fence}"))
            self.pre = None
        elif self.pre is not None:
            return
        elif tag in ("b", "strong"):
            self._text("**")
        elif tag in ("i", "em"):
            self._text("*")
        elif tag in ("s", "strike", "del"):
            self._text("~~")
        elif tag == "a" and self.links:
            _, href = self.links.pop()
            if _SAFE_LINK.match(href):
                self._text(f"]({_target(href)})")
            else:  # not a link a reader could follow: the text alone
                self._text("]")
        elif tag == "code" and self.code is not None:
            self._text(_code_span("".join(self.code)))
            self.code = None
        elif tag == "blockquote" and self.quotes:
            start = self.quotes.pop()
            inner = _join(self.parts[start:])
            quoted = "\n".join(f"> {line}" if line else ">" for line in inner.split("\n"))
            self.parts[start:] = [("block", quoted)]

    def handle_data(self, data: str) -> None:
        if self.pre is not None:
            self.pre.append(data)
        elif self.code is not None:
            self.code.append(data)
        else:
            self._text(_escape(data))


def _join(parts: list[tuple[str, str]]) -> str:
    out: list[str] = []
    for kind, markdown in parts:
        if kind == "block":
            out.append(f"\n\n{markdown}\n\n")
        else:  # a line break in a message is a line break on screen
            out.append(re.sub(r"(?<!\n)\n(?!\n)", "  \n", markdown))
    return re.sub(r"\n{3,}", "\n\n", "".join(out)).strip("\n")


def telegram_markdown(html: str) -> str:
    """One Telegram message (or caption) in Telegram HTML, as Markdown."""
    converter = _Converter()
    converter.feed(html)
    converter.close()
    if converter.code is not None:  # an unclosed <code>: keep its text
        converter._text(_escape("".join(converter.code)))
    return _join(converter.parts)


_KEEP = {
    "b": "b", "strong": "b", "i": "i", "em": "i", "u": "u", "ins": "u",
    "s": "s", "strike": "s", "del": "s", "code": "code", "pre": "pre",
    "blockquote": "blockquote",
}  # fmt: skip


class _Sanitizer(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in _KEEP:
            self.out.append(f"<{_KEEP[tag]}>")
            self.open.append(_KEEP[tag])
        elif tag == "a":
            href = values.get("href") or ""
            if _SAFE_LINK.match(href):
                self.out.append(
                    f'<a href="{html.escape(href)}" target="_blank" rel="noopener noreferrer">'
                )
            else:
                self.out.append("<a>")
            self.open.append("a")
        elif tag == "tg-spoiler" or (tag == "span" and values.get("class") == "tg-spoiler"):
            self.out.append('<span class="tg-spoiler">')
            self.open.append("span")

    def handle_endtag(self, tag: str) -> None:
        name = "span" if tag == "tg-spoiler" else _KEEP.get(tag, tag)
        if name in self.open:
            while self.open:
                closing = self.open.pop()
                self.out.append(f"</{closing}>")
                if closing == name:
                    break

    def handle_data(self, data: str) -> None:
        self.out.append(html.escape(data, quote=False))


def telegram_html(text: str) -> str:
    """Telegram HTML as safe HTML for a page: the allowed tags, every other thing as text."""
    sanitizer = _Sanitizer()
    sanitizer.feed(text)
    sanitizer.close()
    return "".join(sanitizer.out) + "".join(f"</{tag}>" for tag in reversed(sanitizer.open))
