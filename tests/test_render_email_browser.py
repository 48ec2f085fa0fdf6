"""The email as readers' clients draw it: headless Chromium at phone and desktop widths,
light and dark. Screenshots land in var/screenshots/ (CI keeps the folder)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from support import CHROMIUM_ARGS

from briefcast.config import PROJECT_ROOT, Settings
from briefcast.gather import gather
from briefcast.models import Article, Gathered, Image
from briefcast.render import render_edition
from briefcast.render.palette import MIN_CONTRAST, contrast

SCREENSHOTS = PROJECT_ROOT / "var" / "screenshots"
WIDTHS = (320, 375, 600, 1024)
# Stands in for every remote image: the page is drawn offline, with real image boxes.
PICTURE = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="1200" height="700">'
    '<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">'
    '<stop offset="0" stop-color="#27546b"/><stop offset="1" stop-color="#d9a05b"/>'
    '</linearGradient></defs><rect width="1200" height="700" fill="url(#g)"/>'
    '<path d="M0 520L300 430L600 500L900 400L1200 470V700H0Z" fill="#1b2f3a" opacity=".7"/>'
    "</svg>"
)
# Links inside running text are exempt from the 44 px target size (WCAG 2.5.8, inline).
TAP_TARGETS = """() => [...document.querySelectorAll('a')]
  .filter(a => !a.closest('.bc-prose') && a.getClientRects().length)
  .map(a => { const r = a.getBoundingClientRect();
              return {text: a.textContent.trim().slice(0, 40), height: r.height}; })"""

# Every element that shows text of its own: its colour and the background behind it.
TEXT_COLOURS = """() => {
  const solid = el => { for (; el; el = el.parentElement) {
      const bg = getComputedStyle(el).backgroundColor;
      if (bg && bg !== 'rgba(0, 0, 0, 0)' && bg !== 'transparent') return bg; }
    return 'rgb(255, 255, 255)'; };
  return [...document.body.querySelectorAll('*')]
    .filter(el => [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim()))
    .filter(el => el.getClientRects().length && getComputedStyle(el).visibility !== 'hidden'
                  && !el.closest('[style*="display:none"]') && el.offsetHeight > 1)
    .map(el => ({text: el.textContent.trim().slice(0, 30), color: getComputedStyle(el).color,
                 background: solid(el)}));
}"""


def _hex(css: str) -> str:
    red, green, blue = (int(v) for v in css[css.index("(") + 1 : css.index(")")].split(",")[:3])
    return f"#{red:02x}{green:02x}{blue:02x}"


def sample_settings(tmp_path: Path) -> Settings:
    return Settings.model_validate(
        {
            "publication": {
                "name": "The Harbour Ledger",
                "site_url": "https://harbourledger.example",
                "timezone": "Europe/Lisbon",
                "postal_address": "The Harbour Ledger, Rua do Cais 12, 1200-109 Lisboa",
                "sender_email": "brief@harbourledger.example",
                "subscribe_url": "https://harbourledger.example/subscribe",
            },
            "edition": {"max_articles": 50},
            "sources": [
                {"name": "Newsroom", "type": "markdown", "path": "sample/articles"},
                {"name": "Wire", "type": "feed", "url": "sample/wire.xml"},
                {"name": "Partner feed", "type": "feed", "url": "sample/wire.json"},
            ],
            "base_dir": PROJECT_ROOT,
            "data_dir": str(tmp_path),
        }
    )


def sample_day(tmp_path: Path) -> str:
    settings = sample_settings(tmp_path)
    return render_edition(settings, gather(settings, date(2026, 11, 20))).email.html


def twenty_five_stories(tmp_path: Path) -> str:
    settings = sample_settings(tmp_path)
    sample = gather(settings, date(2026, 11, 20)).articles
    extra = [
        Article(
            key=f"extra-{n}",
            url=f"https://harbourledger.example/2026/11/20/dockside-notes-{n}",
            title=f"Dockside note {n}: a longer headline about berths, cranes and a "
            "supercalifragilisticexpialidocious-length word",
            dek="Short items from the quays, each with a summary of a sentence or two.",
            source="Wire",
            tags=["Quays"],
            hero=Image(url=f"https://harbourledger.example/img/{n}.jpg") if n % 3 else None,
            published=datetime(2026, 11, 20, 12, tzinfo=UTC),
        )
        for n in range(25 - len(sample))
    ]
    gathered = Gathered(edition_date=date(2026, 11, 20), articles=[*sample, *extra])
    return render_edition(settings, gathered).email.html


@pytest.fixture(scope="module")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _serve_pictures(route):
    if route.request.resource_type == "image":
        route.fulfill(status=200, content_type="image/svg+xml", body=PICTURE)
    else:
        route.abort()


@pytest.mark.parametrize("edition", ["sample-day", "25-stories"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_horizontal_scroll_and_big_enough_tap_targets(browser, tmp_path, edition, scheme):
    html = (sample_day if edition == "sample-day" else twenty_five_stories)(tmp_path)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
        try:
            page.route("http*://**/*", _serve_pictures)
            page.set_content(html, wait_until="load")
            scroll = page.evaluate("document.documentElement.scrollWidth")
            assert scroll <= width, f"{edition} {scheme} at {width}px scrolls to {scroll}px"
            small = [t for t in page.evaluate(TAP_TARGETS) if t["height"] < 44]
            assert small == [], f"{edition} {scheme} at {width}px: tap targets under 44px"
            faint = [
                (t["text"], t["color"], t["background"])
                for t in page.evaluate(TEXT_COLOURS)
                if contrast(_hex(t["color"]), _hex(t["background"])) < MIN_CONTRAST
            ]
            assert faint == [], f"{edition} {scheme} at {width}px: text under 4.5:1"
            background = page.evaluate(
                "getComputedStyle(document.querySelector('.bc-card')).backgroundColor"
            )
            assert (background == "rgb(255, 255, 255)") == (scheme == "light"), background
            page.screenshot(path=SCREENSHOTS / f"{edition}-{scheme}-{width}.png", full_page=True)
            if width == 600:  # the first screen and a half, as the README shows it
                page.set_viewport_size({"width": width, "height": 1500})
                page.screenshot(path=SCREENSHOTS / f"{edition}-{scheme}-{width}-top.png")
        finally:
            page.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_archive_pages_share_the_design(browser, tmp_path, monkeypatch, scheme):
    """The archive's index and an edition's web version, as briefcast web serves them."""
    from fastapi.testclient import TestClient
    from web_support import make_settings

    from briefcast.pipeline import write_archive
    from briefcast.web.app import create_app

    settings = make_settings(tmp_path, monkeypatch, base_url="https://brief.example")
    gathered = gather(sample_settings(tmp_path), date(2026, 11, 20))
    write_archive(settings, render_edition(sample_settings(tmp_path), gathered))
    with TestClient(create_app(settings)) as client:
        pages = {
            name: client.get(path).text
            for name, path in (("archive", "/archive"), ("edition", "/archive/2026-11-20"))
        }
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, html in pages.items():
        page = browser.new_page(viewport={"width": 375, "height": 900}, color_scheme=scheme)
        try:
            page.route("http*://**/*", _serve_pictures)
            page.set_content(html, wait_until="load")
            assert page.evaluate("document.documentElement.scrollWidth") <= 375
            faint = [
                (t["text"], t["color"], t["background"])
                for t in page.evaluate(TEXT_COLOURS)
                if contrast(_hex(t["color"]), _hex(t["background"])) < MIN_CONTRAST
            ]
            assert faint == [], f"{name} {scheme}: text under 4.5:1"
            page.screenshot(path=SCREENSHOTS / f"web-{name}-{scheme}-375.png", full_page=True)
        finally:
            page.close()
    assert "Tagus terminal bets €310m" in pages["archive"]  # listed by its subject
