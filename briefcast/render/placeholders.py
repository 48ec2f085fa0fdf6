"""Per-recipient placeholders left in the rendered email and filled at send time.

The tokens are plain ``%%name%%`` strings: MJML passes them through untouched,
HTML escaping leaves them alone, and they match SendGrid's substitution style.
"""

from __future__ import annotations

import re
from html import escape as html_escape

UNSUBSCRIBE_URL = "%%unsubscribe_url%%"
VIEW_URL = "%%view_url%%"
FIRST_NAME = "%%first_name%%"

# Names that may be left empty; a missing link would leave a dead "unsubscribe".
OPTIONAL = frozenset({"first_name"})
KNOWN = frozenset({"unsubscribe_url", "view_url", "first_name"})

_TOKEN = re.compile(r"%%([a-z_]+)%%")


def placeholders_in(text: str) -> set[str]:
    """Names of the known placeholders that occur in ``text``."""
    return {name for name in _TOKEN.findall(text) if name in KNOWN}


def personalize(text: str, values: dict[str, str], html: bool) -> str:
    """Fill the placeholders in ``text``; values are HTML-escaped when ``html`` is true.

    Raises ValueError when a required placeholder (a link) has no value.
    """
    missing = sorted(
        name for name in placeholders_in(text) if name not in values and name not in OPTIONAL
    )
    if missing:
        raise ValueError(f"no value for placeholder(s): {', '.join(missing)}")

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in KNOWN:
            return match.group(0)
        value = values.get(name, "")
        return html_escape(value, quote=True) if html else value

    return _TOKEN.sub(fill, text)
