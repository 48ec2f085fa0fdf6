"""Choosing the edition's stories: one per story, none sent before, best first."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from briefcast.gather.urls import canonical_url
from briefcast.models import Article


@dataclass(frozen=True)
class Candidate:
    article: Article
    from_markdown: bool
    source_priority: int
    source_order: int  # position of the source in the config, the last tie-break


def identities(article: Article) -> set[str]:
    """Every name a story goes by: its key and its canonical URL."""
    return {article.key, canonical_url(article.url)}


def deduplicate(candidates: Iterable[Candidate]) -> list[Article]:
    """One article per story. A newsroom (Markdown) article beats a feed entry, then the
    higher source priority wins, then the source listed first."""
    ranked = sorted(
        candidates, key=lambda c: (not c.from_markdown, -c.source_priority, c.source_order)
    )
    seen: set[str] = set()
    kept: list[Article] = []
    for candidate in ranked:
        names = identities(candidate.article)
        if not names & seen:
            kept.append(candidate.article)
        # A dropped duplicate's names count too, so a third copy matching only it is dropped.
        seen |= names
    return kept


def drop_sent(
    articles: list[Article], sent_before: Callable[[list[str]], set[str]] | None
) -> list[Article]:
    """Articles that no earlier edition carried, asking by key and by canonical URL."""
    if sent_before is None or not articles:
        return articles
    names = sorted(set().union(*(identities(a) for a in articles)))
    already = set(sent_before(names))
    return [a for a in articles if not identities(a) & already]


def order(articles: list[Article], limit: int) -> list[Article]:
    """Editor's pin first, then the most recent; at most ``limit``."""
    ranked = sorted(articles, key=lambda a: (a.priority, a.published), reverse=True)
    return ranked[:limit]
