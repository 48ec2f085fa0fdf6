"""Gathering from local feed files and Markdown folders: formats, safety, broken sources."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from briefcast.config import Settings
from briefcast.gather import gather

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
DAY = date(2026, 11, 20)


@pytest.fixture(autouse=True)
def _no_data_override(monkeypatch):
    monkeypatch.delenv("BRIEFCAST_DATA", raising=False)


def make_settings(tmp_path: Path, sources: list[dict], zone="Europe/Lisbon", **edition) -> Settings:
    return Settings.model_validate(
        {
            "publication": {
                "name": "Test Ledger",
                "site_url": "https://ledger.example",
                "timezone": zone,
                "postal_address": "1 Quay Street",
                "sender_email": "brief@ledger.example",
            },
            "edition": edition,
            "sources": sources,
            "base_dir": tmp_path,
        }
    )


def feed(name: str, url: str | Path, priority: int = 0) -> dict:
    return {"name": name, "type": "feed", "url": str(url), "priority": priority}


def folder(name: str, path: str | Path, priority: int = 0) -> dict:
    return {"name": name, "type": "markdown", "path": str(path), "priority": priority}


def by_title(gathered):
    return {a.title: a for a in gathered.articles}


# -- formats -----------------------------------------------------------------


def test_rss_entry_becomes_a_clean_article(tmp_path):
    gathered = gather(make_settings(tmp_path, [feed("quayside", FIXTURES / "rss.xml")]), DAY)

    assert gathered.problems == []
    article = by_title(gathered)["Dockers’ union backs the plan"]
    assert article.key == "quayside-1"
    assert article.url == "https://quayside.example/news/dockers?id=7"
    assert article.source == "quayside"
    assert article.published == datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    assert article.published.tzinfo is not None
    assert article.author == "Rita Moura" and article.tags == ["Labour"]
    assert article.hero and article.hero.url == "https://quayside.example/img/dockers.jpg"
    assert "The union’s vote was <strong>unanimous</strong>" in article.summary_html
    assert 'href="https://quayside.example/docs/motion.pdf"' in article.summary_html
    # An entry without a GUID is known by its canonical URL.
    ferry = by_title(gathered)["Ferry timetable changes"]
    assert ferry.key == "https://quayside.example/news/ferry-timetable"
    assert ferry.summary_html == "<p>Winter timetable starts on Monday.</p>"


def test_atom_entry_resolves_links_against_xml_base(tmp_path):
    gathered = gather(make_settings(tmp_path, [feed("riverbank", FIXTURES / "atom.xml")]), DAY)

    assert gathered.problems == []
    [article] = gathered.articles
    assert article.title == "Crane No. 5 retires"
    assert article.key == "tag:riverbank.example,2026:crane-5"
    assert article.url == "https://riverbank.example/blog/2026/crane-5.html"
    assert article.published == datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    assert article.updated == datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
    assert article.author == "Duarte Lobo"
    assert article.summary_html == "<p>After 31 years the crane lifts its last box.</p>"
    assert 'src="https://riverbank.example/blog/img/crane.jpg"' in article.sections[0].html


def test_json_feed_1_1_and_1_0(tmp_path):
    settings = make_settings(
        tmp_path,
        [feed("tidewater", FIXTURES / "feed.json"), feed("oldharbour", FIXTURES / "feed-1.0.json")],
    )
    gathered = gather(settings, DAY)

    assert gathered.problems == []
    salt = by_title(gathered)["Salt pans reopen to visitors"]
    assert salt.key == "1042"  # a numeric id still works
    assert salt.url == "https://tidewater.example/notes/salt-pans"
    assert salt.author == "Sofia Reis, Hugo Matos"
    assert salt.published == datetime(2026, 11, 20, 8, 15, tzinfo=UTC)
    assert salt.updated == datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    assert salt.hero and salt.hero.url == "https://tidewater.example/img/salt.jpg"
    assert salt.sections[0].html == (
        "<p>The salt pans reopen on Saturday.</p>"
        "<p>Entry is free &amp; guided tours run hourly.</p>"
    )
    assert salt.summary_html == "<p>The salt pans reopen on Saturday.</p>"
    cottage = by_title(gathered)["Lighthouse keeper’s cottage sold"]
    assert cottage.author == "Vera Campos"
    assert cottage.summary_html == "<p>Bought by the municipality.</p>"


LEAD = """\
---
title: "Quay &amp; crane: the plan"
dek: "Why the terminal is going electric 🔌"
url: "https://ledger.example/2026/11/20/quay-plan?utm_source=x"
guid: ledger-lead
published: 2026-11-20T07:15:00+00:00
updated: 2026-11-20T09:00:00+00:00
author: [João Conceição, Ana Reis]
priority: 3
tags: ports, energy
hero:
  url: /img/cranes.jpg
  alt: Cranes at dusk
  caption: The quay
sources:
  - {title: Operator plan, url: "https://operator.example/plan", note: The numbers}
  - {title: Missing URL}
keep_reading: {title: Earlier story, url: /2026/11/19/earlier, summary: Background}
---
# Quay and crane

The terminal will spend €310m. See [the plan](/plan.pdf).

Second paragraph.

## What it buys

Cranes <script>alert(1)</script> and cables.

```
## not a heading inside a code fence
```

## Our view

A good plan.
"""


def write(folder_path: Path, name: str, text: str) -> Path:
    folder_path.mkdir(parents=True, exist_ok=True)
    path = folder_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_markdown_article_with_sections_view_sources_and_teaser(tmp_path):
    write(tmp_path / "articles", "lead.md", LEAD)
    gathered = gather(make_settings(tmp_path, [folder("newsroom", "articles")]), DAY)

    [article] = gathered.articles
    assert article.title == "Quay & crane: the plan"
    assert article.dek == "Why the terminal is going electric 🔌"
    assert article.summary_html.startswith("<p>The terminal")  # the lede, not the dek again
    assert article.key == "ledger-lead"
    assert article.url == "https://ledger.example/2026/11/20/quay-plan"
    assert article.author == "João Conceição, Ana Reis"
    assert article.tags == ["ports", "energy"]
    assert article.priority == 3
    assert article.updated == datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    assert article.hero.url == "https://ledger.example/img/cranes.jpg"
    assert (article.hero.alt, article.hero.caption) == ("Cranes at dusk", "The quay")
    assert [s.heading for s in article.sections] == ["", "What it buys"]
    assert 'href="https://ledger.example/plan.pdf"' in article.sections[0].html
    assert "script" not in article.sections[1].html
    assert "## not a heading inside a code fence" in article.sections[1].html
    assert article.view and article.view.title == "Our view"
    assert article.view.html == "<p>A good plan.</p>"
    assert [(s.title, s.note) for s in article.source_links] == [("Operator plan", "The numbers")]
    assert article.keep_reading.url == "https://ledger.example/2026/11/19/earlier"
    # The source link without a URL is left out, and the operator is told.
    [problem] = gathered.problems
    assert problem.source == "newsroom" and problem.entry == "lead.md"
    assert "source link 2" in problem.reason


def test_markdown_without_dek_summarises_with_first_paragraph_and_honours_view_heading(tmp_path):
    write(
        tmp_path / "articles",
        "short.md",
        "---\ntitle: Short\nurl: https://ledger.example/short\npublished: 2026-11-20 12:00\n"
        "view_heading: What we think\n---\nFirst para.\n\nSecond para.\n\n"
        "## Our view\n\nJust a section here.\n\n## What we think\n\nThe view.\n",
    )
    write(tmp_path / "articles", "draft.md", "---\ntitle: Draft\ndraft: true\n---\nNot yet.\n")
    gathered = gather(make_settings(tmp_path, [folder("newsroom", "articles")]), DAY)

    assert gathered.problems == []
    [article] = gathered.articles
    assert article.summary_html == "<p>First para.</p>"
    assert article.view.title == "What we think" and article.view.html == "<p>The view.</p>"
    assert [s.heading for s in article.sections] == ["", "Our view"]
    # A time without an offset is read in the publication's zone (Lisbon = UTC+0 in November).
    assert article.published == datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_one_bad_article_file_does_not_stop_the_folder(tmp_path):
    articles = tmp_path / "articles"
    write(articles, "good.md", LEAD)
    write(articles, "broken.md", "---\ntitle: [unclosed\n---\nBody\n")
    write(articles, "nourl.md", "---\ntitle: No URL\npublished: 2026-11-20T10:00:00Z\n---\nB\n")
    write(articles, "nodate.md", "---\ntitle: No date\nurl: https://ledger.example/x\n---\nB\n")
    (articles / "latin1.md").write_bytes("---\ntitle: Caf\xe9\n---\n".encode("latin-1"))
    gathered = gather(make_settings(tmp_path, [folder("newsroom", "articles")]), DAY)

    assert [a.key for a in gathered.articles] == ["ledger-lead"]
    reasons = {p.entry: p.reason for p in gathered.problems if p.entry != "good.md"}
    assert reasons["broken.md"].startswith("bad front matter")
    assert "url" in reasons["nourl.md"]
    assert "published" in reasons["nodate.md"]
    assert reasons["latin1.md"].startswith("cannot read file")
    assert {p.source for p in gathered.problems} == {"newsroom"}


# -- safety ------------------------------------------------------------------


def test_hostile_feed_entry_carries_no_script_handler_or_javascript_url(tmp_path):
    gathered = gather(make_settings(tmp_path, [feed("hostile", FIXTURES / "hostile.xml")]), DAY)

    [article] = gathered.articles
    # The title was escaped in the feed: it is text, shown as written (and escaped again
    # by every markup channel), never parsed into a tag and never cut short.
    assert article.title == "Totally normal <script>alert('title')</script>headline"
    dumped = article.model_copy(update={"title": ""}).model_dump_json().lower()
    for bad in ("<script", "alert(", "onerror", "onclick", "onmouseover", "javascript:", "data:"):
        assert bad not in dumped, bad
    assert "iframe" not in dumped and "style=" not in dumped
    assert article.author == "Mallory"
    assert 'href="https://ok.example/"' in article.summary_html
    assert 'src="https://hostile.example/x.png"' in article.summary_html


# -- broken sources and incomplete entries ------------------------------------


def test_broken_sources_are_reported_by_name_and_good_ones_still_gathered(tmp_path):
    (tmp_path / "bad.json").write_text(
        '{"version": "https://jsonfeed.org/version/1.1", "items": [', "utf-8"
    )
    (tmp_path / "plain.json").write_text('{"hello": "world"}', "utf-8")
    settings = make_settings(
        tmp_path,
        [
            feed("broken-xml", FIXTURES / "malformed.xml"),
            feed("home-page", FIXTURES / "not-a-feed.html"),
            feed("good", FIXTURES / "rss.xml"),
            feed("missing-file", "nowhere/feed.xml"),
            feed("bad-json", "bad.json"),
            feed("plain-json", "plain.json"),
            feed("ftp", "ftp://files.example/feed.xml"),
            folder("missing-folder", "no-such-folder"),
        ],
    )
    gathered = gather(settings, DAY)

    assert len(gathered.articles) == 2 and {a.source for a in gathered.articles} == {"good"}
    reasons = {p.source: p.reason for p in gathered.problems}
    assert set(reasons) == {
        "broken-xml", "home-page", "missing-file", "bad-json", "plain-json", "ftp", "missing-folder"
    }  # fmt: skip
    assert reasons["broken-xml"].startswith("malformed XML")
    assert reasons["home-page"].startswith("not a feed")
    assert reasons["missing-file"].startswith("file not found")
    assert reasons["bad-json"].startswith("not valid JSON")
    assert "not a JSON Feed" in reasons["plain-json"]
    assert "http(s)" in reasons["ftp"]
    assert reasons["missing-folder"].startswith("folder not found")


def test_entries_without_title_link_or_date_are_skipped_with_a_reason(tmp_path):
    gathered = gather(make_settings(tmp_path, [feed("inc", FIXTURES / "incomplete.xml")]), DAY)

    assert [a.title for a in gathered.articles] == ["Complete item"]
    skipped = {(p.entry, p.reason) for p in gathered.problems}
    assert skipped == {
        ("https://incomplete.example/untitled", "entry has no title"),
        ("No link at all", "entry has no link"),
        ("No date at all", "entry has no publication date"),
    }
    assert {p.source for p in gathered.problems} == {"inc"}


def test_local_file_over_the_size_cap_is_refused(tmp_path):
    source = {**feed("big", FIXTURES / "rss.xml"), "max_bytes": 100}
    gathered = gather(make_settings(tmp_path, [source]), DAY)
    assert gathered.articles == []
    assert "over the 100-byte cap" in gathered.problems[0].reason


# -- the edition day ---------------------------------------------------------


def json_feed(path: Path, items: list[tuple[str, str, str]], *, title_prefix: str = "") -> Path:
    """A JSON Feed of (id, url, ISO date) items, titled after their id."""
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "t",
        "items": [
            {"id": i, "url": u, "title": f"{title_prefix}{i}", "date_published": d}
            for i, u, d in items
        ],
    }
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("zone", "inside", "outside"),
    [
        (
            "America/New_York",  # UTC-5 in November: the local day runs 05:00Z to 05:00Z
            ["2026-11-20T05:00:00Z", "2026-11-21T04:30:00Z"],  # 00:00 and 23:30 local
            [
                "2026-11-20T04:59:00Z",
                "2026-11-21T05:00:00Z",
            ],  # 23:59 the day before, midnight after
        ),
        (
            "Asia/Tokyo",  # UTC+9: the local day starts at 15:00Z the previous UTC day
            ["2026-11-19T15:00:00Z", "2026-11-20T14:30:00Z"],
            ["2026-11-19T14:59:00Z", "2026-11-20T15:00:00Z", "2026-11-20T20:00:00Z"],
        ),
    ],
)
def test_edition_day_is_the_local_day_across_a_utc_boundary(tmp_path, zone, inside, outside):
    items = [(f"in-{d}", f"https://x.example/in/{n}", d) for n, d in enumerate(inside)]
    items += [(f"out-{d}", f"https://x.example/out/{n}", d) for n, d in enumerate(outside)]
    settings = make_settings(tmp_path, [feed("f", json_feed(tmp_path / "f.json", items))], zone)

    gathered = gather(settings, DAY)

    assert sorted(a.key for a in gathered.articles) == sorted(f"in-{d}" for d in inside)


def test_a_2330_local_article_belongs_to_that_day_not_the_next(tmp_path):
    late = datetime(2026, 11, 20, 23, 30, tzinfo=timezone(timedelta(hours=-5))).isoformat()
    path = json_feed(tmp_path / "f.json", [("late", "https://x.example/late", late)])
    settings = make_settings(tmp_path, [feed("f", path)], "America/New_York")

    assert [a.key for a in gather(settings, DAY).articles] == ["late"]
    assert gather(settings, DAY + timedelta(days=1)).articles == []


def test_day_with_a_dst_change_is_still_one_local_day(tmp_path):
    # Lisbon leaves summer time on 2026-10-25: a 25-hour local day, 23:00Z on the 24th
    # to 00:00Z on the 26th.
    items = [
        ("first", "https://x.example/1", "2026-10-24T23:30:00Z"),  # 00:30 local (UTC+1)
        ("last", "https://x.example/2", "2026-10-25T23:30:00Z"),  # 23:30 local (UTC+0)
        ("before", "https://x.example/3", "2026-10-24T22:59:00Z"),
    ]
    settings = make_settings(tmp_path, [feed("f", json_feed(tmp_path / "f.json", items))])
    assert sorted(a.key for a in gather(settings, date(2026, 10, 25)).articles) == ["first", "last"]


def test_longer_lookback_reaches_into_the_previous_day(tmp_path):
    items = [
        ("today", "https://x.example/1", "2026-11-20T10:00:00Z"),
        ("yesterday", "https://x.example/2", "2026-11-19T10:00:00Z"),
        ("two-days-ago", "https://x.example/3", "2026-11-18T10:00:00Z"),
    ]
    path = json_feed(tmp_path / "f.json", items)
    settings = make_settings(tmp_path, [feed("f", path)], lookback_hours=48)
    assert sorted(a.key for a in gather(settings, DAY).articles) == ["today", "yesterday"]


# -- de-duplication, earlier editions, order ----------------------------------


def test_same_guid_in_two_feeds_is_one_article_from_the_higher_priority_source(tmp_path):
    item = [("shared-guid", "https://x.example/a", "2026-11-20T10:00:00Z")]
    low = json_feed(tmp_path / "low.json", item, title_prefix="low ")
    high = json_feed(tmp_path / "high.json", item, title_prefix="high ")
    settings = make_settings(tmp_path, [feed("low", low, 0), feed("high", high, 5)])

    [article] = gather(settings, DAY).articles
    assert (article.source, article.title) == ("high", "high shared-guid")


def test_same_url_after_stripping_tracking_is_one_article_and_markdown_wins(tmp_path):
    write(
        tmp_path / "articles",
        "story.md",
        "---\ntitle: Our story\nurl: https://ledger.example/story\n"
        "published: 2026-11-20T09:00:00Z\n---\nBody.\n",
    )
    items = [
        ("wire-1", "https://LEDGER.example/story?utm_source=w&utm_medium=x", "2026-11-20T09:05Z"),
        ("wire-2", "https://ledger.example/other", "2026-11-20T09:10:00Z"),
    ]
    wire = json_feed(tmp_path / "wire.json", items)
    echo = json_feed(
        tmp_path / "echo.json", [("wire-1", "https://mirror.example/x", "2026-11-20T09:06:00Z")]
    )
    settings = make_settings(
        tmp_path,
        [feed("wire", wire, priority=9), folder("newsroom", "articles"), feed("echo", echo)],
    )

    gathered = gather(settings, DAY)

    # The feed copy of our story, and a mirror that shares only the feed copy's GUID, all fold
    # into the newsroom's own article.
    assert sorted((a.source, a.title) for a in gathered.articles) == [
        ("newsroom", "Our story"),
        ("wire", "wire-2"),
    ]


def test_stories_sent_in_an_earlier_edition_are_dropped(tmp_path):
    items = [
        ("guid-sent", "https://x.example/a", "2026-11-20T10:00:00Z"),
        ("guid-new", "https://x.example/b?utm_campaign=z", "2026-11-20T11:00:00Z"),
        ("guid-url-sent", "https://x.example/c", "2026-11-20T12:00:00Z"),
    ]
    settings = make_settings(tmp_path, [feed("f", json_feed(tmp_path / "f.json", items))])
    asked: list[list[str]] = []

    def sent_before(names: list[str]) -> set[str]:
        asked.append(names)
        return {"guid-sent", "https://x.example/c"}  # one known by key, one by URL

    gathered = gather(settings, DAY, sent_before)

    assert [a.key for a in gathered.articles] == ["guid-new"]
    [names] = asked
    assert {"guid-sent", "guid-new", "https://x.example/b", "https://x.example/c"} <= set(names)


def test_order_is_pin_then_recency_and_the_cap_applies(tmp_path):
    articles = tmp_path / "articles"
    for slug, hour, pin in [("pinned-early", 6, 2), ("plain-late", 20, 0), ("plain-noon", 12, 0)]:
        write(
            articles,
            f"{slug}.md",
            f"---\ntitle: {slug}\nurl: https://ledger.example/{slug}\n"
            f"published: 2026-11-20T{hour:02d}:00:00Z\npriority: {pin}\n---\nBody.\n",
        )
    items = [
        ("feed-evening", "https://x.example/e", "2026-11-20T22:00:00Z"),
        ("feed-morning", "https://x.example/m", "2026-11-20T07:00:00Z"),
    ]
    wire = json_feed(tmp_path / "f.json", items)
    sources = [folder("newsroom", "articles", priority=1), feed("wire", wire)]

    everything = gather(make_settings(tmp_path, sources), DAY)
    # Pins add up: article pin + source priority.
    assert [(a.title, a.priority) for a in everything.articles] == [
        ("pinned-early", 3),
        ("plain-late", 1),
        ("plain-noon", 1),
        ("feed-evening", 0),
        ("feed-morning", 0),
    ]

    capped = gather(make_settings(tmp_path, sources, max_articles=2), DAY)
    assert [a.title for a in capped.articles] == ["pinned-early", "plain-late"]


# -- odd feeds from the wild ---------------------------------------------------------------


def rss(path: Path, items: list[tuple[str, str]]) -> Path:
    """An RSS 2.0 file of (title, pubDate) items, each with its own link."""
    body = "".join(
        f"<item><title>{title}</title><link>https://wild.example/{n}</link>"
        f"<pubDate>{when}</pubDate></item>"
        for n, (title, when) in enumerate(items)
    )
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Wild</title>'
        f"<link>https://wild.example/</link>{body}</channel></rss>",
        encoding="utf-8",
    )
    return path


def test_rss_date_with_a_weekday_but_no_zone_is_read_as_utc(tmp_path):
    wire = rss(
        tmp_path / "wild.xml",
        [
            ("Late sitting", "Fri, 20 Nov 2026 23:30:00"),
            ("Next morning", "Sat, 21 Nov 2026 00:30:00"),
            ("Garbled", "the twentieth of November"),
        ],
    )

    gathered = gather(make_settings(tmp_path, [feed("wild", wire)], zone="UTC"), DAY)

    [late] = gathered.articles
    assert late.title == "Late sitting"
    assert late.published == datetime(2026, 11, 20, 23, 30, tzinfo=UTC)
    [problem] = gathered.problems
    assert problem.entry == "Garbled"
    assert problem.reason == "unreadable publication date 'the twentieth of November'"


@pytest.mark.parametrize("content", [b"", b"  \n"], ids=["empty", "blank"])
def test_an_empty_feed_file_is_a_named_problem_not_a_crash(tmp_path, content):
    empty = tmp_path / "empty.xml"
    empty.write_bytes(content)
    sources = [feed("empty", empty), feed("good", FIXTURES / "rss.xml")]

    gathered = gather(make_settings(tmp_path, sources), DAY)

    assert [(p.source, p.reason) for p in gathered.problems] == [
        ("empty", "empty document: the source returned no feed at all")
    ]
    assert {a.source for a in gathered.articles} == {"good"}


def test_json_feed_tags_that_are_not_a_list_do_not_lose_the_item(tmp_path):
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Odd",
        "items": [
            {
                "id": "odd-1",
                "url": "https://odd.example/1",
                "title": "Numbered tags",
                "content_text": "Text.",
                "date_published": "2026-11-20T10:00:00Z",
                "tags": 5,
            },
            {
                "id": "odd-2",
                "url": "https://odd.example/2",
                "title": "String tags",
                "content_text": "Text.",
                "date_published": "2026-11-20T11:00:00Z",
                "tags": "harbour",
            },
        ],
    }
    path = tmp_path / "odd.json"
    path.write_text(json.dumps(document), encoding="utf-8")

    gathered = gather(make_settings(tmp_path, [feed("odd", path)]), DAY)

    assert gathered.problems == []
    assert {a.title: a.tags for a in gathered.articles} == {
        "Numbered tags": [],
        "String tags": [],
    }


def test_a_feed_carrying_whole_articles_gives_short_summaries(tmp_path):
    paragraph = "<p>" + "The harbour works go on through the winter. " * 40 + "</p>"
    items = "".join(
        f"<item><title>Story {n}</title><link>https://wild.example/{n}</link>"
        f"<description><![CDATA[{paragraph * 15}]]></description>"
        f"<pubDate>Fri, 20 Nov 2026 0{n}:00:00 +0000</pubDate></item>"
        for n in range(1, 3)
    )
    wire = tmp_path / "full.xml"
    wire.write_text(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>F</title>{items}</channel></rss>',
        encoding="utf-8",
    )
    long_json = tmp_path / "long.json"
    long_json.write_text(
        json.dumps(
            {
                "version": "https://jsonfeed.org/version/1.1",
                "title": "L",
                "items": [
                    {
                        "id": "long-1",
                        "url": "https://long.example/1",
                        "title": "One endless paragraph",
                        "summary": "Word " * 5000,
                        "date_published": "2026-11-20T10:00:00Z",
                    }
                ],
            }
        ),
        encoding="utf-8",
    )

    gathered = gather(make_settings(tmp_path, [feed("full", wire), feed("long", long_json)]), DAY)

    summaries = {a.title: a.summary_html for a in gathered.articles}
    assert len(summaries) == 3
    for summary in summaries.values():
        assert summary.startswith("<p>") and summary.endswith("…</p>")
        assert summary.count("<p>") == 1 and 400 < len(summary) <= 610
    assert summaries["Story 1"].startswith("<p>The harbour works go on through the winter.")
