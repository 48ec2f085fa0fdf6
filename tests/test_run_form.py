"""The Prefect UI in headless Chromium: the run form and the approval form explain themselves.

The screenshots (run-form.png, approval-form.png) go to the test's temporary folder;
with BRIEFCAST_UPDATE_SCREENSHOTS=1 they replace those in docs/screenshots/, which the
operating guide shows.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from briefcast.flows.approval import ApprovalInput
from flow_fixtures import (
    EDITION_DATE,
    client_of,
    wait_for,
    write_newsroom,
)
from support import CHROMIUM_ARGS

from briefcast.params import BriefParameters

pytestmark = pytest.mark.server

DOCS_SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


@pytest.fixture(name="screenshots")
def screenshots_fixture(tmp_path) -> Path:
    update = os.environ.get("BRIEFCAST_UPDATE_SCREENSHOTS") == "1"
    folder = DOCS_SCREENSHOTS if update else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(name="page")
def page_fixture(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1500})
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


def test_the_run_form_shows_every_parameter_with_its_description(served, page, screenshots):
    page.goto(f"{served.server.url}/deployments/deployment/{served.deployment_id}/run")
    page.get_by_text("Edition date", exact=False).first.wait_for()

    for field in BriefParameters.model_fields.values():
        expect(page.get_by_text(field.title, exact=False).first).to_be_visible()
        expect(page.get_by_text(field.description).first).to_be_visible()
    expect(page.get_by_text("What to publish and how", exact=False).first).to_be_visible()
    page.get_by_text("No items selected").first.click()  # the configured channels, to choose
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("option", name="outbox")).to_be_visible()
    page.keyboard.press("Escape")

    page.screenshot(path=screenshots / "run-form.png", full_page=True)
    assert (screenshots / "run-form.png").stat().st_size > 10_000


def test_an_operator_rejects_an_edition_in_the_resume_form(
    served, page, screenshots, tmp_path, monkeypatch
):
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.delenv("BRIEFCAST_DATA", raising=False)
    room = write_newsroom(tmp_path)  # its own data folder: the other tests' ledger is untouched
    brief = {
        "edition_date": EDITION_DATE.isoformat(),
        "config_path": str(room.config),
        "require_approval": True,
    }

    def trigger():  # in a thread of its own: Playwright's event loop would make Prefect go async
        with temporary_settings(updates={PREFECT_API_URL: served.server.api_url}):
            return run_deployment("daily-brief/daily", parameters={"brief": brief}, timeout=0)

    with ThreadPoolExecutor(1) as pool:
        run = pool.submit(trigger).result(timeout=60)

    def state():
        with client_of(served.server) as client:
            return client.read_flow_run(run.id).state

    wait_for(lambda: state().is_paused(), timeout=120, what="the run to pause", every=0.5)
    # The run page in the UI's default version (V2): Resume is in the run's menu.
    page.goto(f"{served.server.url}/v2/runs/flow-run/{run.id}")
    page.get_by_role("button", name="Open menu").click()
    page.get_by_role("menuitem", name="Resume").click()
    dialog = page.get_by_role("dialog")
    for field in ApprovalInput.model_fields.values():
        expect(dialog.get_by_text(field.description).first).to_be_visible()
    expect(dialog.get_by_text("A [TEST] copy went to editor@gazette.example")).to_be_visible()
    page.screenshot(path=screenshots / "approval-form.png")

    # Submitted without a decision: refused, the run still waits.
    dialog.get_by_role("button", name="Resume").click()
    expect(page.get_by_text("'decision' is a required property").first).to_be_visible()
    expect(dialog).to_be_visible()
    assert state().is_paused()

    dialog.get_by_role("button", name="Select Decision").click()
    page.get_by_role("option", name="reject").click()
    dialog.locator("textarea").fill("the lead photo is wrong")
    dialog.get_by_role("button", name="Resume").click()
    expect(dialog).to_be_hidden(timeout=60_000)  # the UI sent the answer

    final = wait_for(
        lambda: (s := state()).is_final() and s, timeout=240, what="the rejection", every=0.5
    )
    assert final.name == "Rejected" and "the lead photo is wrong" in final.message
    assert room.emails(EDITION_DATE.isoformat()) == []

    # The deployment's run list, as it opens (its default state filter), labels it Rejected.
    page.goto(f"{served.server.url}/v2/deployments/deployment/{served.deployment_id}")
    name = page.get_by_text(run.name, exact=True).first
    expect(name).to_be_visible()
    row = name.locator("xpath=ancestor::*[contains(., 'Rejected')][1]")  # its row in the list
    expect(row).to_be_visible()
    assert len(row.inner_text()) < 400, row.inner_text()  # the row, not the whole page
