"""The operator page in headless Chromium: sign in with the token, see the report and the
trend chart drawn from an edition's real SendGrid events."""

from __future__ import annotations

import threading

import pytest
import uvicorn
from support import CHROMIUM_ARGS
from test_report import (  # noqa: F401  (newsroom_fixture is the newsroom fixture)
    OPERATOR_TOKEN,
    READERS,
    event,
    newsroom_fixture,
    post_batch,
    the_days_events,
)
from web_support import listening_socket

from briefcast.web.app import create_app


@pytest.fixture
def page(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        page = browser.new_context().new_page()
        page.set_default_timeout(15_000)
        yield page
        browser.close()


@pytest.fixture
def site(newsroom):
    sock, base = listening_socket()  # Chromium may connect before uvicorn accepts
    server = uvicorn.Server(uvicorn.Config(create_app(newsroom["settings"]), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    yield base
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def test_the_operator_signs_in_and_sees_the_trend_chart_drawn(newsroom, site, page):
    first, second = the_days_events()
    post_batch(newsroom, first + second)
    day_before = [event("delivered", a, 1, "2026-11-19") for a in READERS]
    post_batch(newsroom, day_before + [event("open", a, 2, "2026-11-19") for a in READERS[:8]])

    page.goto(f"{site}/operator")
    page.get_by_label("Operator token").fill(OPERATOR_TOKEN)
    page.get_by_role("button", name="Open").click()
    page.get_by_role("heading", name="Edition 2026-11-20").wait_for()

    chart = page.locator("svg.trend")
    chart.wait_for(state="visible")
    box = chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 200
    # one subscriber bar per edition, drawn with a real height
    bars = page.locator("g[data-title='Subscribers emailed'] rect.bar")
    assert bars.count() == 2
    assert all(bars.nth(i).bounding_box()["height"] > 10 for i in range(2))
    # the open-rate line runs through both editions
    line = page.locator("polyline[data-series='open rate']")
    assert len(line.get_attribute("points").split()) == 2
    assert line.evaluate("el => el.getTotalLength()") > 100
    # the numbers in the table are the webhook's
    row = page.locator("table.report tbody tr").first.locator("td")
    assert row.all_inner_texts() == ["sendgrid", "10", "9", "6 (66.7%)", "3 (33.3%)", "1", "1", "1"]
