"""A small newsroom in a temporary folder, and Prefect for the flow tests.

``newsroom`` writes three Markdown articles, a config with the outbox channel
(it writes one file per delivery: the fake provider these tests read), and
adds subscribers. ``prefect_harness`` is one temporary Prefect API for the
whole session.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from support import wait_for

EDITION_DATE = date(2026, 3, 10)
SUBSCRIBERS = ("ana@readers.example", "bruno@readers.example")
EDITOR = "editor@gazette.example"

ARTICLES = {
    "bridge.md": (
        "River bridge reopens after six months of repairs",
        "Buses return to the old route on Monday.",
        2,
        "The bridge carried 20,000 vehicles a day before it closed. Engineers replaced the "
        "expansion joints and resurfaced both lanes.",
    ),
    "library.md": (
        "Town library extends its opening hours",
        "Open until 10pm on weekdays from April.",
        1,
        "The council found the money in this year's culture budget. Staff will rotate the "
        "late shifts.",
    ),
    "market.md": (
        "Fish market tests a Sunday opening",
        "A three-month trial starts next week.",
        0,
        "Stallholders voted 31 to 9 for the trial. The market will open from 7am to 1pm.",
    ),
}


@dataclass(frozen=True)
class Newsroom:
    config: Path
    data: Path

    def outbox(self, edition_id: str) -> Path:
        return self.data / "outbox" / edition_id

    def emails(self, edition_id: str) -> list[str]:
        folder = self.outbox(edition_id) / "email"
        return sorted(p.stem for p in folder.glob("*.eml")) if folder.is_dir() else []

    def proof_editions(self, edition_id: str) -> list[Path]:
        return sorted((self.data / "outbox").glob(f"{edition_id}-test-*"))

    def archive(self, edition_id: str) -> Path:
        return self.data / "archive" / f"{edition_id}.html"


def write_newsroom(
    root: Path,
    *,
    subscribers: tuple[str, ...] = SUBSCRIBERS,
    test_to: tuple[str, ...] = (EDITOR,),
    schedule: str = "",
) -> Newsroom:
    """Articles, a config and a subscriber list under ``root``; ``schedule``: more [schedule]."""
    articles = root / "articles"
    articles.mkdir(parents=True, exist_ok=True)
    for number, (name, (title, dek, priority, body)) in enumerate(ARTICLES.items()):
        slug = name.removesuffix(".md")
        articles.joinpath(name).write_text(
            textwrap.dedent(
                f"""\
                ---
                title: "{title}"
                dek: "{dek}"
                url: https://gazette.example/2026/03/10/{slug}
                published: 2026-03-10T0{7 + number}:00:00+00:00
                author: Test Desk
                priority: {priority}
                ---

                {body}
                """
            ),
            encoding="utf-8",
        )
    data = root / "var"
    config = root / "briefcast.toml"
    config.write_text(
        textwrap.dedent(
            f"""\
            data_dir = "{data}"

            [publication]
            name = "The Test Gazette"
            site_url = "https://gazette.example"
            timezone = "Europe/Lisbon"
            postal_address = "The Test Gazette, 1 Quay Street, Porto, Portugal"
            sender_email = "brief@gazette.example"
            sender_name = "The Test Gazette"
            web_base_url = "http://127.0.0.1:8765"

            [edition]
            lookback_hours = 24
            max_articles = 5

            [[sources]]
            name = "Newsroom"
            type = "markdown"
            path = "articles"

            [channels.outbox]

            [schedule]
            approval_poll_seconds = 1
            test_to = {json.dumps(list(test_to))}
            """
        )
        + schedule,
        encoding="utf-8",
    )
    if subscribers:
        from briefcast import subscribers as store
        from briefcast.config import load_settings
        from briefcast.db import get_engine

        engine = get_engine(load_settings(config).database_url)
        for address in subscribers:
            store.add(engine, address, source="test")
    return Newsroom(config=config, data=data)


@pytest.fixture(name="newsroom")
def newsroom_fixture(tmp_path, monkeypatch) -> Newsroom:
    monkeypatch.delenv("BRIEFCAST_DATA", raising=False)
    monkeypatch.delenv("BRIEFCAST_CONFIG", raising=False)
    return write_newsroom(tmp_path)


@pytest.fixture(name="prefect_harness", scope="session")
def prefect_harness_fixture(tmp_path_factory):
    """One temporary Prefect API (a real server in a subprocess) for every flow test."""
    from prefect.testing.utilities import prefect_test_harness

    home = tmp_path_factory.mktemp("prefect-home")
    saved = {k: os.environ.get(k) for k in ("PREFECT_HOME", "PREFECT_SERVER_ANALYTICS_ENABLED")}
    os.environ["PREFECT_HOME"] = str(home)
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    try:
        with prefect_test_harness(server_startup_timeout=90):
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_artifacts(flow_run_id) -> dict[str, object]:
    """The artifacts of one flow run, by key."""
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {artifact.key: artifact for artifact in found}


# -- a real Prefect server and a served deployment ---------------------------------------------

REQUIRE = os.environ.get("BRIEFCAST_REQUIRE_SERVICES") == "1"


def unavailable(reason: str):
    """Skip (visibly), or fail when CI says the service must be there."""
    if REQUIRE:
        pytest.fail(f"{reason} (BRIEFCAST_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


@dataclass
class Service:
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # the server's own workers too
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def tail(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-3000:]


def start(command: list[str], env: dict[str, str], log: Path, cwd: Path) -> Service:
    handle = log.open("wb")
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )
    handle.close()
    return Service(process, log)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class PrefectServer:
    url: str  # the UI's base URL
    api_url: str
    env: dict[str, str]


@pytest.fixture(name="prefect_server", scope="session")
def prefect_server_fixture(tmp_path_factory):
    """``prefect server start`` on 127.0.0.1, with its UI, on a SQLite file in a temp home."""
    import httpx

    prefect = Path(sys.executable).with_name("prefect")
    if not prefect.exists():
        unavailable(f"the prefect command is not installed next to {sys.executable}")
    home = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")},
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"{url}/api",
        "PREFECT_UI_API_URL": f"{url}/api",  # what the browser calls
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_BLOCKS_REGISTER_ON_START": "false",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
    }
    server = start(
        [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env,
        home / "server.log",
        home,
    )

    def healthy() -> bool:
        if server.process.poll() is not None:
            return True  # exited: reported below
        try:
            return httpx.get(f"{url}/api/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(healthy, timeout=120, what="prefect server start", every=0.5)
        if server.process.poll() is not None:
            unavailable(f"prefect server did not start:\n{server.tail()}")
        yield PrefectServer(url=url, api_url=f"{url}/api", env=env)
    finally:
        server.stop()


@contextmanager
def client_of(server: PrefectServer):
    """This process's Prefect client pointed at ``server``."""
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (
        temporary_settings(updates={PREFECT_API_URL: server.api_url}),
        get_client(sync_client=True) as client,
    ):
        yield client


@dataclass(frozen=True)
class Served:
    server: PrefectServer
    newsroom: Newsroom
    deployment_id: object


@pytest.fixture(name="served", scope="session")
def served_fixture(prefect_server, tmp_path_factory):
    """``briefcast serve`` for a newsroom of its own, as an operator runs it."""
    root = tmp_path_factory.mktemp("served-newsroom")
    env = {k: v for k, v in os.environ.items() if k not in {"BRIEFCAST_DATA", "BRIEFCAST_CONFIG"}}
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("BRIEFCAST_DATA", raising=False)
        room = write_newsroom(root, schedule="approval_timeout_seconds = 300\n")
    briefcast = Path(sys.executable).with_name("briefcast")
    serve = start(
        [str(briefcast), "serve", "--config", str(room.config)],
        {**prefect_server.env, **{k: v for k, v in env.items() if not k.startswith("PREFECT_")}},
        root / "serve.log",
        root,
    )

    def deployment_id():
        from prefect.exceptions import ObjectNotFound

        if serve.process.poll() is not None:
            pytest.fail(f"briefcast serve exited:\n{serve.tail()}")
        with client_of(prefect_server) as client:
            try:
                deployment = client.read_deployment_by_name("daily-brief/daily")
            except ObjectNotFound:
                return None
        channels = deployment.parameter_openapi_schema["definitions"]["BriefParameters"]
        return deployment.id if "enum" in channels["properties"]["channels"]["items"] else None

    try:
        found = wait_for(deployment_id, timeout=90, what="briefcast serve to register", every=0.5)
        yield Served(server=prefect_server, newsroom=room, deployment_id=found)
    finally:
        serve.stop()
