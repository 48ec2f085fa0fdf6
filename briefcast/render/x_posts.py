"""Posts for X: one per story, optionally as a thread under an opener.

Lengths follow X's weighted counting (twitter-text v3): 280 at most, any URL
counts 23, CJK and emoji count 2. Text that does not fit is shortened at a
word boundary (between characters for scripts written without spaces) with an
ellipsis, never inside a URL or an emoji.
"""

from __future__ import annotations

import logging
import unicodedata

import regex
from twitter_text import parse_tweet
from twitter_text.extract_urls import extract_urls_with_indices

from briefcast.models import Article, XPost

MAX_WEIGHTED = 280
ELLIPSIS = "…"
PART_SEPARATOR = "\n\n"

_NO_SPACE_SCRIPT = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}]")
# Invisible characters X refuses in a post (twitter-text's invalid characters): a stray
# byte-order mark in a feed title would otherwise make every cut of that title "invalid".
_INVALID_FOR_X = str.maketrans("", "", "\ufffe\ufeff\uffff")
_TRAILING_PUNCTUATION = " \t\n,;:-–—"

log = logging.getLogger("briefcast.render")


def weighted_length(text: str) -> int:
    """X's weighted length of ``text``."""
    return parse_tweet(text).weightedLength


def fits(text: str) -> bool:
    result = parse_tweet(text)
    return result.valid and result.weightedLength <= MAX_WEIGHTED


def _compose(parts: list[str], url: str) -> str:
    return PART_SEPARATOR.join([*parts, url] if url else parts)


def fit_post(text_parts: list[str], url: str = "") -> str:
    """The longest post made of whole leading parts plus ``url``; the first part is
    shortened when even it does not fit alone."""
    parts = [
        unicodedata.normalize("NFC", " ".join(p.translate(_INVALID_FOR_X).split()))
        for p in text_parts
    ]
    parts = [p for p in parts if p]
    if not parts:
        return url
    for count in range(len(parts), 0, -1):
        post = _compose(parts[:count], url)
        if fits(post):
            return post
    return _compose([shorten(parts[0], url)], url)


def shorten(text: str, url: str = "") -> str:
    """``text`` cut at the last boundary that lets it, an ellipsis and ``url`` fit a post."""
    for boundaries in (_word_boundaries(text), _grapheme_boundaries(text)):
        candidates = [b for b in boundaries if text[:b].rstrip(_TRAILING_PUNCTUATION)]
        best = _longest_fitting(text, candidates, url)
        if best is not None:
            return best
    raise ValueError("the URL alone does not fit in a post")


def _longest_fitting(text: str, candidates: list[int], url: str) -> str | None:
    def attempt(cut: int) -> str:
        return text[:cut].rstrip(_TRAILING_PUNCTUATION) + ELLIPSIS

    # weighted length grows with the cut, so a binary search finds the longest
    low, high = 0, len(candidates) - 1
    found = None
    while low <= high:
        mid = (low + high) // 2
        if fits(_compose([attempt(candidates[mid])], url)):
            found = mid
            low = mid + 1
        else:
            high = mid - 1
    return None if found is None else attempt(candidates[found])


def _grapheme_boundaries(text: str) -> list[int]:
    """Offsets between graphemes that do not fall inside a URL."""
    inside = _url_interiors(text)
    offsets, position = [], 0
    for grapheme in regex.findall(r"\X", text):
        position += len(grapheme)
        if position < len(text) and position not in inside:
            offsets.append(position)
    return offsets


def _word_boundaries(text: str) -> list[int]:
    """Grapheme boundaries at white space, or next to a character of a script
    written without spaces (CJK, Thai)."""
    boundaries = []
    for offset in _grapheme_boundaries(text):
        before, after = text[offset - 1], text[offset]
        if after.isspace() or _NO_SPACE_SCRIPT.search(before + after):
            boundaries.append(offset)
    return boundaries


def _url_interiors(text: str) -> set[int]:
    # The offset right after a URL counts as inside: "…" glued to a URL could be read
    # as part of it.
    interiors: set[int] = set()
    for entity in extract_urls_with_indices(text):
        start, end = entity["indices"]
        interiors.update(range(start + 1, end + 1))
    return interiors


def story_post(article: Article) -> XPost:
    text = fit_post([article.title, article.dek], article.url)
    return XPost(text=text, weighted_length=weighted_length(text), article_key=article.key)


def opener_post(text: str, url: str = "") -> XPost:
    post = fit_post([text], url)
    return XPost(text=post, weighted_length=weighted_length(post))


def build_posts(articles: list[Article], opener: str | None, opener_url: str = "") -> list[XPost]:
    """One post per story, preceded by the opener when the edition goes out as a thread."""
    posts = [opener_post(opener, opener_url)] if opener else []
    for article in articles:
        try:
            posts.append(story_post(article))
        except ValueError as exc:  # one unpostable link must not sink the whole edition
            log.warning("no X post for %r (%s): %s", article.title, article.url, exc)
    return posts
