"""Gathering the day's articles from every configured source.

``gather`` reads each source (feeds over HTTP or from files, folders of
Markdown articles), keeps the entries published on the edition day in the
publication's time zone, merges duplicates, drops stories an earlier edition
already carried, and orders the rest: editor's pin first, then the newest.
A source that fails is reported in ``Gathered.problems``; the others go on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date

from briefcast.config import Settings, Source
from briefcast.gather.feeds import parse_feed
from briefcast.gather.fetch import (
    FeedCache,
    SourceFailure,
    fetch_url,
    is_http,
    local_path,
    read_file,
)
from briefcast.gather.markdown_articles import read_markdown_folder
from briefcast.gather.select import Candidate, deduplicate, drop_sent, order
from briefcast.gather.window import edition_window, in_window
from briefcast.models import Article, Gathered, SourceProblem

__all__ = ["gather", "read_source"]

log = logging.getLogger(__name__)
MAX_PARALLEL_SOURCES = 4


def gather(
    settings: Settings,
    edition_date: date,
    sent_before: Callable[[list[str]], set[str]] | None = None,
) -> Gathered:
    """The edition's articles, best first, and every problem met on the way."""
    window = edition_window(
        edition_date, settings.publication.zone, settings.edition.lookback_hours
    )
    with ThreadPoolExecutor(max_workers=MAX_PARALLEL_SOURCES) as pool:
        results = list(pool.map(lambda source: _read_guarded(settings, source), settings.sources))

    candidates: list[Candidate] = []
    problems: list[SourceProblem] = []
    for position, (source, (articles, source_problems)) in enumerate(
        zip(settings.sources, results, strict=True)
    ):
        problems += source_problems
        for article in articles:
            if in_window(article.published, window):
                pinned = article.model_copy(update={"priority": article.priority + source.priority})
                candidates.append(
                    Candidate(pinned, source.type == "markdown", source.priority, position)
                )

    chosen = order(drop_sent(deduplicate(candidates), sent_before), settings.edition.max_articles)
    return Gathered(edition_date=edition_date, articles=chosen, problems=problems)


def read_source(settings: Settings, source: Source) -> tuple[list[Article], list[SourceProblem]]:
    """All articles one source offers (any date), plus the entries it had to skip.

    Raises SourceFailure when the source as a whole cannot be read.
    """
    if source.type == "markdown":
        if not source.path:
            raise SourceFailure("markdown source has no path")
        folder = settings.path(source.path)
        return read_markdown_folder(folder, source.name, settings.publication.zone)
    if not source.url:
        raise SourceFailure("feed source has no url")
    if is_http(source.url):
        cache = FeedCache(settings.data_dir / "feed-cache")
        fetched = fetch_url(
            source.url, cache=cache, timeout=source.timeout_seconds, max_bytes=source.max_bytes
        )
    else:
        path = local_path(source.url)
        if path is None:
            raise SourceFailure("feed url must be http(s) or a local file path")
        fetched = read_file(settings.path(path), max_bytes=source.max_bytes)
    return parse_feed(fetched, source.name)


def _read_guarded(settings: Settings, source: Source):
    try:
        return read_source(settings, source)
    except SourceFailure as exc:
        return [], [SourceProblem(source=source.name, reason=str(exc))]
    except Exception as exc:  # one broken source must never stop the edition
        log.exception("source %s failed unexpectedly", source.name)
        return [], [SourceProblem(source=source.name, reason=f"unexpected {type(exc).__name__}")]
