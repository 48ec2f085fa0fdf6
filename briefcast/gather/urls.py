"""Canonical article URLs, so one story reached through two links is one story."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit

from briefcast.safe_urls import DEFAULT_PORTS, valid_url

TRACKING_PARAMS = frozenset({"fbclid", "gclid", "mc_cid", "mc_eid", "ref"})


def _is_tracking(segment: str) -> bool:
    name = unquote(segment.split("=", 1)[0]).strip().lower()
    return name.startswith("utm_") or name in TRACKING_PARAMS


def canonical_url(url: str) -> str:
    """The URL without tracking parameters, fragment, default port or case noise in the host.

    Only http(s) URLs are rewritten; anything else comes back trimmed but unchanged.
    """
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return url
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}" if userinfo else host
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    # Filter the raw segments instead of re-encoding, so the kept parameters stay byte-identical.
    query = "&".join(s for s in parts.query.split("&") if s and not _is_tracking(s))
    return urlunsplit((scheme, netloc, parts.path or "/", query, ""))


def absolute_url(url: str, base: str = "") -> str:
    """``url`` resolved against ``base`` and validated (see valid_url); "" if not http(s)."""
    return valid_url(url, base)
