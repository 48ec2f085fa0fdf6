"""The email edition: what a reader's mail client gets."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from html.parser import HTMLParser

import pytest
from support import harbour_ledger_settings

from briefcast.config import Settings
from briefcast.models import (
    Article,
    EditorialView,
    Gathered,
    Image,
    Section,
    SourceLink,
)
from briefcast.render import RenderError, render_edition
from briefcast.render.placeholders import UNSUBSCRIBE_URL, VIEW_URL, personalize

ADDRESS = "12 Harbour Road, Port Example, EX1 2AB"
PARAGRAPH = (
    "<p>Lawyers for both sides spent the morning on the court’s schedule &amp; the "
    "exhibits, and the judge asked for a shorter list of witnesses before Friday.</p>"
)


def make_settings(tmp_path, **edition) -> Settings:
    return harbour_ledger_settings(
        tmp_path,
        postal_address=ADDRESS,
        subscribe_url="https://ledger.example.org/subscribe",
        edition=edition,
    )


def story(n: int, *, paragraphs: int = 2, **fields) -> Article:
    values = {
        "key": f"story-{n}",
        "url": f"https://ledger.example.org/2026/05/0{n % 9 + 1}/story-{n}?ref=brief&n={n}",
        "title": f"Council approves harbour plan, part {n}",
        "dek": f"What the vote means for the waterfront, in brief ({n}).",
        "summary_html": PARAGRAPH * paragraphs,
        "source": "Newsroom",
        "published": datetime(2026, 5, 1, 7, tzinfo=UTC),
    }
    values.update(fields)
    return Article(**values)


def lead_story(**fields) -> Article:
    values = {
        "hero": Image(url="https://img.example.org/lead.jpg", alt="The harbour at dawn"),
        "sections": [Section(heading=f"Part {i}", html=PARAGRAPH * 3) for i in range(4)],
        "view": EditorialView(html="<p>The plan is <em>overdue</em>.</p>"),
        "source_links": [
            SourceLink(title="Council minutes", url="https://council.example.gov/minutes/4"),
            SourceLink(title="Port budget", url="https://port.example.gov/budget", note="p. 12"),
        ],
    }
    values.update(fields)
    return story(0, **values)


def edition(tmp_path, articles, **edition_settings):
    gathered = Gathered(edition_date=date(2026, 5, 1), articles=articles)
    return render_edition(make_settings(tmp_path, **edition_settings), gathered)


class Page(HTMLParser):
    """Links, images and visible text of an HTML page."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.links.append(dict(attrs).get("href") or "")
        if tag == "img":
            self.images.append(dict(attrs))

    def handle_data(self, data):
        self.text.append(data)


def text_links(text: str) -> set[str]:
    return set(re.findall(r"(?:https?://|%%)\S+", text))


def test_html_has_the_lead_image_every_story_and_the_footer(tmp_path):
    articles = [lead_story()] + [story(n) for n in range(1, 10)]
    email = edition(tmp_path, articles).email
    page = Page(email.html)

    assert email.subject == "The Harbour Ledger: Council approves harbour plan, part 0"
    assert email.preheader == articles[0].dek
    assert articles[0].dek in page.text  # the hidden preview text
    [hero] = [img for img in page.images if img["src"] == "https://img.example.org/lead.jpg"]
    assert hero["alt"] == "The harbour at dawn"
    assert all(img.get("alt") for img in page.images)
    for article in articles:
        assert article.url in page.links
    for source in articles[0].source_links:
        assert source.url in page.links
    assert UNSUBSCRIBE_URL in page.links
    assert VIEW_URL in page.links
    assert "https://ledger.example.org/subscribe" in page.links
    visible = " ".join(page.text)
    assert ADDRESS in visible
    assert "overdue" in visible  # the editorial view
    # One clear link per story, worded differently down the page (no ten "Read more"s).
    assert "Read more" not in visible
    wordings = [w for w in re.findall(r"<a [^>]*class=\"bc-more[^>]*>([^<]+)</a>", email.html)]
    assert len(wordings) == len(articles) - 1
    assert max(wordings.count(w) for w in wordings) <= 2


def test_text_part_has_the_same_links_and_no_leftover_entities(tmp_path):
    articles = [lead_story()] + [story(n) for n in range(1, 8)]
    articles[3] = story(3, dek="", summary_html="<p>It’s a &#8220;big&#8221; day &amp; night</p>")
    email = edition(tmp_path, articles).email

    html_links = {link for link in Page(email.html).links if link.startswith(("http", "%%"))}
    html_links.discard("https://ledger.example.org")  # the masthead's home link
    assert text_links(email.text) >= html_links
    assert "It’s a “big” day & night" in email.text
    assert not re.search(r"&(#\d+|#x[0-9a-f]+|[a-z]+);", email.text, re.I)
    assert ADDRESS in email.text
    assert "court’s schedule & the exhibits" in " ".join(email.text.split())


def test_title_with_markup_is_escaped_in_html_and_literal_in_text(tmp_path):
    evil = 'Budget <script>alert("x")</script> & "cuts"'
    email = edition(tmp_path, [lead_story(title=evil), story(1)]).email

    assert "<script>" not in email.html
    assert "&lt;script&gt;" in email.html
    assert evil in email.text
    assert evil in email.subject


def test_twelve_long_stories_stay_under_gmails_clipping_size(tmp_path):
    long_lead = lead_story(summary_html=PARAGRAPH * 12)
    articles = [long_lead] + [story(n, paragraphs=8, dek="") for n in range(1, 12)]
    email = edition(tmp_path, articles).email

    size = len(email.html.encode())
    assert size < 102_000, size
    page = Page(email.html)
    assert all(article.url in page.links for article in articles)


def test_oversized_edition_drops_long_parts_but_keeps_footer(tmp_path):
    huge = lead_story(summary_html=PARAGRAPH * 600)  # about 110 KB of lead summary alone
    email = edition(tmp_path, [huge, story(1)]).email

    assert len(email.html.encode()) < 102_000
    assert UNSUBSCRIBE_URL in Page(email.html).links
    assert ADDRESS in email.html


def test_hero_without_alt_text_uses_the_headline(tmp_path):
    lead = lead_story(hero=Image(url="https://img.example.org/x.jpg"))
    email = edition(tmp_path, [lead]).email

    [hero] = [img for img in Page(email.html).images if img["src"].endswith("/x.jpg")]
    assert hero["alt"] == lead.title


def test_personalize_fills_links_escaped_for_html_and_raw_for_text(tmp_path):
    email = edition(tmp_path, [lead_story(), story(1)]).email
    values = {
        "unsubscribe_url": "https://ledger.example.org/u?t=abc&x=1",
        "view_url": "https://ledger.example.org/v?t=abc",
    }

    html = personalize(email.html, values, html=True)
    text = personalize(email.text, values, html=False)

    assert "https://ledger.example.org/u?t=abc&x=1" in Page(html).links
    assert "u?t=abc&amp;x=1" in html
    assert "https://ledger.example.org/u?t=abc&x=1" in text
    assert "%%" not in html and "%%" not in text


def test_personalize_refuses_to_leave_an_unsubscribe_link_empty():
    with pytest.raises(ValueError, match="unsubscribe_url"):
        personalize(f"<a href='{UNSUBSCRIBE_URL}'>Unsubscribe</a>", {}, html=True)
    assert personalize("Hi %%first_name%%!", {}, html=False) == "Hi !"
    assert personalize("50%%off%%", {}, html=False) == "50%%off%%"


def test_newsroom_can_override_one_template(tmp_path):
    folder = tmp_path / "mytemplates"
    folder.mkdir()
    (folder / "email_subject.txt.j2").write_text("Morning brief · {{ lead.title }}\n")
    email = edition(tmp_path, [lead_story(), story(1)], templates="mytemplates").email

    assert email.subject == "Morning brief · Council approves harbour plan, part 0"
    assert UNSUBSCRIBE_URL in email.html  # the rest still comes from the built-in templates


def test_empty_edition_is_refused(tmp_path):
    with pytest.raises(RenderError, match="no articles"):
        edition(tmp_path, [])
