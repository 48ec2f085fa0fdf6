"""Make untrusted feed and article markup safe, and turn titles into plain text.

Every ``html`` field of an Article goes through :func:`clean_html`. A plain field goes
through :func:`clean_text` when its source format says it is markup (an RSS or Atom
``text/html`` title, a Markdown heading) and through :func:`plain_text` when the format
says it is text (JSON Feed titles, YAML front matter). Either way markup is parsed once:
text that was escaped in the source ("Fix for &lt;template&gt;") stays text.
"""

from __future__ import annotations

import html
import re
from html.entities import html5
from html.parser import HTMLParser

import nh3

from briefcast.invisible import strip_invisible
from briefcast.safe_urls import valid_url

ALLOWED_TAGS = frozenset(
    {
        "p", "br", "a", "strong", "b", "em", "i", "u", "ul", "ol", "li",
        "blockquote", "h2", "h3", "h4", "code", "pre", "img",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
# Dropped together with everything inside them, not just unwrapped.
DROP_WITH_CONTENT = frozenset({"script", "style", "iframe", "object", "noscript", "template"})

# "&amp;#8217;" is what a feed sends when it escapes already-escaped text.
_DOUBLE_ENCODED = re.compile(r"&amp;(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_ENTITY = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_WHITESPACE = re.compile(r"\s+")
_EMPTY_PARAGRAPH = re.compile(r"<p>(?:\s|&nbsp;|<br>)*</p>")
# nh3's output is regular: an anchor whose href was refused keeps only rel/title.
_ANCHOR_WITHOUT_HREF = re.compile(r"<a(?![^>]*\shref=)[^>]*>(.*?)</a>", re.DOTALL)
_IMG_WITHOUT_SRC = re.compile(r"<img(?![^>]*\ssrc=)[^>]*>")
# Markdown the converter could not read (an unbalanced parenthesis in the URL):
# "[text](https://..." would reach readers as debris. The text stays, the rest goes.
_MARKDOWN_IMAGE_DEBRIS = re.compile(r"!\[[^\]<>]*\]\([^)\s<>]*\)?")
_MARKDOWN_LINK_DEBRIS = re.compile(r"\[([^\]<>]+)\]\([^)\s<>]*\)?")
# A script URL shown as text where its link was removed: inert, but noise to a reader.
_SCRIPT_URL_TEXT = re.compile(r"\b(?:javascript|vbscript|livescript):\S*", re.IGNORECASE)


def _undo_double_encoding(text: str) -> str:
    def repair(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("#") or f"{name};" in html5:
            return f"&{name};"
        return match.group(0)

    for _ in range(3):  # "&amp;amp;#8217;" needs two passes
        repaired = _DOUBLE_ENCODED.sub(repair, text)
        if repaired == text:
            break
        text = repaired
    return text


def _checked_url(tag: str, attribute: str, value: str, base_url: str) -> str | None:
    if (tag, attribute) not in {("a", "href"), ("img", "src")}:
        return value
    value = value.strip()
    if tag == "a" and value.lower().startswith("mailto:"):
        return value if "@" in value and not re.search(r"[\s<>\"]", value) else None
    return valid_url(value, base_url) or None


def clean_html(fragment: str, base_url: str = "") -> str:
    """Sanitized HTML: allow-listed tags only, no scripts or handlers, absolute http(s) links.

    Every ``href``/``src`` is validated: relative values are resolved against ``base_url``
    (without a base they are dropped, a relative link means nothing in an email), and
    what is not a valid http(s) URL is dropped. An anchor left without a link becomes
    its text, an image without a source goes.
    """
    if not fragment or not fragment.strip():
        return ""
    base = base_url if base_url.startswith(("http://", "https://")) else ""
    cleaned = nh3.clean(
        strip_invisible(_undo_double_encoding(fragment)),
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROP_WITH_CONTENT),
        attributes={tag: set(attrs) for tag, attrs in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=lambda tag, attr, value: _checked_url(tag, attr, value, base),
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener",
        url_relative=("rewrite_with_base", base) if base else "deny",
        strip_comments=True,
    )
    cleaned = _IMG_WITHOUT_SRC.sub("", strip_invisible(cleaned))
    cleaned = _ANCHOR_WITHOUT_HREF.sub(lambda m: _inert(m.group(1)), cleaned)
    cleaned = _MARKDOWN_IMAGE_DEBRIS.sub("", cleaned)
    cleaned = _MARKDOWN_LINK_DEBRIS.sub(r"\1", cleaned)
    return _EMPTY_PARAGRAPH.sub("", cleaned).strip()


def _inert(text: str) -> str:
    return _SCRIPT_URL_TEXT.sub("", text)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in DROP_WITH_CONTENT:
            self.skipping += 1
        elif tag in {"br", "p", "div", "li"}:
            self.parts.append(" ")

    def handle_endtag(self, tag):
        if tag in DROP_WITH_CONTENT:
            self.skipping = max(0, self.skipping - 1)

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)


def _decode_entities(text: str) -> str:
    """Entity references left in text (a feed that escaped twice) decoded; text that merely
    contains "&" stays as it is."""
    for _ in range(2):
        if not _ENTITY.search(text):
            break
        text = html.unescape(text)
    return text


def _one_line(text: str) -> str:
    return _WHITESPACE.sub(" ", strip_invisible(text)).strip()


def clean_text(value: str | None) -> str:
    """Plain text from a markup field: tags stripped and entities decoded in one parse,
    entities a feed escaped twice decoded too, invisible characters removed, one line.

    Escaped markup is text: "Fix for &lt;template&gt; element" keeps its "<template>".
    """
    if not value:
        return ""
    parser = _Text()
    parser.feed(_undo_double_encoding(str(value)))
    parser.close()
    return _one_line(_decode_entities("".join(parser.parts)))


def plain_text(value: str | None) -> str:
    """A field its format defines as plain text: nothing is parsed as a tag; entities a
    feed or an editor left in it are decoded; invisible characters removed; one line."""
    if not value:
        return ""
    return _one_line(_decode_entities(_undo_double_encoding(str(value))))
