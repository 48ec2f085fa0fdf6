"""Read the newsroom's own articles: a folder of Markdown files with YAML front matter.

Front matter carries title, dek, url, guid, published, updated, author,
priority, tags, hero {url, alt, caption}, sources [{title, url, note}],
keep_reading {title, url, summary}, and optionally view_heading and draft.
The body is split into sections at ``## `` headings; the section headed
"Our view" / "The view" / "<Name>'s view" (or ``view_heading``) becomes the
editorial view.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import frontmatter
import markdown

from briefcast.gather.entries import SkipEntry, as_datetime
from briefcast.gather.fetch import SourceFailure
from briefcast.gather.summary import summary_html
from briefcast.gather.urls import absolute_url, canonical_url
from briefcast.models import (
    Article,
    EditorialView,
    Image,
    Section,
    SourceLink,
    SourceProblem,
    Teaser,
)
from briefcast.sanitize import clean_html, clean_text, plain_text

MARKDOWN_EXTENSIONS = ["fenced_code", "sane_lists"]
VIEW_HEADING = re.compile(r"^(?:(?:our|the)\s+view|.+['’]s?\s+view)$", re.IGNORECASE)
FENCES = ("```", "~~~")


@dataclass
class Parsed:
    article: Article | None  # None for a draft
    notes: list[str] = field(default_factory=list)  # parts left out, and why


def read_markdown_folder(
    folder: Path, source: str, zone: ZoneInfo
) -> tuple[list[Article], list[SourceProblem]]:
    """Every publishable ``*.md`` article in ``folder``; one problem per file or part skipped."""
    if not folder.is_dir():
        raise SourceFailure(f"folder not found: {folder}")
    articles: list[Article] = []
    problems: list[SourceProblem] = []
    for path in sorted(folder.glob("*.md")):
        try:
            parsed = read_markdown_article(path, zone)
        except SkipEntry as skip:
            problems.append(SourceProblem(source=source, reason=skip.reason, entry=path.name))
            continue
        problems += [SourceProblem(source=source, reason=n, entry=path.name) for n in parsed.notes]
        if parsed.article:
            articles.append(parsed.article.model_copy(update={"source": source}))
    return articles, problems


def read_markdown_article(path: Path, zone: ZoneInfo) -> Parsed:
    """One article file; raise SkipEntry if it cannot become an article."""
    try:
        post = frontmatter.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SkipEntry(f"cannot read file: {exc}") from None
    except Exception as exc:  # yaml and frontmatter raise a variety of errors
        raise SkipEntry(f"bad front matter: {_first_line(exc)}") from None
    meta: dict[str, Any] = post.metadata if isinstance(post.metadata, dict) else {}
    if meta.get("draft") is True:
        return Parsed(None)

    doc_title, chunks = split_sections(post.content)
    title = plain_text(_str(meta.get("title"))) or doc_title
    if not title:
        raise SkipEntry("no title in front matter")
    url = canonical_url(absolute_url(_str(meta.get("url"))))
    if not url:
        raise SkipEntry("no absolute http(s) url in front matter")
    published = as_datetime(meta.get("published") or meta.get("date"), zone)
    if published is None:
        raise SkipEntry("no readable published date in front matter")
    try:
        priority = int(meta.get("priority") or 0)
    except (TypeError, ValueError):
        raise SkipEntry("priority must be a whole number") from None

    notes: list[str] = []
    sections, view = _sections_and_view(chunks, _str(meta.get("view_heading")), url)
    dek = plain_text(_str(meta.get("dek")))
    lead_html = sections[0].html if sections else ""
    article = Article(
        key=_str(meta.get("guid")).strip() or url,
        url=url,
        title=title,
        dek=dek,
        summary_html=summary_html(lead_html)
        or (f"<p>{html.escape(dek, quote=False)}</p>" if dek else ""),
        author=_authors(meta.get("author")),
        source="",
        published=published,
        updated=as_datetime(meta.get("updated"), zone),
        hero=_hero(meta.get("hero"), url, notes),
        sections=sections,
        view=view,
        source_links=_source_links(meta.get("sources"), url, notes),
        keep_reading=_teaser(meta.get("keep_reading"), url, notes),
        tags=_tags(meta.get("tags")),
        priority=priority,
    )
    return Parsed(article, notes)


def split_sections(body: str) -> tuple[str, list[tuple[str, str]]]:
    """(``# `` title if the body opens with one, [(heading, markdown)] split at ``## ``)."""
    title = ""
    chunks: list[tuple[str, list[str]]] = [("", [])]
    fence = ""
    seen_content = False
    for line in body.splitlines():
        stripped = line.lstrip()
        if fence:
            if stripped.startswith(fence):
                fence = ""
        elif stripped.startswith(FENCES):
            fence = stripped[:3]
        elif line.startswith("## "):
            chunks.append((line[3:].strip().rstrip("#").strip(), []))
            seen_content = True
            continue
        elif line.startswith("# ") and not seen_content:
            title = clean_text(_inline(line[2:].strip().rstrip("#")))
            seen_content = True
            continue
        seen_content = seen_content or bool(stripped)
        chunks[-1][1].append(line)
    return title, [(heading, "\n".join(lines).strip()) for heading, lines in chunks]


def _sections_and_view(chunks, view_heading: str, base_url: str):
    sections: list[Section] = []
    view: EditorialView | None = None
    wanted = view_heading.strip().casefold()
    for raw_heading, text in chunks:
        heading = clean_text(_inline(raw_heading))
        body = clean_html(markdown.markdown(text, extensions=MARKDOWN_EXTENSIONS), base_url)
        if not body:
            continue
        is_view = heading.casefold() == wanted if wanted else bool(VIEW_HEADING.match(heading))
        if is_view and view is None:
            view = EditorialView(title=heading, html=body)
        else:
            sections.append(Section(heading=heading, html=body))
    return sections, view


def _inline(text: str) -> str:
    """Markdown inline markup (``**bold**``, links) rendered, for headings turned into text."""
    return markdown.markdown(text) if text else ""


def _hero(value: Any, base: str, notes: list[str]) -> Image | None:
    if not value:
        return None
    data = value if isinstance(value, dict) else {"url": value}
    url = absolute_url(_str(data.get("url")), base)
    if not url:
        notes.append("hero image has no usable url; left out")
        return None
    return Image(
        url=url,
        alt=plain_text(_str(data.get("alt"))),
        caption=plain_text(_str(data.get("caption"))),
    )


def _source_links(value: Any, base: str, notes: list[str]) -> list[SourceLink]:
    links: list[SourceLink] = []
    for number, item in enumerate(value if isinstance(value, list) else [], start=1):
        item = item if isinstance(item, dict) else {}
        url = absolute_url(_str(item.get("url")), base)
        title = plain_text(_str(item.get("title")))
        if not (url and title):
            notes.append(f"source link {number} needs a title and an http(s) url; left out")
            continue
        links.append(SourceLink(title=title, url=url, note=plain_text(_str(item.get("note")))))
    return links


def _teaser(value: Any, base: str, notes: list[str]) -> Teaser | None:
    if not value:
        return None
    item = value if isinstance(value, dict) else {}
    url = absolute_url(_str(item.get("url")), base)
    title = plain_text(_str(item.get("title")))
    if not (url and title):
        notes.append("keep_reading needs a title and an http(s) url; left out")
        return None
    return Teaser(title=title, url=url, summary=plain_text(_str(item.get("summary"))))


def _authors(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(n for n in (plain_text(_str(v)) for v in value) if n)
    if isinstance(value, dict):
        return plain_text(_str(value.get("name")))
    return plain_text(_str(value))


def _tags(value: Any) -> list[str]:
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else []
    return [t for t in (plain_text(_str(v)) for v in items) if t]


def _str(value: Any) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value)


def _first_line(exc: Exception) -> str:
    return " ".join(str(exc).split("\n")[:3]).strip() or type(exc).__name__
