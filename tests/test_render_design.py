"""The edition reads like a designed newsletter: every part of a story reaches the reader,
lengths are capped, and the markup holds up for accessibility, dark mode and size."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from html.parser import HTMLParser

import pytest
import regex
from support import harbour_ledger_settings

from briefcast.config import Settings
from briefcast.models import (
    Article,
    EditorialView,
    Gathered,
    Image,
    Section,
    SourceLink,
    Teaser,
)
from briefcast.pipeline import write_archive
from briefcast.render import render_edition
from briefcast.render.palette import MIN_CONTRAST, TEXT_PAIRS, contrast, palette
from briefcast.render.telegram_html import validate_telegram_html, visible_text
from briefcast.sanitize import clean_html

PARAGRAPH = (
    "<p>The harbour board met on Tuesday to weigh three bids for the old grain silo, "
    "and the port’s engineers asked for another month to inspect the quay wall.</p>"
)
DAY = date(2026, 5, 1)


def story(n: int, **fields) -> Article:
    values = {
        "key": f"story-{n}",
        "url": f"https://ledger.example.org/2026/05/01/story-{n}",
        "title": f"Harbour board weighs silo bids, part {n}",
        "dek": f"Three offers, one listed building and a deadline ({n}).",
        "summary_html": PARAGRAPH,
        "source": "Newsroom",
        "tags": ["Ports"],
        "published": datetime(2026, 5, 1, 7, tzinfo=UTC),
    }
    values.update(fields)
    return Article(**values)


def lead(**fields) -> Article:
    values = {
        "hero": Image(url="https://img.example.org/silo.jpg", alt="The grain silo at dusk"),
        "sections": [Section(heading=f"Part {i}", html=PARAGRAPH * 4) for i in range(4)],
        "view": EditorialView(title="Our view", html="<p>Sell it, but keep the façade.</p>"),
        "keep_reading": Teaser(
            title="Silo listing upheld on appeal",
            url="https://ledger.example.org/2026/04/12/silo-listing",
            summary="The culture ministry kept the protection order in place.",
        ),
    }
    values.update(fields)
    return story(0, **values)


def settings_for(tmp_path, **extra) -> Settings:
    settings = harbour_ledger_settings(tmp_path, subscribe_url="https://ledger.example.org/join")
    return settings.model_copy(update=extra)


def render(tmp_path, articles, **extra):
    gathered = Gathered(edition_date=DAY, articles=articles)
    return render_edition(settings_for(tmp_path, **extra), gathered)


class Markup(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.headings: list[tuple[str, str]] = []
        self._heading: str | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if re.fullmatch(r"h[1-6]", tag):
            self._heading = tag
            self.headings.append((tag, ""))

    def handle_endtag(self, tag):
        if tag == self._heading:
            self._heading = None

    def handle_data(self, data):
        self.text.append(data)
        if self._heading:
            tag, text = self.headings[-1]
            self.headings[-1] = (tag, text + data)

    def all(self, name: str) -> list[dict]:
        return [attrs for tag, attrs in self.tags if tag == name]


# -- 1. the keep-reading teaser ---------------------------------------------------------


def test_keep_reading_teaser_reaches_the_email_the_text_part_and_the_archive(tmp_path):
    edition = render(tmp_path, [lead(), story(1)])
    teaser = "https://ledger.example.org/2026/04/12/silo-listing"

    page = Markup(edition.email.html)
    assert teaser in [a.get("href") for a in page.all("a")]
    assert "Silo listing upheld on appeal" in " ".join(page.text)
    assert "The culture ministry kept the protection order in place." in " ".join(page.text)
    assert "KEEP READING" in edition.email.text and teaser in edition.email.text
    archived = write_archive(settings_for(tmp_path), edition).read_text(encoding="utf-8")
    assert teaser in archived and "Silo listing upheld on appeal" in archived


def test_teaser_of_a_story_in_the_same_edition_links_to_it_there(tmp_path):
    inside = story(2, url="https://ledger.example.org/2026/04/12/silo-listing", title="Silo")
    edition = render(tmp_path, [lead(), story(1), inside])

    links = [a.get("href") for a in Markup(edition.email.html).all("a")]
    assert "#story-3" in links  # the third card
    assert 'id="story-3"' in edition.email.html
    assert "RELATED IN THIS BRIEF" in edition.email.text
    assert "(story 3, below)" in edition.email.text
    # Not repeated: the teaser's own summary is left to the story's card.
    assert "The culture ministry kept" not in edition.email.text


# -- 5. length caps ------------------------------------------------------------------------


def test_a_huge_title_is_capped_in_subject_heading_summary_and_every_channel(tmp_path):
    title = "Harbour " + "board silo bids " * 125  # 2,008 characters
    huge_lead = lead(
        title=title,
        dek="x " * 800,
        sections=[Section(html=PARAGRAPH), Section(heading=title, html=PARAGRAPH)],
        view=EditorialView(title=title, html=PARAGRAPH),
        source_links=[SourceLink(title=title, url="https://council.example/m", note=title)],
        hero=Image(url="https://img.example.org/silo.jpg", alt="Silo", caption=title),
    )
    edition = render(tmp_path, [huge_lead, story(1, title=title)])

    subject = edition.email.subject
    assert 78 <= len(subject) <= 100 and subject.endswith("…")
    assert title.startswith(subject.removeprefix("The Harbour Ledger: ")[:-1])  # cut at a word
    headings = [text for tag, text in Markup(edition.email.html).headings]
    assert all(len(text.strip()) <= 141 for text in headings)
    visible = Markup(edition.email.html).text
    prose = [" ".join(t.split()) for t in visible if "{" not in t]  # not the style sheet
    assert max(len(t) for t in prose) <= 600  # no 2,000-character run anywhere
    assert all(len(line) <= 78 for line in edition.email.text.splitlines() if " " in line)
    assert len(edition.email.text) < 20_000
    for message in edition.telegram_messages:
        assert len(visible_text(message.text)) < 4096 and validate_telegram_html(message.text) == []
    assert len(edition.telegram_photo.caption) <= 1024


def test_cuts_never_fall_inside_a_flag_or_an_emoji_sequence(tmp_path):
    flags = "🇵🇹🇧🇷🇦🇴" * 60
    family = "👩‍👩‍👧‍👦" * 60
    edition = render(tmp_path, [lead(title=flags, dek=family), story(1, title=family)])

    def whole(text: str, cluster: str) -> bool:
        body = text.replace("…", "")
        return all(
            g in {cluster[i : i + 2] for i in (0, 2, 4)} or g not in "🇵🇹🇧🇷🇦🇴"
            for g in regex.findall(r"\X", body)
            if g[:1] in "🇵🇹🇧🇷🇦🇴"
        )

    for text in (edition.email.subject, edition.telegram_photo.caption):
        regional = [c for c in text if 0x1F1E6 <= ord(c) <= 0x1F1FF]
        assert len(regional) % 2 == 0, text
        assert whole(text, flags)
    assert "‍…" not in edition.email.text and "‍…" not in edition.telegram_photo.caption
    for graphemes in (regex.findall(r"\X", edition.telegram_photo.caption),):
        people = [g for g in graphemes if "👩" in g or "👧" in g]
        assert all(g == "👩‍👩‍👧‍👦" for g in people)


# -- 7. the text part ------------------------------------------------------------------


def test_every_text_line_fits_78_characters_and_no_dead_link_is_left(tmp_path):
    summary = clean_html(
        '<p>Board papers <a href="javascript:alert(1)">javascript:alert(1)</a> were '
        "published late.</p>"
    )
    long_headings = [
        Section(
            heading="What the three bidders for the silo have promised the city", html=PARAGRAPH
        ),
        Section(heading="Why the listed façade makes every plan cost more", html=PARAGRAPH),
        Section(heading="The quay wall survey the engineers still want", html=PARAGRAPH),
    ]
    edition = render(
        tmp_path,
        [
            lead(sections=[Section(html=PARAGRAPH), *long_headings]),
            story(1, dek="", summary_html=summary),
        ],
    )

    for line in edition.email.text.splitlines():
        assert len(line) <= 78 or " " not in line.strip(), line  # only a long URL may overrun
    assert "Also in this story:" in edition.email.text
    assert "javascript" not in edition.email.text and "alert(" not in edition.email.text
    assert "Board papers were published late." in " ".join(edition.email.text.split())


# -- 8 and 9. design and accessibility ----------------------------------------------------


def test_masthead_brief_list_and_cards(tmp_path):
    articles = [lead(), *(story(n) for n in range(1, 12))]
    design = {"brand_color": "#b3261e", "tagline": "Ports, trade and the river"}
    settings = settings_for(tmp_path).model_copy(
        update={"design": settings_for(tmp_path).design.model_copy(update=design)}
    )
    edition = render_edition(settings, Gathered(edition_date=DAY, articles=articles))
    html = edition.email.html
    page = Markup(html)

    accent = palette("#b3261e").light.accent
    assert f"border-top:6px solid {accent}" in html  # the brand colour in the masthead
    assert "Ports, trade and the river" in html
    assert "In today’s brief" in " ".join(page.text)
    links = [a.get("href") for a in page.all("a")]
    for n in range(1, 13):
        assert f"#story-{n}" in links and f'id="story-{n}"' in html
    assert "Editor’s view" in " ".join(page.text)
    assert "https://ledger.example.org/join" in links and "Forwarded this brief?" in html
    kickers = re.findall(r'class="bc-accent">(Ports)</p>', html)
    assert len(kickers) == 12  # every story, lead included, under its section


def test_accessibility_basics(tmp_path):
    edition = render(
        tmp_path,
        [
            lead(),
            *(story(n, hero=Image(url=f"https://img.example.org/{n}.jpg")) for n in range(1, 6)),
        ],
    )
    html = edition.email.html
    page = Markup(html)

    assert re.search(r'<html[^>]* lang="en"', html)
    assert '<meta name="color-scheme" content="light dark"' in html
    assert "@media (prefers-color-scheme: dark)" in html
    assert all(t.get("role") == "presentation" for t in page.all("table"))
    images = page.all("img")
    assert len(images) == 6 and all(img.get("alt") for img in images)
    levels = [int(tag[1]) for tag, _ in page.headings]
    assert levels[0] == 1 and levels.count(1) == 1  # the masthead, then the sections
    assert all(b - a <= 1 for a, b in zip(levels, levels[1:], strict=False))  # none skipped


@pytest.mark.parametrize(
    "brand", ["#0f5e78", "#ffd400", "#00ff00", "#ffffff", "#000000", "#e63946"]
)
def test_every_text_colour_keeps_a_4_5_contrast_in_light_and_dark(brand):
    colours = palette(brand)
    for scheme in (colours.light, colours.dark):
        for foreground, background in TEXT_PAIRS:
            ratio = contrast(getattr(scheme, foreground), getattr(scheme, background))
            assert ratio >= MIN_CONTRAST, (brand, foreground, background, ratio)


# -- 10. size ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "long"), [(12, True), (25, False)], ids=["12-long-stories", "25-stories"]
)
def test_email_stays_under_gmails_clipping_size(tmp_path, count, long):
    body = PARAGRAPH * (10 if long else 1)
    articles = [lead(summary_html=body)] + [
        story(
            n,
            summary_html=body,
            dek="" if long else f"Dek {n}",
            hero=Image(url=f"https://img.example.org/{n}.jpg"),
        )
        for n in range(1, count)
    ]
    edition = render(
        tmp_path,
        articles,
        edition=settings_for(tmp_path).edition.model_copy(update={"max_articles": 50}),
    )

    assert len(edition.email.html.encode()) < 102_000
    links = [a.get("href") for a in Markup(edition.email.html).all("a")]
    assert all(a.url in links for a in articles)


# -- 12. UTM tags ----------------------------------------------------------------------------


def test_utm_tags_per_channel_on_story_links_only(tmp_path):
    settings = settings_for(tmp_path)
    utm = {
        "email": {"source": "harbour-ledger", "medium": "email", "campaign": "brief-{date}"},
        "telegram": {"source": "telegram", "medium": "social"},
    }
    settings = Settings.model_validate(
        {
            **settings.model_dump(by_alias=True, exclude={"base_dir", "source_file"}),
            "base_dir": tmp_path,
            "utm": utm,
        }
    )
    articles = [lead(), story(1)]
    edition = render_edition(settings, Gathered(edition_date=DAY, articles=articles))

    tags = "utm_source=harbour-ledger&utm_medium=email&utm_campaign=brief-2026-05-01"
    tagged = f"{articles[1].url}?{tags}"
    assert tagged in [a.get("href") for a in Markup(edition.email.html).all("a")]
    assert tagged in edition.email.text
    assert "utm_" not in "".join(
        re.findall(r'href="(https://ledger.example.org/join[^"]*)"', edition.email.html)
    )
    telegram = " ".join(m.text for m in edition.telegram_messages)
    assert f"{articles[1].url}?utm_source=telegram&amp;utm_medium=social" in telegram
    assert all("utm_" not in p.text for p in edition.x_posts)  # no [utm.x] table
    assert edition.articles[1].url == articles[1].url  # the ledger keeps the plain URL


# -- 11. Telegram and X ------------------------------------------------------------------


def test_telegram_photo_caption_is_the_lead_card_and_the_digest_does_not_repeat_it(tmp_path):
    edition = render(tmp_path, [lead(), story(1), story(2, dek="")])
    caption = edition.telegram_photo.caption
    first = edition.telegram_messages[0].text

    assert caption.startswith("<b>Harbour board weighs silo bids, part 0</b>\n")
    assert "Three offers, one listed building and a deadline (0)." in caption
    assert caption.count("<a ") == 1
    assert "part 0" not in first and "deadline (0)" not in first  # no title or dek again
    assert "<b>Our view</b>" in first  # the lead goes on: its opening and the view
    digest = "\n\n".join(m.text for m in edition.telegram_messages)
    for n in (1, 2):
        assert f"<b>Harbour board weighs silo bids, part {n}</b>" in digest
        assert digest.count(f"story-{n}") == 1  # one link per story
    assert "Read more" not in digest and "Read more" not in caption


def test_x_posts_carry_headline_dek_and_the_x_tags(tmp_path):
    settings = settings_for(tmp_path)
    settings = Settings.model_validate(
        {
            **settings.model_dump(by_alias=True, exclude={"base_dir", "source_file"}),
            "base_dir": tmp_path,
            "utm": {"x": {"source": "x", "medium": "social", "campaign": "{edition}"}},
        }
    )
    edition = render_edition(settings, Gathered(edition_date=DAY, articles=[lead(), story(1)]))

    post = edition.x_posts[2]
    assert post.text.startswith("Harbour board weighs silo bids, part 1\n\nThree offers")
    assert post.text.endswith("story-1?utm_source=x&utm_medium=social&utm_campaign=2026-05-01")
