"""Shards of one channel sharing its ledger rows, without Prefect: the parts the workers run.

On PostgreSQL with the fake SendGrid: the starting run creates the rows once; a shard
sends its own pages first, then every row still pending (so one shard alone finishes a
channel whose other shard never ran); two shards at once send each subscriber once.
A SQLite ledger or an edition the ledger does not keep is refused with the reason.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from fakes.sendgrid_server import FakeSendGrid
from flow_fixtures import prefect_harness_fixture  # noqa: F401  (a fixture)
from sqlalchemy import text
from support import GAZETTE, make_edition

from briefcast import shards
from briefcast.config import Settings
from briefcast.db import get_engine

KEY_ENV = "SHARDS_TEST_SENDGRID_KEY"
READERS = 2500  # three pages of 1000
EDITION = "2026-03-10"


def settings_for(tmp_path, database_url: str, sendgrid_url: str, **dispatch) -> Settings:
    return Settings.model_validate(
        {
            "publication": {**GAZETTE, "web_base_url": "https://gazette.example"},
            "data_dir": str(tmp_path / "data"),
            "database": {"url": database_url},
            "dispatch": {"concurrency": {"sendgrid": 1}, "shards": {"sendgrid": 2}, **dispatch},
            "channels": {"sendgrid": {"api_key": {"env": KEY_ENV}, "base_url": sendgrid_url}},
        }
    )


@pytest.fixture(name="sendgrid")
def sendgrid_fixture(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "SG.shards")
    with FakeSendGrid("SG.shards", keep_bodies=False) as fake:
        yield fake


@pytest.fixture(name="settings")
def settings_fixture(tmp_path, postgres_url, sendgrid) -> Settings:
    """READERS subscribers and an edition the starting run kept and made rows for."""
    settings = settings_for(tmp_path, postgres_url, sendgrid.url)
    with get_engine(postgres_url).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO subscribers (address, address_key, name, status, source, "
                "created_at, updated_at) SELECT a, a, '', 'active', 'test', now(), now() "
                "FROM (SELECT 'reader' || n || '@readers.example' AS a "
                "FROM generate_series(1, :n) AS n) AS s"
            ),
            {"n": READERS},
        )
    edition = make_edition(EDITION, subject="The brief", html="<p>News</p>", text="News")
    from briefcast import pipeline

    pipeline.keep_edition(settings, edition)
    assert shards.create_rows(settings, edition, "sendgrid") == READERS
    return settings


def reader(n: int) -> str:
    return f"reader{n}@readers.example"


def test_a_shard_alone_sends_its_own_page_first_then_every_pending_row(settings, sendgrid):
    report = shards.deliver_shard(settings, EDITION, "sendgrid", 1, 2, run_id="shard-2")

    first, *rest = sendgrid.requests
    assert [p["to"][0]["email"] for p in first["personalizations"]] == [
        reader(n) for n in range(1001, 2001)
    ]  # page 1 of pages 0, 1, 2 is shard 1's own
    received = Counter(message.to for message in sendgrid.delivered)
    assert len(received) == READERS and max(received.values()) == 1
    assert report.delivered == READERS and report.ok

    # The other shard, late: nothing is left for it; the channel's report says who sent.
    late = shards.deliver_shard(settings, EDITION, "sendgrid", 0, 2, run_id="shard-1")
    assert late.delivered == 0 and len(sendgrid.delivered) == READERS
    channel = shards.report_of(settings, EDITION, "sendgrid", ["shard-1", "shard-2"])
    assert (channel.delivered, channel.skipped, channel.in_doubt, channel.ok) == (
        READERS,
        0,
        0,
        True,
    )


def test_two_shards_at_once_send_each_subscriber_once(settings, sendgrid):
    sendgrid.latency = 0.05
    reports = {}

    def shard(index: int) -> None:
        reports[index] = shards.deliver_shard(
            settings, EDITION, "sendgrid", index, 2, run_id=f"shard-{index + 1}"
        )

    threads = [threading.Thread(target=shard, args=(index,)) for index in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    received = Counter(message.to for message in sendgrid.delivered)
    assert len(received) == READERS and max(received.values()) == 1
    assert reports[0].delivered > 0 and reports[1].delivered > 0
    assert reports[0].delivered + reports[1].delivered == READERS
    channel = shards.report_of(settings, EDITION, "sendgrid", ["shard-1", "shard-2"])
    assert channel.delivered == READERS and channel.ok


def test_a_crashed_shard_fails_the_channel_report_even_with_every_row_sent(settings, sendgrid):
    shards.deliver_shard(settings, EDITION, "sendgrid", 0, 2, run_id="shard-1")

    channel = shards.report_of(
        settings, EDITION, "sendgrid", ["shard-1", "shard-2"], ["shard 2 of 2 ended Crashed"]
    )

    assert channel.delivered == READERS and not channel.ok
    assert channel.errors[0] == "shard 2 of 2 ended Crashed"


def test_workers_cannot_share_a_sqlite_ledger(tmp_path, sendgrid):
    settings = settings_for(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}", sendgrid.url)

    with pytest.raises(shards.ShardError, match="SQLite file.*PostgreSQL"):
        shards.deliver_shard(settings, EDITION, "sendgrid", 0, 2, run_id="shard-1")
    assert sendgrid.calls == []


def test_a_shard_sends_only_an_edition_the_ledger_kept(tmp_path, postgres_url, sendgrid):
    settings = settings_for(tmp_path, postgres_url, sendgrid.url)

    with pytest.raises(shards.ShardError, match="2026-03-11 is not kept in the ledger"):
        shards.deliver_shard(settings, "2026-03-11", "sendgrid", 0, 2, run_id="shard-1")
    assert sendgrid.calls == []


def test_shards_of_a_channel_that_is_not_configured_are_refused(tmp_path, sendgrid):
    with pytest.raises(ValueError, match="dispatch.shards names channels not configured: fax"):
        settings_for(tmp_path, "sqlite:///x.db", sendgrid.url, shards={"fax": 2})


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_without_shared_ledger_or_workers_the_run_sends_the_channel_itself(
    database, request, tmp_path, monkeypatch
):
    from briefcast.flows.daily_brief import daily_brief
    from flow_fixtures import EDITION_DATE, SUBSCRIBERS, wait_for, write_newsroom

    from briefcast.params import BriefParameters

    request.getfixturevalue("prefect_harness")  # embedded Prefect: no work pool, no worker
    monkeypatch.delenv("BRIEFCAST_DATA", raising=False)
    url = request.getfixturevalue("postgres_url") if database == "postgresql" else ""
    extra = f'\n[database]\nurl = "{url}"\n' if url else ""
    room = write_newsroom(tmp_path, schedule=extra + "\n[dispatch]\nshards = { outbox = 2 }\n")
    brief = BriefParameters(
        edition_date=EDITION_DATE, config_path=str(room.config), channels=["outbox"]
    )

    state = daily_brief(brief, return_state=True)

    assert state.is_completed(), state.message
    assert room.emails(EDITION_DATE.isoformat()) == sorted(SUBSCRIBERS)
    why = "SQLite file" if database == "sqlite" else "no work pool 'briefcast'"
    from prefect import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    def said_why() -> bool:  # the run's logs, as its page in the UI shows them
        with get_client(sync_client=True) as client:
            logs = client.read_logs(
                LogFilter(flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id]))
            )
        return any("outbox: not sharded" in log.message and why in log.message for log in logs)

    wait_for(said_why, timeout=30, what="the run's log to say why it did not shard")
