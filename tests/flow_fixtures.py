"""A small newsroom in a temporary folder, and Prefect for the flow tests.

``newsroom`` writes three Markdown articles, a config with the outbox channel
(it writes one file per delivery: the fake provider these tests read), and
adds subscribers. ``prefect_harness`` is one temporary Prefect API for the
whole session.
"""

from __future__ import annotations

import json
import os
import textwrap
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

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


def wait_for(condition, *, timeout: float, what: str, every: float = 0.2):
    """Poll ``condition`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(every)


def run_artifacts(flow_run_id) -> dict[str, object]:
    """The artifacts of one flow run, by key."""
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {artifact.key: artifact for artifact in found}
