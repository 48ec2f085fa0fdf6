"""Validating and normalising an http(s) URL, once, where it enters the system.

Used by gathering (article, image and source links) and by the sanitizer (links inside
article HTML), so every channel gets the same links and none that a reader cannot use.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

DEFAULT_PORTS = {"http": 80, "https": 443}

# Never part of a URL (RFC 3986): white space, controls, quotes, angle brackets and friends.
# Finding one means the "URL" is something else (markup debris, a sentence), not a typo.
_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f\"<>\\^`{|}]")
_HOST = re.compile(
    r"^(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"
)
# Keep what is already valid in a URL; percent-encode the rest (non-ASCII text).
_SAFE = "/:@!$&'()*+,;=?#%[]~-._"


def valid_url(url: str, base: str = "") -> str:
    """``url`` (resolved against ``base``) as a normalised absolute http(s) URL, or "" when
    it is not one: another scheme, no host, a bad port, or characters no URL may hold.

    Non-ASCII text in the path and query is percent-encoded and an international host
    name becomes its IDNA form, so every channel gets the same plain-ASCII link.
    """
    url = (url or "").strip()
    if not url or _FORBIDDEN.search(url):
        return ""
    try:
        resolved = urljoin(base, url) if base else url
        parts = urlsplit(resolved)
        port = parts.port
    except ValueError:
        return ""
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return ""
    host = _ascii_host(parts.hostname)
    if not host:
        return ""
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}" if userinfo else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    path, query, fragment = (
        quote(p, safe=_SAFE) for p in (parts.path, parts.query, parts.fragment)
    )
    return urlunsplit((scheme, netloc, path, query, fragment))


def _ascii_host(hostname: str) -> str:
    host = hostname.lower().rstrip(".")
    if ":" in host:  # IPv6 literal
        return f"[{host}]"
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return ""
    return host if _HOST.match(host) else ""
