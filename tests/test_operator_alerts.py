"""What the on-call editor learns without watching the console, on a real ``prefect server``.

One ``briefcast serve`` for the module, its newsroom delivering on the outbox and on an
SMTP server nobody listens on, its ``[schedule] notify`` naming a Custom Webhook block
that posts to a loopback receiver. A run whose provider is unreachable must end Failed,
naming the channel, with the dispatcher's retries in its logs, and the desk must be told;
a run waiting for approval must be announced too, and its preview must open from the run
page with nothing but ``briefcast serve`` running.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from flow_fixtures import (
    EDITION_DATE,
    PrefectServer,
    Service,
    client_of,
    free_port,
    run_artifacts,
    start,
    wait_for,
    write_newsroom,
)
from support import CHROMIUM_ARGS

pytestmark = pytest.mark.server

EDITION = EDITION_DATE.isoformat()
BLOCK = "desk-alerts"


class Receiver:
    """A loopback webhook receiver: what a Slack or chat webhook would get."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                received.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def about(self, text: str) -> list[dict]:
        return [body for body in self.bodies if text in json.dumps(body)]


@dataclass(frozen=True)
class Alerting:
    server: PrefectServer
    config: Path
    receiver: Receiver
    serve: Service


@pytest.fixture(name="alerting", scope="module")
def alerting_fixture(prefect_server, tmp_path_factory):
    """``briefcast serve`` for the ``alerts`` deployment, notifying through a webhook block."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.settings import PREFECT_API_URL, temporary_settings

    receiver = Receiver()
    with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}):
        CustomWebhookNotificationBlock(
            name="desk",
            url=receiver.url,
            json_data={"subject": "{{subject}}", "text": "{{body}}"},
        ).save(BLOCK, overwrite=True)

    root = tmp_path_factory.mktemp("alerting-newsroom")
    dead_port = free_port()  # an SMTP server nobody listens on: every attempt is refused
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("BRIEFCAST_DATA", raising=False)
        room = write_newsroom(
            root,
            schedule=(
                f'deployment = "alerts"\nnotify = "custom-webhook/{BLOCK}"\n'
                "approval_timeout_seconds = 300\n"
                "\n[dispatch]\nmax_attempts = 2\nbackoff_seconds = 0.2\n"
                f'\n[channels.smtp]\nhost = "127.0.0.1"\nport = {dead_port}\n'
                'security = "plain"\ntimeout_seconds = 2\n'
            ),
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "BRIEFCAST_"))}
    serve = start(
        [str(Path(sys.executable).with_name("briefcast")), "serve", "--config", str(room.config)],
        {**prefect_server.env, **env},
        root / "serve.log",
        root,
    )

    def registered():
        if serve.process.poll() is not None:
            pytest.fail(f"briefcast serve exited:\n{serve.tail()}")
        with client_of(prefect_server) as client:
            return client.read_automations_by_name("briefcast alerts: a run failed")

    try:
        wait_for(registered, timeout=90, what="briefcast serve to set up notifications", every=0.5)
        yield Alerting(prefect_server, room.config, receiver, serve)
    finally:
        serve.stop()
        receiver.httpd.shutdown()


def trigger(alerting: Alerting, **brief):
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    parameters = {"brief": {"edition_date": EDITION, "config_path": str(alerting.config), **brief}}
    with temporary_settings(updates={PREFECT_API_URL: alerting.server.api_url}):
        return run_deployment("daily-brief/alerts", parameters=parameters, timeout=0)


def state_of(alerting: Alerting, run_id):
    with client_of(alerting.server) as client:
        return client.read_flow_run(run_id).state


def run_logs(alerting: Alerting, run_id) -> str:
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    with client_of(alerting.server) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
    return "\n".join(log.message for log in logs)


def task_states(alerting: Alerting, run_id) -> dict[str, object]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with client_of(alerting.server) as client:
        tasks = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
        )
    return {task.name: task.state for task in tasks}


def test_an_unreachable_provider_fails_the_run_naming_it_and_the_desk_is_told(alerting):
    run = trigger(alerting, channels=["outbox", "smtp"], require_approval=False)

    final = wait_for(
        lambda: (s := state_of(alerting, run.id)).is_final() and s,
        timeout=180,
        what="the run to end",
        every=0.5,
    )

    assert final.is_failed(), f"{final.name}: {final.message}"
    assert "smtp: 2 failed" in final.message and "outbox" not in final.message
    tasks = task_states(alerting, run.id)
    assert tasks["dispatch-smtp"].is_failed() and "smtp" in tasks["dispatch-smtp"].message
    assert tasks["dispatch-outbox"].is_completed()
    logs = wait_for(
        lambda: (text := run_logs(alerting, run.id)) and "transient failure" in text and text,
        timeout=30,
        what="the dispatcher's retry in the run's logs",
    )
    assert "cannot connect to" in logs  # the provider's error, as the dispatcher logged it
    assert "cannot be resolved into an exception" not in logs  # the run's end says why
    told = wait_for(
        lambda: alerting.receiver.about(run.name),
        timeout=120,
        what="the failure notification",
        every=0.5,
    )
    assert "The daily brief failed" in told[0]["subject"]
    assert "smtp: 2 failed" in told[0]["text"] and "/runs/flow-run/" in told[0]["text"]


@pytest.fixture(name="page")
def page_fixture(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


def test_a_run_waiting_for_approval_is_announced_and_its_preview_opens_from_the_run_page(
    alerting, page
):
    from concurrent.futures import ThreadPoolExecutor

    from playwright.sync_api import expect
    from prefect.flow_runs import resume_flow_run
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with ThreadPoolExecutor(1) as pool:  # Playwright's event loop would make Prefect go async
        run = pool.submit(trigger, alerting, channels=["outbox"], require_approval=True).result()
    wait_for(
        lambda: state_of(alerting, run.id).is_paused(), timeout=120, what="the pause", every=0.5
    )
    told = wait_for(
        lambda: alerting.receiver.about(run.name), timeout=120, what="the approval notice"
    )
    assert "waits for your approval" in told[0]["subject"]
    with temporary_settings(updates={PREFECT_API_URL: alerting.server.api_url}):
        link = run_artifacts(run.id)["brief-email-html"]
    preview = link.data.split("(", 1)[1].rstrip(")")
    assert preview.startswith("http://127.0.0.1:") and preview.endswith(f"/{EDITION}/")
    assert (
        f"Reviewer previews: {preview.removesuffix(f'/{EDITION}/')}/"
        in alerting.serve.log.read_text()
    )

    # The run page (the UI's default version) → Artifacts → the email's link → the preview.
    page.goto(f"{alerting.server.url}/v2/runs/flow-run/{run.id}")
    page.get_by_role("tab", name="Artifacts").click()
    page.locator("a", has_text="brief-email-html").click()
    page.get_by_role("link", name=f"Email HTML of edition {EDITION}").first.click()
    shown = wait_for(
        lambda: next((p for p in page.context.pages if p.url.startswith(preview)), None),
        timeout=30,
        what="the preview page to open",
    )
    shown.wait_for_load_state()
    expect(shown.get_by_text("Text version")).to_be_visible()
    body = shown.inner_text("body")
    assert "River bridge reopens after six months of repairs" in body
    assert "%%" not in body  # sample links and name, not placeholders
    frame = shown.frame_locator("iframe")
    expect(
        frame.get_by_text("River bridge reopens after six months of repairs").first
    ).to_be_visible()
    assert httpx.get(preview + "email.html", timeout=10).status_code == 200
    assert httpx.get(preview.replace(EDITION, "2026-01-01"), timeout=10).status_code == 404

    def reject():
        with temporary_settings(updates={PREFECT_API_URL: alerting.server.api_url}):
            resume_flow_run(run.id, run_input={"decision": "reject", "note": "test over"})

    with ThreadPoolExecutor(1) as pool:
        pool.submit(reject).result()


def test_serve_refuses_a_notification_block_that_does_not_exist(alerting, tmp_path):
    import subprocess

    config = tmp_path / "briefcast.toml"
    text = alerting.config.read_text(encoding="utf-8")
    config.write_text(
        text.replace(f'notify = "custom-webhook/{BLOCK}"', 'notify = "slack-webhook/nobody"'),
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "BRIEFCAST_"))}

    done = subprocess.run(
        [str(Path(sys.executable).with_name("briefcast")), "serve", "--config", str(config)],
        env={**alerting.server.env, **env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 2, done.stdout + done.stderr
    assert "schedule.notify: no Prefect block 'slack-webhook/nobody'" in done.stdout
    assert "Traceback" not in done.stderr
    with client_of(alerting.server) as client:  # the working notifications are left alone
        assert client.read_automations_by_name("briefcast alerts: a run failed")
