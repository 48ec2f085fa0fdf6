"""What the operator reads without a Prefect server: run states, the preview, the test copy.

The preview server runs for real on 127.0.0.1 (port 0) and is read over HTTP, as the
reviewer's browser reads it.
"""

from __future__ import annotations

from datetime import date

import httpx
import pytest
from briefcast.flows.artifacts import preview_markdown
from briefcast.flows.outcome import channel_state, delivery_state
from briefcast.flows.preview_server import PreviewServer
from briefcast.flows.telegram_view import telegram_html, telegram_markdown
from fastapi.testclient import TestClient
from support import make_edition
from web_support import make_settings

from briefcast import subscribers
from briefcast.db import get_engine
from briefcast.dispatch import ChannelReport
from briefcast.models import TelegramMessage, TelegramPhoto, XPost
from briefcast.preview import public_samples, write_preview
from briefcast.test_copy import proof_recipient

HTML = (
    "<!doctype html><html><head><title>Brief</title></head><body>"
    '<p>Hello %%first_name%%</p><a href="%%view_url%%">View in browser</a> '
    '<a href="https://gazette.example/bridge">River bridge reopens</a> '
    '<a href="%%unsubscribe_url%%">Unsubscribe</a></body></html>'
)
TEXT = (
    "River bridge reopens\nhttps://gazette.example/bridge\n\n"
    "View: %%view_url%%\nLeave: %%unsubscribe_url%%\n"
)


def edition():
    return make_edition(
        "2026-03-10",
        edition_date=date(2026, 3, 10),
        subject="River bridge reopens",
        html=HTML,
        text=TEXT,
        x_posts=[XPost(text="River bridge reopens https://gazette.example/b", weighted_length=44)],
        telegram_photo=TelegramPhoto(
            url="https://img.gazette.example/photos/bridge-2026_03.jpg",
            caption="<b>River bridge</b> reopens",
        ),
        telegram_messages=[
            TelegramMessage(
                text='<b>Today</b>\n\n1. <a href="https://gazette.example/bridge">Bridge</a> '
                "&amp; <i>tunnel</i>\n2. Market <script>alert(1)</script>"
            )
        ],
    )


# -- how runs and dispatch tasks end -------------------------------------------------------------


def test_a_failed_channel_fails_the_run_naming_channel_and_counts():
    reports = [
        ChannelReport("outbox", delivered=7),
        ChannelReport("smtp", failed=2, errors=["a@b.example: cannot connect"]),
        ChannelReport("telegram", in_doubt=1, errors=["msg-1: in doubt"]),
    ]

    state = delivery_state("2026-03-10", reports, {"ok": False}, test_send=False)

    assert state.is_failed()
    assert "smtp: 2 failed; telegram: 1 in doubt" in state.message
    assert "outbox" not in state.message
    task = channel_state(reports[1], test_send=False)
    assert task.is_failed() and task.message.startswith("smtp delivery: 2 failed (a@b.example")
    assert repr(task).endswith("result=report of smtp)")  # Prefect logs it: not every failure
    assert channel_state(reports[0], test_send=False).is_completed()


def test_a_run_with_only_held_back_deliveries_completes_and_says_so():
    reports = [ChannelReport("x", delivered=2, held=3, errors=["3 held back: daily budget"])]

    state = delivery_state("2026-03-10", reports, {"decision": "approved"}, test_send=False)

    assert state.is_completed()
    assert "2 delivered" in state.message and "(approved)" in state.message
    assert "Held back, to go out on a later run: x: 3 held back" in state.message


# -- the preview artifact -----------------------------------------------------------------------


def test_the_preview_text_shows_sample_links_not_placeholders():
    samples = public_samples("https://news.gazette.example", "2026-03-10")
    page = preview_markdown(edition(), samples={**samples, "view_url": "http://preview/x/"})

    assert "%%" not in page
    assert "View: http://preview/x/" in page
    assert "Leave: https://news.gazette.example/u/sample-each-reader-gets-their-own-link" in page


def test_telegram_shows_formatted_with_working_links():
    page = preview_markdown(edition())

    assert "[open the photo](https://img.gazette.example/photos/bridge-2026_03.jpg)" in page
    assert "**River bridge** reopens" in page
    assert "**Today**\n\n1\\. [Bridge](https://gazette.example/bridge) & *tunnel*  \n2" in page
    assert "**Telegram HTML as sent:**" in page  # the source stays available, folded below


def test_telegram_markdown_keeps_story_text_literal():
    shown = telegram_markdown('<b>[click](javascript:x)</b> <a href="javascript:alert(1)">x</a>')

    assert shown == "**\\[click\\]\\(javascript:x\\)** [x]"


def test_telegram_html_keeps_the_formatting_and_drops_anything_else():
    shown = telegram_html(
        '<b>Bold</b> <a href="https://g.example/a" onclick="x()">link</a> '
        '<script>alert(1)</script><img src=x onerror=y><a href="javascript:z">no</a>'
    )

    assert shown.startswith(
        '<b>Bold</b> <a href="https://g.example/a" target="_blank" rel="noopener noreferrer">'
        "link</a>"
    )
    assert "<script" not in shown and "onclick" not in shown and "<img" not in shown
    assert "javascript" not in shown and "alert(1)" in shown  # its text, as text


# -- the preview served by briefcast serve ------------------------------------------------------


@pytest.fixture
def preview(tmp_path):
    root = tmp_path / "preview"
    write_preview(edition(), root / "2026-03-10", public_samples("https://n.example", "x"))
    server = PreviewServer(root).start()
    try:
        yield server
    finally:
        server.stop()


def test_the_preview_page_shows_every_channel_with_working_sample_links(preview):
    page = httpx.get(f"{preview.url}/2026-03-10/", timeout=10)

    assert page.status_code == 200
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "%%" not in page.text
    assert f'View: <a href="{preview.url}/2026-03-10/email.html"' in page.text
    assert f"{preview.url}/unsubscribe-sample" in page.text
    assert '<img src="https://img.gazette.example/photos/bridge-2026_03.jpg"' in page.text
    assert "<b>Today</b>" in page.text and "&lt;script&gt;" not in page.text
    assert "<script" not in page.text
    email = httpx.get(f"{preview.url}/2026-03-10/email.html", timeout=10)
    assert "sandbox" in email.headers["content-security-policy"]
    assert '<head><base target="_blank">' in email.text and "Hello Alex" in email.text
    assert httpx.get(f"{preview.url}/unsubscribe-sample", timeout=10).status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/{token}x/2026-03-10/", "/{token}/2026-03-11/", "/{token}/..%2Fpreview/", "/", "/{token}/"],
)
def test_the_preview_serves_nothing_else(preview, path):
    url = f"http://127.0.0.1:{preview.port}" + path.format(token=preview.token)

    assert httpx.get(url, timeout=10).status_code == 404


# -- the [TEST] copy's links --------------------------------------------------------------------


def test_the_test_copy_unsubscribe_link_unsubscribes_nobody(tmp_path, monkeypatch):
    from briefcast.web.app import create_app

    settings = make_settings(tmp_path, monkeypatch)
    engine = get_engine(settings.database_url)
    subscribers.add(engine, "editor@gazette.example", status="active")
    link = proof_recipient(settings, "Editor@Gazette.example", "2026-03-10").unsubscribe_url

    with TestClient(create_app(settings)) as client:
        answer = client.post(
            link.removeprefix("http://testserver"),
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

    assert answer.status_code == 400 and "Nothing was changed" in answer.text
    assert subscribers.get(engine, "editor@gazette.example").status == "active"
