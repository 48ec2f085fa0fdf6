"""End to end in headless Chromium: the app under uvicorn on 127.0.0.1, a real SQLite
database and an SMTP sink. Subscribe, get the mail, confirm; leave by the one-click POST
a mailbox provider sends and by the page's button; a tampered link is refused."""

from __future__ import annotations

import threading

import httpx
import pytest
import uvicorn
from support import CHROMIUM_ARGS
from web_support import confirmation_link, listening_socket, make_settings, smtp_sink

from briefcast import subscribers
from briefcast.db import get_engine
from briefcast.web.app import create_app


@pytest.fixture(scope="module")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def sink():
    with smtp_sink() as sink:
        yield sink


@pytest.fixture
def site(tmp_path, monkeypatch, sink):
    """The app served by uvicorn in a thread; yields (base URL, settings)."""
    sock, base = listening_socket()  # Chromium may connect before uvicorn accepts
    settings = make_settings(tmp_path, monkeypatch, smtp_port=sink.port, base_url=base)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    yield base, settings
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def status(settings, address):
    found = subscribers.get(get_engine(settings.database_url), address)
    return found.status if found else None


def test_subscribe_confirm_and_leave_in_a_real_browser(site, sink, page):
    base, settings = site

    page.goto(f"{base}/")
    page.get_by_label("Email address").fill("reader@example.org")
    page.get_by_label("Name (optional)").fill("Rea Der")
    page.get_by_role("button", name="Subscribe").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    assert status(settings, "reader@example.org") == "pending"

    [mail] = sink.received.wait_for("reader@example.org")
    link = confirmation_link(mail.message)
    assert link.startswith(f"{base}/confirm/")

    page.goto(link)
    page.get_by_role("heading", name="Confirm your subscription").wait_for()
    assert status(settings, "reader@example.org") == "pending"  # opening the link isn't enough
    page.get_by_role("button", name="Yes, subscribe me").click()
    page.get_by_role("heading", name="You're subscribed").wait_for()
    assert status(settings, "reader@example.org") == "active"

    unsubscribe = subscribers.recipient(settings, "reader@example.org", "2026-11-20")
    page.goto(unsubscribe.unsubscribe_url)
    page.get_by_role("heading", name="Unsubscribe").wait_for()
    assert status(settings, "reader@example.org") == "active"  # the page alone changes nothing
    page.get_by_role("button", name="Unsubscribe").click()
    page.get_by_role("heading", name="You're unsubscribed").wait_for()
    assert page.url == unsubscribe.unsubscribe_url  # answered in place, no redirect
    assert status(settings, "reader@example.org") == "unsubscribed"


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_post_as_a_mailbox_provider_sends_it(site, encoding):
    base, settings = site
    engine = get_engine(settings.database_url)
    subscribers.add(engine, "leaving@example.org", status="active")
    url = subscribers.recipient(settings, "leaving@example.org", "2026-11-20").unsubscribe_url

    # No cookies, no auth, just the RFC 8058 body to the List-Unsubscribe URL.
    with httpx.Client(follow_redirects=False, timeout=10) as provider:
        if encoding == "urlencoded":
            answer = provider.post(
                url,
                content=b"List-Unsubscribe=One-Click",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        else:
            answer = provider.post(url, files={"List-Unsubscribe": (None, b"One-Click")})

    assert answer.status_code == 200 and not answer.is_redirect
    assert status(settings, "leaving@example.org") == "unsubscribed"


def test_a_tampered_link_is_refused_in_the_browser(site, page):
    base, settings = site
    engine = get_engine(settings.database_url)
    subscribers.add(engine, "reader@example.org", status="active")
    subscribers.add(engine, "other@example.org", status="active")
    mine = subscribers.recipient(settings, "reader@example.org", "x").unsubscribe_url
    theirs = subscribers.recipient(settings, "other@example.org", "x").unsubscribe_url
    # the other reader's address with my signature
    swapped = theirs.rsplit(".", 1)[0] + "." + mine.rsplit(".", 1)[1]

    response = page.goto(swapped)

    assert response.status == 400
    page.get_by_role("heading", name="This link doesn't work").wait_for()
    assert page.get_by_role("button").count() == 0
    assert status(settings, "other@example.org") == "active"
    assert status(settings, "reader@example.org") == "active"
