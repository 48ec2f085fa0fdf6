"""Make untrusted feed and article markup safe, and turn titles into plain text.

Every ``html`` field of an Article goes through :func:`clean_html`; every plain
field (title, dek, author, alt text) goes through :func:`clean_text`.
"""

from __future__ import annotations

import html
import re
from html.entities import html5

import nh3

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
_WHITESPACE = re.compile(r"\s+")
_EMPTY_PARAGRAPH = re.compile(r"<p>(?:\s|&nbsp;|<br>)*</p>")


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


def clean_html(fragment: str, base_url: str = "") -> str:
    """Sanitized HTML: allow-listed tags only, no scripts or handlers, absolute http(s) links.

    Relative ``href``/``src`` values are resolved against ``base_url``; without
    a base they are dropped, since a relative link means nothing in an email.
    """
    if not fragment or not fragment.strip():
        return ""
    relative = (
        ("rewrite_with_base", base_url) if base_url.startswith(("http://", "https://")) else "deny"
    )
    cleaned = nh3.clean(
        _undo_double_encoding(fragment),
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROP_WITH_CONTENT),
        attributes={tag: set(attrs) for tag, attrs in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener",
        url_relative=relative,
        strip_comments=True,
    )
    return _EMPTY_PARAGRAPH.sub("", cleaned).strip()


def clean_text(value: str | None) -> str:
    """Plain text: tags stripped, entities decoded (even double-encoded ones), one line."""
    if not value:
        return ""
    text = str(value)
    for _ in range(3):  # feeds double-encode: "&amp;#8217;" -> "&#8217;" -> "’"
        decoded = html.unescape(text)
        if decoded == text:
            break
        text = decoded
    # nh3 escapes the text it keeps ("a < b" -> "a &lt; b"); one unescape restores it exactly.
    text = html.unescape(nh3.clean(text, tags=set(), clean_content_tags=set(DROP_WITH_CONTENT)))
    return _WHITESPACE.sub(" ", text).strip()
