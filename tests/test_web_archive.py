"""The archive: every sent edition at a stable URL, with neutral links, and nothing else."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from web_support import make_settings

from briefcast.web.app import create_app

EDITION_HTML = """<!doctype html><html><head><title>The Test Gazette &amp; co — {day}</title></head>
<body><p>Hello %%first_name%%, the news of {day}.</p>
<a href="%%view_url%%">View in your browser</a>
<a href="%%unsubscribe_url%%">Unsubscribe</a></body></html>"""


@pytest.fixture
def settings(tmp_path, monkeypatch):
    settings = make_settings(tmp_path, monkeypatch, base_url="https://brief.gazette.example")
    folder = settings.data_dir / "archive"
    folder.mkdir(parents=True)
    for day in ("2026-11-19", "2026-11-20"):
        (folder / f"{day}.html").write_text(EDITION_HTML.format(day=day), encoding="utf-8")
    (settings.data_dir / "link-secret").write_text("never-served")
    return settings


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings)) as client:
        yield client


def test_an_edition_is_served_with_neutral_links(client):
    page = client.get("/archive/2026-11-20")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "the news of 2026-11-20" in page.text
    assert 'href="https://brief.gazette.example/archive/2026-11-20"' in page.text
    assert 'href="https://brief.gazette.example/"' in page.text  # unsubscribe → subscribe page
    assert "%%" not in page.text and "Hello , the news" in page.text


def test_the_index_lists_editions_newest_first_with_their_titles(client):
    page = client.get("/archive")

    assert page.status_code == 200
    newer = page.text.index('href="/archive/2026-11-20"')
    older = page.text.index('href="/archive/2026-11-19"')
    assert newer < older
    assert "The Test Gazette &amp; co — 2026-11-20" in page.text


def test_the_index_of_an_empty_archive_says_so(tmp_path, monkeypatch):
    settings = make_settings(tmp_path, monkeypatch)
    with TestClient(create_app(settings)) as client:
        assert "No editions yet" in client.get("/archive").text


@pytest.mark.parametrize(
    "path",
    [
        "/archive/2026-11-21",
        "/archive/..%2Flink-secret",
        "/archive/%2E%2E%2Flink-secret",
        "/archive/..%5Clink-secret",
        "/archive/.hidden",
        "/archive/2026-11-20.html",
        "/archive/2026-11-20%00",
    ],
)
def test_unknown_ids_and_path_tricks_are_404_and_reveal_nothing(client, path):
    page = client.get(path)
    assert page.status_code == 404
    assert "never-served" not in page.text and "the news of" not in page.text
