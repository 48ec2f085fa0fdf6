"""Real-world feeds written by others: forum and WordPress markup, escaped titles,
invisible characters and broken links all come through as a reader expects."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from briefcast.config import Settings
from briefcast.gather import gather
from briefcast.text import html_to_text

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
DAY = date(2026, 11, 20)
INVISIBLE = "\u202e\u200b\u200f\u2066\ufeff"


@pytest.fixture(autouse=True)
def _no_data_override(monkeypatch):
    monkeypatch.delenv("BRIEFCAST_DATA", raising=False)


def gathered_from(tmp_path: Path, *sources: tuple[str, str | Path]):
    settings = Settings.model_validate(
        {
            "publication": {
                "name": "Test Ledger",
                "site_url": "https://ledger.example",
                "timezone": "UTC",
                "postal_address": "1 Quay Street",
                "sender_email": "brief@ledger.example",
            },
            "sources": [_source(name, where) for name, where in sources],
            "base_dir": tmp_path,
        }
    )
    return gather(settings, DAY)


def _source(name: str, where: str | Path) -> dict:
    if Path(where).is_dir():
        return {"name": name, "type": "markdown", "path": str(where)}
    return {"name": name, "type": "feed", "url": str(where)}


def test_forum_entry_with_br_breaks_keeps_its_text_not_the_statistics_footer(tmp_path):
    [post] = gathered_from(tmp_path, ("forum", FIXTURES / "forum.xml")).articles

    summary = html_to_text(post.summary_html)
    assert summary.startswith("I finally got the towing hook to sit straight")
    assert "Photos of the rig are in the gallery thread." in summary
    assert "Statistics" not in summary and "Posted by" not in summary
    assert post.plain_summary.startswith("I finally got")  # the email's preheader
    assert post.title == "Re: Rigging a 1:72 tugboat <help>"


def test_wordpress_boilerplate_never_becomes_or_ends_a_summary(tmp_path):
    articles = gathered_from(tmp_path, ("wp", FIXTURES / "wordpress.xml")).articles
    by_url = {a.url: a for a in articles}

    template = by_url["https://dockside-dev.example/2026/11/20/template-safari/"]
    summary = html_to_text(template.summary_html)
    assert summary.startswith("Safari 19 drops the content of a template element")
    assert "[…]" not in summary and "appeared first" not in summary
    assert summary.endswith("one line…")

    # The excerpt is nothing but "The post … appeared first on …": the body speaks instead.
    br = by_url["https://dockside-dev.example/2026/11/20/br-and-script/"]
    summary = html_to_text(br.summary_html)
    assert summary == "Line breaks and scripts are where most feed readers go wrong."


def test_titles_with_escaped_markup_are_kept_whole(tmp_path):
    titles = {a.title for a in gathered_from(tmp_path, ("wp", FIXTURES / "wordpress.xml")).articles}

    assert "Fix for <template> element in Safari" in titles
    assert "Why <br> and <script> tags matter" in titles


def test_invisible_characters_are_stripped_from_every_text_field(tmp_path):
    articles = gathered_from(tmp_path, ("wp", FIXTURES / "wordpress.xml")).articles

    for article in articles:
        dumped = article.model_dump_json()
        assert not any(c in dumped for c in INVISIBLE), article.title
        assert "\\u202e" not in dumped.lower()
    tricks = next(a for a in articles if a.title.startswith("Unicode tricks"))
    assert tricks.title == "Unicode tricks in feeds"
    assert "Teamwork" in tricks.summary_html  # a joiner between letters goes
    assert "👩\u200d💻" in tricks.summary_html  # the one inside an emoji stays


def test_links_that_cannot_be_urls_are_dropped_at_gathering(tmp_path):
    gathered = gathered_from(tmp_path, ("wp", FIXTURES / "wordpress.xml"))

    # The item whose link holds quotes, spaces and angle brackets is skipped, and said so.
    assert not any("gpj" in a.title for a in gathered.articles)
    assert any(p.reason == "entry has no link" for p in gathered.problems)
    tricks = next(a for a in gathered.articles if a.title.startswith("Unicode tricks"))
    assert "<a" not in tricks.summary_html  # the script link and the spaced link became text
    assert "the spaced link" in tricks.summary_html
    assert "javascript" not in tricks.summary_html and "<img" not in tricks.summary_html


def test_markdown_article_without_markdown_debris(tmp_path):
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "story.md").write_text(
        "---\n"
        'title: "Ferry &lt;b&gt;timetable&lt;/b&gt; for \\u202ewinter"\n'
        "url: https://ledger.example/ferry\n"
        "published: 2026-11-20T08:00:00+00:00\n"
        "keep_reading:\n"
        "  title: Older story\n"
        '  url: "https://ledger.example/old story"\n'
        "sources:\n"
        "  - title: Timetable\n"
        '    url: "https://ferries.example/<timetable>"\n'
        "---\n\n"
        "The winter timetable starts Monday, see [the operator's page]"
        "(https://ferries.example/winter_(2026) for the times. ![map]() ![](javascript:x)\n",
        encoding="utf-8",
    )
    gathered = gathered_from(tmp_path, ("newsroom", folder))

    [story] = gathered.articles
    assert story.title == "Ferry <b>timetable</b> for winter"
    assert story.keep_reading is None and story.source_links == []
    body = story.sections[0].html
    assert "](" not in body and "[the" not in body and "<img" not in body
    assert "the operator's page" in html_to_text(body)
    reasons = {p.reason for p in gathered.problems}
    assert "keep_reading needs a title and an http(s) url; left out" in reasons
