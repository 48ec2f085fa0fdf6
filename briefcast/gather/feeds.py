"""Turn a fetched RSS 2.0, Atom or JSON Feed document into Articles.

feedparser reads RSS and Atom; JSON Feed (1.0 and 1.1) is read here, since
feedparser does not know it. Each entry without a title, a link or a date is
skipped with a SourceProblem naming it; a document that is not a feed at all
raises SourceFailure.
"""

from __future__ import annotations

import io
import json
import xml.sax
from calendar import timegm
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import feedparser

from briefcast.gather.entries import SkipEntry, as_datetime, label, short_summary, text_to_html
from briefcast.gather.fetch import Fetched, SourceFailure
from briefcast.gather.urls import absolute_url, canonical_url
from briefcast.models import Article, Image, Section, SourceProblem
from briefcast.sanitize import clean_html, clean_text, plain_text

JSON_FEED_VERSION_PREFIX = "https://jsonfeed.org/version/"


def parse_feed(fetched: Fetched, source: str) -> tuple[list[Article], list[SourceProblem]]:
    """Every usable entry of the document as an Article, plus one problem per skipped entry."""
    if not fetched.body.strip():
        raise SourceFailure("empty document: the source returned no feed at all")
    if _looks_like_json(fetched):
        return _collect(_json_feed_entries(fetched), source)
    return _collect(_xml_feed_entries(fetched), source)


def _collect(entries: Iterable[Article | SkipEntry], source: str):
    articles: list[Article] = []
    problems: list[SourceProblem] = []
    for entry in entries:
        if isinstance(entry, SkipEntry):
            problems.append(SourceProblem(source=source, reason=entry.reason, entry=entry.entry))
        else:
            articles.append(entry.model_copy(update={"source": source}))
    return articles, problems


def _looks_like_json(fetched: Fetched) -> bool:
    return "json" in fetched.content_type.lower() or fetched.body.lstrip()[:1] == b"{"


# -- RSS and Atom -------------------------------------------------------------


def _xml_feed_entries(fetched: Fetched) -> Iterable[Article | SkipEntry]:
    head = fetched.body.lstrip()[:512].lower()
    if head.startswith((b"<!doctype html", b"<html")):
        raise SourceFailure("not a feed: the document is an HTML page")
    headers = {"content-location": fetched.base_url} if fetched.base_url else {}
    if fetched.content_type:
        headers["content-type"] = fetched.content_type
    parsed = feedparser.parse(io.BytesIO(fetched.body), response_headers=headers)
    if not parsed.entries and not parsed.get("version") and not parsed.bozo:
        raise SourceFailure("not an RSS, Atom or JSON feed")
    base = fetched.base_url or absolute_url(parsed.feed.get("link", ""))
    entries = [_xml_entry(entry, base) for entry in parsed.entries]
    problem = parsed.get("bozo_exception")
    if isinstance(problem, xml.sax.SAXException) and not any(
        isinstance(e, Article) for e in entries
    ):
        # Not well-formed, and the lenient parser salvaged nothing usable.
        raise SourceFailure(f"malformed XML: {problem}")
    if not parsed.entries and not parsed.get("version"):
        raise SourceFailure("not an RSS, Atom or JSON feed")
    return entries


def _struct_to_datetime(value: Any) -> datetime | None:
    # feedparser normalises every date it understands to a UTC struct_time.
    return datetime.fromtimestamp(timegm(value), tz=UTC) if value else None


def _entry_date(entry: Any, key: str) -> datetime | None:
    """``published`` or ``updated`` as a UTC datetime.

    dict.get skips feedparser's deprecated updated->published key fallback. feedparser
    refuses an RFC 822 date with a weekday but no zone ("Fri, 20 Nov 2026 23:30:00"),
    common in the wild; such a date is read as UTC, as feedparser reads its other
    zoneless forms.
    """
    parsed = _struct_to_datetime(dict.get(entry, f"{key}_parsed"))
    raw = dict.get(entry, key)
    if parsed or not isinstance(raw, str) or not raw.strip():
        return parsed
    try:
        moment = parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _xml_entry(entry: Any, base: str) -> Article | SkipEntry:
    title = _xml_text(entry, "title")
    link = canonical_url(absolute_url(entry.get("link", ""), base))
    name = label(title, entry.get("link", ""), entry.get("id", ""))
    if not title:
        return SkipEntry("entry has no title", name)
    if not link:
        return SkipEntry("entry has no link", name)
    published = _entry_date(entry, "published")
    updated = _entry_date(entry, "updated")
    if not (published or updated):
        raw = dict.get(entry, "published") or dict.get(entry, "updated")
        if raw:
            return SkipEntry(f"unreadable publication date {clean_text(raw)[:60]!r}", name)
        return SkipEntry("entry has no publication date", name)

    content_values = [c.get("value", "") for c in entry.get("content", [])]
    content = next((v for v in content_values if v and v.strip()), "")
    summary = entry.get("summary", "")
    summary_html = clean_html(summary, link) if summary and summary != content else ""
    body_html = clean_html(content, link)
    return Article(
        key=(entry.get("id") or "").strip() or link,
        url=link,
        title=title,
        summary_html=short_summary(summary_html) or short_summary(body_html),
        author=clean_text(entry.get("author", "")),
        source="",
        published=published or updated,
        updated=updated if published and updated and updated != published else None,
        hero=_xml_hero(entry, link),
        sections=[Section(html=body_html)] if body_html else [],
        tags=[clean_text(t.get("term", "")) for t in entry.get("tags", []) if t.get("term")],
    )


def _xml_text(entry: Any, key: str) -> str:
    """A text construct as plain text: parsed as markup only when the feed says it is markup
    (feedparser has already decoded a ``text/plain`` value; parsing it again would turn
    an escaped "&lt;template&gt;" into a tag and drop it)."""
    value = entry.get(key, "")
    if (entry.get(f"{key}_detail") or {}).get("type") == "text/plain":
        return plain_text(value)
    return clean_text(value)


def _xml_hero(entry: Any, base: str) -> Image | None:
    candidates = [
        m.get("url", "")
        for m in entry.get("media_content", [])
        if m.get("medium") == "image" or m.get("type", "").startswith("image/")
    ]
    candidates += [
        e.get("href", "")
        for e in entry.get("enclosures", [])
        if e.get("type", "").startswith("image/")
    ]
    candidates += [m.get("url", "") for m in entry.get("media_thumbnail", [])]
    for candidate in candidates:
        url = absolute_url(candidate, base)
        if url:
            return Image(url=url)
    return None


# -- JSON Feed ----------------------------------------------------------------


def _json_feed_entries(fetched: Fetched) -> Iterable[Article | SkipEntry]:
    try:
        document = json.loads(fetched.body.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise SourceFailure("JSON Feed is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise SourceFailure(f"not valid JSON: {exc}") from None
    version = document.get("version", "") if isinstance(document, dict) else ""
    if not (isinstance(version, str) and version.startswith(JSON_FEED_VERSION_PREFIX)):
        raise SourceFailure("JSON document is not a JSON Feed (no jsonfeed.org version)")
    items = document.get("items")
    if not isinstance(items, list):
        raise SourceFailure("JSON Feed has no items list")
    base = absolute_url(str(document.get("home_page_url") or ""), fetched.base_url) or (
        fetched.base_url
    )
    return [_json_entry(item, base) for item in items]


def _json_entry(item: Any, base: str) -> Article | SkipEntry:
    if not isinstance(item, dict):
        return SkipEntry("item is not a JSON object")
    title = plain_text(_text(item.get("title")))  # JSON Feed: "plain text"
    raw_link = _text(item.get("url")) or _text(item.get("external_url"))
    link = canonical_url(absolute_url(raw_link, base))
    name = label(title, raw_link, _text(item.get("id")))
    if not title:
        return SkipEntry("entry has no title", name)
    if not link:
        return SkipEntry("entry has no link", name)
    published = as_datetime(item.get("date_published"))
    updated = as_datetime(item.get("date_modified"))
    if not (published or updated):
        return SkipEntry("entry has no publication date", name)

    if _text(item.get("content_html")):
        body_html = clean_html(_text(item.get("content_html")), link)
    else:
        body_html = text_to_html(_text(item.get("content_text")))
    summary_html = short_summary(text_to_html(_text(item.get("summary")))) or short_summary(
        body_html
    )
    image = absolute_url(_text(item.get("image")) or _text(item.get("banner_image")), link)
    return Article(
        key=_text(item.get("id")).strip() or link,
        url=link,
        title=title,
        summary_html=summary_html,
        author=_json_authors(item),
        source="",
        published=published or updated,
        updated=updated if published and updated and updated != published else None,
        hero=Image(url=image) if image else None,
        sections=[Section(html=body_html)] if body_html else [],
        tags=[plain_text(t) for t in _list(item.get("tags")) if isinstance(t, str) and t.strip()],
    )


def _text(value: Any) -> str:
    """JSON Feed fields are strings, but ids in the wild are sometimes numbers."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _list(value: Any) -> list:
    """A JSON Feed array field; anything else (a string, a number) counts as absent."""
    return value if isinstance(value, list) else []


def _json_authors(item: dict) -> str:
    authors = item.get("authors")
    if not isinstance(authors, list):  # JSON Feed 1.0 had a single "author"
        authors = [item.get("author")]
    names = [plain_text(_text(a.get("name"))) for a in authors if isinstance(a, dict)]
    return ", ".join(n for n in names if n)
