"""The sample newsroom in sample/ gathers into a realistic edition for 2026-11-20."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest

from briefcast.config import PROJECT_ROOT, Settings
from briefcast.gather import gather
from briefcast.text import html_to_text

SAMPLE = PROJECT_ROOT / "sample"
DAY = date(2026, 11, 20)


@pytest.fixture(autouse=True)
def _no_data_override(monkeypatch):
    monkeypatch.delenv("BRIEFCAST_DATA", raising=False)


@pytest.fixture
def edition(tmp_path: Path):
    settings = Settings.model_validate(
        {
            "publication": {
                "name": "The Harbour Ledger",
                "site_url": "https://harbourledger.example",
                "timezone": "Europe/Lisbon",
                "postal_address": "Rua do Cais 12, 1200-000 Lisboa",
                "sender_email": "brief@harbourledger.example",
            },
            "sources": [
                {"name": "newsroom", "type": "markdown", "path": str(SAMPLE / "articles")},
                {"name": "wire", "type": "feed", "url": str(SAMPLE / "wire.xml")},
                {"name": "markets", "type": "feed", "url": str(SAMPLE / "wire.json")},
            ],
            "base_dir": tmp_path,
        }
    )
    return settings, gather(settings, DAY)


def test_sample_gathers_cleanly_with_the_duplicate_and_yesterday_left_out(edition):
    _, gathered = edition
    assert gathered.problems == []
    titles = [a.title for a in gathered.articles]
    assert len(titles) == 11
    assert {a.source for a in gathered.articles} == {"newsroom", "wire", "markets"}
    assert sum(a.source == "newsroom" for a in gathered.articles) == 5
    # The wire's copy of the battery story folds into the newsroom's own article.
    assert "Sodium-ion start-up Salgema raises €18m" not in titles
    assert "Setúbal battery start-up raises €18m to build sodium-ion cells" in titles
    # Yesterday's wire item is outside the window; the 23:30 story is inside.
    assert "Sines container volumes slip for a second month" not in titles
    late = next(a for a in gathered.articles if a.title.startswith("Ferry crews"))
    assert (late.published.hour, late.published.minute) == (23, 30)


def test_the_lead_has_everything_a_full_story_has(edition):
    _, gathered = edition
    lead = gathered.articles[0]
    assert lead.title == "Tagus terminal bets €310m on shore power and electric cranes"
    assert lead.hero.url.startswith("https://harbourledger.example/img/") and lead.hero.alt
    assert len(lead.sections) >= 4
    assert lead.view and lead.view.title == "Our view"
    assert len(lead.source_links) == 3 and all(s.note for s in lead.source_links)
    assert lead.keep_reading and lead.keep_reading.url.startswith("https://")
    body = " ".join(html_to_text(s.html) for s in lead.sections) + html_to_text(lead.view.html)
    assert len(body.split()) >= 900
    assert len(body) > 4096  # one Telegram message is not enough
    assert "João Conceição" in body


def test_sample_text_is_decoded_and_links_are_clean(edition):
    _, gathered = edition
    by_title = {a.title: a for a in gathered.articles}
    assert "🔋" in by_title["Setúbal battery start-up raises €18m to build sodium-ion cells"].dek
    academy = by_title["Oeiras cleanroom academy opens with 40 trainee technicians"]
    assert "東京エレクトロン" in academy.sections[0].html
    airport = by_title["Airport slot auction draws three bidders"]
    assert "Lisbon’s airport" in airport.summary_html
    exports = by_title["Exports to Brazil rise for a fourth straight month"]
    assert exports.url == "https://harbourledger.example/wire/2026/11/20/exports-brazil"
    assert "It’s the fourth" in exports.summary_html
    cork = by_title["Cork prices ease as wine bottlers trim orders"]
    assert 'href="https://harbourledger.example/markets/cork"' in cork.summary_html
    for article in gathered.articles:
        dumped = article.model_dump_json()
        assert "&#8217;" not in dumped and "&amp;#" not in dumped and "utm_" not in dumped


def test_sample_subscribers_file():
    with (SAMPLE / "subscribers.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 5
    assert all(r["email"].endswith("@example.org") and r["name"] for r in rows)
