"""One edition to 100,000 subscribers, sent in two shards by two Prefect workers.

A real ``prefect server``, a process work pool and two ``prefect worker start``
processes (one flow run at a time each, so each takes one shard), PostgreSQL,
and the fake SendGrid with some latency. The daily-brief run itself runs in
this process. First every subscriber gets the edition exactly once and both
workers send part of it; then one shard's process is killed (kill -9) mid-send:
only the rows it had in flight are left in doubt, the other shard sends every
other row, and the daily-brief run does not pass as a success; then a stopped
daily-brief run cancels its shards, which leave nothing in doubt, and a rerun
sends the rest, each subscriber once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from briefcast.channels.sendgrid_mail import SendGridChannel
from fakes.sendgrid_server import FakeSendGrid
from flow_fixtures import (  # noqa: F401  (the *_fixture names are fixtures)
    EDITION_DATE,
    client_of,
    prefect_server_fixture,
    start,
    wait_for,
    write_newsroom,
)

pytestmark = pytest.mark.server

POOL = "briefcast-shards"
KEY_ENV = "SHARD_TEST_SENDGRID_KEY"
API_KEY = "SG.shard-test-key"
READERS = 100_000
EDITION = EDITION_DATE.isoformat()


@dataclass
class Workers:
    logs: list[Path]

    def which_ran(self, flow_run_id) -> list[int]:
        """The workers (by number) whose log says they started this flow run.

        Both workers may pick up the same scheduled run; the server lets one of them
        have it and tells the other to abort its submission.
        """
        ran = []
        for n, log in enumerate(self.logs):
            text = log.read_text(errors="replace")
            tried = f"submitting flow run '{flow_run_id}'" in text
            if tried and f"Aborted submission of flow run '{flow_run_id}'" not in text:
                ran.append(n)
        return ran


@pytest.fixture(name="workers", scope="module")
def workers_fixture(prefect_server, tmp_path_factory):
    """A process work pool and two workers, each running one flow run at a time."""
    prefect = str(Path(sys.executable).with_name("prefect"))
    env = {**prefect_server.env, "PREFECT_WORKER_QUERY_SECONDS": "1", KEY_ENV: API_KEY}
    subprocess.run(
        [prefect, "work-pool", "create", POOL, "--type", "process", "--overwrite"],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    home = tmp_path_factory.mktemp("workers")
    started = [
        start(
            [prefect, "worker", "start", "--pool", POOL, "--name", f"worker-{n}", "--limit", "1"],
            env,
            home / f"worker-{n}.log",
            home,
        )
        for n in range(2)
    ]

    def online() -> bool:
        for worker in started:
            if worker.process.poll() is not None:
                pytest.fail(f"a worker exited:\n{worker.tail()}")
        with client_of(prefect_server) as client:
            found = client.read_workers_for_work_pool(POOL)
        return sum(w.status.value == "ONLINE" for w in found) == 2

    try:
        wait_for(online, timeout=120, what="two workers online", every=0.5)
        yield Workers([worker.log for worker in started])
    finally:
        for worker in started:
            worker.stop()


@pytest.fixture(name="sendgrid")
def sendgrid_fixture():
    with FakeSendGrid(API_KEY, latency=0.3, keep_bodies=False) as fake:
        yield fake


@pytest.fixture(name="newsroom")
def newsroom_fixture(tmp_path, monkeypatch, postgres_url, sendgrid):
    """The sample newsroom on PostgreSQL with READERS subscribers, SendGrid in two shards."""
    monkeypatch.delenv("BRIEFCAST_DATA", raising=False)
    monkeypatch.delenv("BRIEFCAST_CONFIG", raising=False)
    monkeypatch.setenv(KEY_ENV, API_KEY)
    room = write_newsroom(
        tmp_path,
        subscribers=(),
        schedule=f"""
[database]
url = "{postgres_url}"

[dispatch]
shards = {{ sendgrid = 2 }}
shard_pool = "{POOL}"

[channels.sendgrid]
api_key = {{ env = "{KEY_ENV}" }}
base_url = "{sendgrid.url}"
timeout_seconds = 300  # the first test holds the answers until both shards send
""",
    )
    from sqlalchemy import text

    from briefcast.db import get_engine

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
    return room, get_engine(postgres_url)


def everyone() -> set[str]:
    return {f"reader{n}@readers.example" for n in range(1, READERS + 1)}


def run_daily_brief(prefect_server, config: Path):
    """The daily-brief flow in this process, against the server; its final state."""
    from briefcast.flows.daily_brief import daily_brief
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from briefcast.params import BriefParameters

    brief = BriefParameters(
        edition_date=EDITION_DATE,
        config_path=str(config),
        channels=["sendgrid"],
        require_approval=False,
    )
    with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}):
        return daily_brief(brief, return_state=True)


def run_watched(prefect_server, config: Path, watch, what: str):
    """``run_daily_brief`` while a thread waits for ``watch()`` (which acts) to hold."""
    watcher = threading.Thread(
        target=lambda: wait_for(watch, timeout=600, what=what, every=0.05), daemon=True
    )
    watcher.start()
    try:
        return run_daily_brief(prefect_server, config)
    finally:
        watcher.join(timeout=5)


def by_run(engine, state: str) -> Counter:
    from sqlalchemy import func, select

    from briefcast.tables import deliveries

    with engine.connect() as conn:
        rows = conn.execute(
            select(deliveries.c.run_id, func.count())
            .where(deliveries.c.edition_id == EDITION, deliveries.c.state == state)
            .group_by(deliveries.c.run_id)
        ).all()
    return Counter(dict(rows))


def shard_states(prefect_server, engine) -> dict:
    """The shard runs of the edition (the ledger's leases name them): run id → final state."""
    from sqlalchemy import select

    from briefcast.tables import runs

    with engine.connect() as conn:
        run_ids = set(conn.scalars(select(runs.c.run_id).where(runs.c.edition_id == EDITION)))
    with client_of(prefect_server) as client:
        return {run_id: client.read_flow_run(run_id).state for run_id in run_ids}


def sendgrid_row(state) -> dict:
    from briefcast.flows.outcome import result_of

    result = result_of(state)  # a Failed run carries its result too
    (row,) = [row for row in result["channels"] if row["channel"] == "sendgrid"]
    return {**row, "ok": result["ok"]}


def test_two_workers_share_one_edition_each_subscriber_once(
    prefect_server, workers, newsroom, sendgrid
):
    room, engine = newsroom
    # Nothing is answered until both shards have requests on the wire: however fast the
    # first shard is, it cannot send the whole list before the second worker starts.
    sendgrid.hold_answers()

    def both_shards_sending() -> bool:
        if len(by_run(engine, "in_flight")) < 2:
            return False
        sendgrid.release_answers()
        return True

    try:
        state = run_watched(prefect_server, room.config, both_shards_sending, "both sending")
    finally:
        sendgrid.release_answers()

    received = Counter(message.to for message in sendgrid.delivered)
    assert len(received) == READERS and set(received) == everyone()
    assert max(received.values()) == 1  # nobody twice
    sent = by_run(engine, "sent")
    assert sum(sent.values()) == READERS and not by_run(engine, "pending")
    assert len(sent) == 2 and min(sent.values()) > 0  # both shards sent part of it
    shards = shard_states(prefect_server, engine)
    assert set(sent) == set(shards) and all(s.is_completed() for s in shards.values())
    assert sorted(n for run_id in shards for n in workers.which_ran(run_id)) == [0, 1]
    row = sendgrid_row(state)
    assert (row["delivered"], row["failed"], row["in doubt"], row["ok"]) == (READERS, 0, 0, True)


def test_a_killed_shard_leaves_only_its_requests_in_doubt(
    prefect_server, workers, newsroom, sendgrid
):
    from sqlalchemy import func, select

    from briefcast.tables import deliveries, runs

    room, engine = newsroom
    killed: dict = {}

    def in_flight_of(lease_id: str) -> set[int]:
        with engine.connect() as conn:
            return set(
                conn.scalars(
                    select(deliveries.c.id).where(
                        deliveries.c.lease_id == lease_id, deliveries.c.state == "in_flight"
                    )
                )
            )

    def kill_a_shard_mid_send():
        """kill -9 the first shard process that has sent some rows and has requests out."""
        query = (
            select(runs.c.lease_id, runs.c.pid, runs.c.run_id, deliveries.c.state, func.count())
            .join(deliveries, deliveries.c.lease_id == runs.c.lease_id)
            .where(runs.c.edition_id == EDITION)
            .group_by(runs.c.lease_id, runs.c.pid, runs.c.run_id, deliveries.c.state)
        )
        with engine.connect() as conn:
            found = conn.execute(query).all()
        for lease_id, pid, run_id, _, _ in found:
            states = {state: count for lease, _, _, state, count in found if lease == lease_id}
            if states.get("sent") and states.get("in_flight"):
                os.kill(pid, signal.SIGKILL)
                killed.update(run_id=run_id, in_flight=in_flight_of(lease_id))
                killed["sent"] = by_run(engine, "sent")[run_id]
                return True
        return False

    state = run_watched(prefect_server, room.config, kill_a_shard_mid_send, "a shard mid-send")
    assert killed, "no shard was killed"

    # Only the killed shard's requests on the wire are in doubt; nothing is pending.
    doubtful = by_run(engine, "in_flight")
    assert set(doubtful) == {killed["run_id"]}
    with engine.connect() as conn:
        in_doubt = set(
            conn.scalars(
                select(deliveries.c.id).where(
                    deliveries.c.edition_id == EDITION, deliveries.c.state == "in_flight"
                )
            )
        )
    on_the_wire = SendGridChannel.concurrency * 1000  # its requests in flight, at most
    assert in_doubt == killed["in_flight"] and 0 < len(in_doubt) <= on_the_wire
    assert not by_run(engine, "pending") and not by_run(engine, "failed")

    # The surviving shard sent every other row, and nobody got the edition twice.
    sent = by_run(engine, "sent")
    assert sum(sent.values()) == READERS - len(in_doubt)
    assert sent[killed["run_id"]] == killed["sent"]  # the dead shard sent nothing more
    received = Counter(message.to for message in sendgrid.delivered)
    assert max(received.values()) == 1
    assert len(received) >= READERS - len(in_doubt)

    shards = shard_states(prefect_server, engine)
    assert not shards[killed["run_id"]].is_completed()
    assert all(s.is_completed() for run_id, s in shards.items() if run_id != killed["run_id"])
    row = sendgrid_row(state)
    assert row["ok"] is False and row["in doubt"] == len(in_doubt)
    assert row["delivered"] == READERS - len(in_doubt)


def test_a_stopped_run_cancels_its_shards_and_a_rerun_sends_the_rest_once(
    prefect_server, workers, newsroom, sendgrid
):
    from briefcast import stopping

    room, engine = newsroom
    sendgrid.latency = 1.0  # the shards are still sending when the cancels reach them

    def stop_once_both_sent_some() -> bool:
        if len(by_run(engine, "sent")) < 2:
            return False
        stopping.STOP.set()  # what SIGTERM, or a cancel from the UI, does to the run
        return True

    try:
        stopped = run_watched(prefect_server, room.config, stop_once_both_sent_some, "both sent")
    finally:
        stopping.STOP.clear()

    # Each shard was cancelled, finished the requests it had on the wire and recorded them.
    shards = shard_states(prefect_server, engine)
    assert len(shards) == 2 and all(state.is_cancelled() for state in shards.values())
    assert not by_run(engine, "in_flight")
    left = sum(by_run(engine, "pending").values())
    assert left > 0
    row = sendgrid_row(stopped)
    assert row["ok"] is False and row["in doubt"] == 0

    # The rerun sends what was left, and nobody gets the edition twice.
    sendgrid.latency = 0.0
    rerun = sendgrid_row(run_daily_brief(prefect_server, room.config))
    assert (rerun["delivered"], rerun["skipped"], rerun["ok"]) == (left, READERS - left, True)
    received = Counter(message.to for message in sendgrid.delivered)
    assert set(received) == everyone() and max(received.values()) == 1
