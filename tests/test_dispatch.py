"""The dispatcher and the ledger together: exactly once, across retries, waits and crashes."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import date

import pytest
from briefcast.channels.base import BaseChannel, Delivery, Receipt
from briefcast.channels.errors import PermanentError, RateLimited, TransientError
from sqlalchemy import update
from support import make_edition

from briefcast.config import Dispatch
from briefcast.db import get_engine
from briefcast.dispatch import dispatch_channel
from briefcast.ledger import IN_FLIGHT, Ledger, deliveries


class ScriptedChannel(BaseChannel):
    """A provider in memory: records what it accepted and fails as scripted."""

    name = "scripted"
    max_batch = 2

    def __init__(self, targets, script=None, thread=False):
        super().__init__(None, None)
        self.targets = targets
        self.script = list(script or [])  # one entry per send() call: None or an exception
        self.accepted: list[tuple[str, str | None]] = []
        self.thread = thread

    def plan(self, edition):
        return [
            Delivery(t, t, after=self.targets[i - 1] if self.thread and i else None)
            for i, t in enumerate(self.targets)
        ]

    def send(self, batch: Sequence[Delivery]):
        fault = self.script.pop(0) if self.script else None
        if isinstance(fault, Exception):
            raise fault
        outcomes = []
        for delivery in batch:
            if fault and delivery.target in fault:
                outcomes.append(fault[delivery.target])
                continue
            self.accepted.append((delivery.target, delivery.parent_receipt))
            outcomes.append(Receipt(f"id-{delivery.target}"))
        return outcomes


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request, tmp_path):
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
    return Ledger(get_engine(url))


POLICY = Dispatch(max_attempts=3, backoff_seconds=0.5, max_wait_seconds=60)


def test_every_target_once_and_rerun_sends_nothing(ledger):
    channel = ScriptedChannel(["a", "b", "c"])
    first = dispatch_channel(
        channel, "scripted", make_edition(), ledger, POLICY, sleep=lambda s: None
    )
    assert [t for t, _ in channel.accepted] == ["a", "b", "c"]
    assert (first.delivered, first.skipped, first.failed) == (3, 0, 0)

    again = ScriptedChannel(["a", "b", "c"])
    second = dispatch_channel(
        again, "scripted", make_edition(), ledger, POLICY, sleep=lambda s: None
    )
    assert again.accepted == []
    assert (second.delivered, second.skipped) == (0, 3)


def test_rate_limit_wait_is_honoured_then_sent_once(ledger):
    waits: list[float] = []
    channel = ScriptedChannel(["a", "b"], script=[RateLimited("slow down", retry_after=2)])
    report = dispatch_channel(
        channel, "scripted", make_edition(), ledger, POLICY, sleep=waits.append
    )
    assert waits == [pytest.approx(2, abs=0.05)]  # until the time the provider named
    assert [t for t, _ in channel.accepted] == ["a", "b"]
    assert report.delivered == 2 and report.failed == 0


def test_transient_failures_back_off_then_give_up_retryable(ledger):
    waits: list[float] = []
    boom = TransientError("503 from provider", status=503)
    channel = ScriptedChannel(["a"], script=[boom, boom, boom])
    report = dispatch_channel(
        channel, "scripted", make_edition(), ledger, POLICY, sleep=waits.append
    )
    # Exponential from 0.5 s, each with jitter: between half and all of it.
    assert len(waits) == 2 and 0.25 <= waits[0] <= 0.5 and 0.5 <= waits[1] <= 1.0
    assert report.failed == 1 and "503" in report.errors[0]
    # The next run tries the failed-but-retryable delivery again.
    retry = ScriptedChannel(["a"])
    report = dispatch_channel(retry, "scripted", make_edition(), ledger, POLICY, sleep=waits.append)
    assert [t for t, _ in retry.accepted] == ["a"] and report.delivered == 1


def test_while_a_retry_waits_its_rows_are_pending_not_in_doubt(ledger):
    """A kill during the backoff must not leave in doubt what surely did not go out."""
    states_while_waiting: list[dict[str, str]] = []

    def wait(seconds: float) -> None:
        rows = ledger.rows(make_edition().edition_id, "scripted")
        states_while_waiting.append({t: r.state for t, r in rows.items()})

    boom = TransientError("503 from provider", status=503)
    channel = ScriptedChannel(["a", "b"], script=[{"b": boom}])
    report = dispatch_channel(channel, "scripted", make_edition(), ledger, POLICY, sleep=wait)
    assert states_while_waiting == [{"a": "sent", "b": "pending"}]
    assert [t for t, _ in channel.accepted] == ["a", "b"] and report.delivered == 2


def test_permanent_failure_of_one_target_leaves_the_rest(ledger):
    rejected = PermanentError("550 mailbox unavailable", status=550)
    channel = ScriptedChannel(["a", "b", "c"], script=[{"b": rejected}])
    report = dispatch_channel(
        channel, "scripted", make_edition(), ledger, POLICY, sleep=lambda s: None
    )
    assert [t for t, _ in channel.accepted] == ["a", "c"]
    assert report.failed == 1 and "b: 550 mailbox unavailable" in report.errors[0]
    rerun = ScriptedChannel(["a", "b", "c"])
    dispatch_channel(rerun, "scripted", make_edition(), ledger, POLICY, sleep=lambda s: None)
    assert rerun.accepted == []  # a permanent failure is not retried blindly


def test_in_flight_row_from_a_crashed_run_is_in_doubt_not_resent(ledger):
    ledger.ensure("2026-11-20", "scripted", ["a", "b"])
    with ledger.engine.begin() as conn:  # a run that claimed "a" and died before recording it
        conn.execute(
            update(deliveries)
            .where(deliveries.c.target == "a")
            .values(state=IN_FLIGHT, run_id="crashed-run")
        )
    channel = ScriptedChannel(["a", "b"])
    report = dispatch_channel(
        channel, "scripted", make_edition(), ledger, POLICY, sleep=lambda s: None
    )
    assert [t for t, _ in channel.accepted] == ["b"]
    assert report.in_doubt == 1 and "crashed-run" in report.errors[0]
    assert ledger.resolve("2026-11-20", "scripted", "a", as_sent=False) == 1
    channel = ScriptedChannel(["a", "b"])
    dispatch_channel(channel, "scripted", make_edition(), ledger, POLICY, sleep=lambda s: None)
    assert [t for t, _ in channel.accepted] == ["a"]


def test_thread_replies_chain_on_receipts_and_continue_after_failure(ledger):
    fail_third = {"p3": TransientError("timeout")}
    channel = ScriptedChannel(
        ["p1", "p2", "p3", "p4"], script=[None, None, fail_third], thread=True
    )
    channel.max_batch = 1
    strict = Dispatch(max_attempts=1)
    report = dispatch_channel(
        channel, "thread", make_edition(), ledger, strict, sleep=lambda s: None
    )
    assert channel.accepted == [("p1", None), ("p2", "id-p1")]
    assert report.failed == 2  # p3 failed, p4 waits for p3
    rerun = ScriptedChannel(["p1", "p2", "p3", "p4"], thread=True)
    rerun.max_batch = 1
    dispatch_channel(rerun, "thread", make_edition(), ledger, strict, sleep=lambda s: None)
    assert rerun.accepted == [("p3", "id-p2"), ("p4", "id-p3")]


def test_unexpected_error_leaves_delivery_in_doubt(ledger):
    channel = ScriptedChannel(["a"], script=[RuntimeError("bug")])
    report = dispatch_channel(
        channel, "scripted", make_edition(), ledger, POLICY, sleep=lambda s: None
    )
    assert report.in_doubt == 1 and not report.ok
    again = ScriptedChannel(["a"])
    dispatch_channel(again, "scripted", make_edition(), ledger, POLICY, sleep=lambda s: None)
    assert again.accepted == []


def test_stories_from_earlier_editions_that_went_out_are_known(ledger):
    ledger.record_edition("2026-11-18", date(2026, 11, 18), ["story-0"])  # nothing went out
    ledger.record_edition("2026-11-19", date(2026, 11, 19), ["story-1", "story-2"])
    ledger.record_edition("2026-11-20", date(2026, 11, 20), ["story-3"])
    for edition_id in ("2026-11-19", "2026-11-20"):
        channel = ScriptedChannel(["a"])
        dispatch_channel(
            channel, "scripted", make_edition(edition_id), ledger, POLICY, sleep=lambda s: None
        )
    ledger.ensure("2026-11-18", "scripted", ["a"])  # planned, but every send failed
    seen = ledger.stories_sent_before(
        date(2026, 11, 20), ["story-0", "story-1", "story-3", "story-9"]
    )
    assert seen == {"story-1"}


class OneByOneChannel(BaseChannel):
    """Sends each message of a batch on its own thread and claims it there (SMTP's way)."""

    name = "one-by-one"
    max_batch = 4
    claims_each = True

    def __init__(self, targets):
        super().__init__(None, None)
        self.targets = targets
        self.reserved = threading.Semaphore(0)  # one release per message reserved

    def plan(self, edition):
        return [Delivery(t, t) for t in self.targets]

    def send(self, batch, handover):
        outcomes = [None] * len(batch)

        def one(index, delivery):
            handover.reserve(delivery)
            self.reserved.release()
            if handover.claim(delivery):
                outcomes[index] = Receipt(f"id-{delivery.target}")

        threads = [threading.Thread(target=one, args=item) for item in enumerate(batch)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return outcomes


class SlowFirstFlush(Ledger):
    """A ledger whose first claim is slow to reach the disk: until every message of the
    batch has asked for its own claim."""

    def __init__(self, engine, reserved, waiting_for):
        super().__init__(engine)
        self.calls: list[list[str]] = []
        self.reserved = reserved
        self.waiting_for = waiting_for

    def claim_targets(self, edition_id, channel, targets, **kwargs):
        if not targets:  # outcomes only
            return super().claim_targets(edition_id, channel, targets, **kwargs)
        self.calls.append(list(targets))
        if len(self.calls) == 1:
            for _ in range(self.waiting_for):
                assert self.reserved.acquire(timeout=30)
        return super().claim_targets(edition_id, channel, targets, **kwargs)


def test_claims_waiting_behind_a_slow_flush_share_the_next_one(ledger):
    """Per-message claims queued while one is flushed go to disk together (group commit)."""
    channel = OneByOneChannel(["a", "b", "c", "d"])
    slow = SlowFirstFlush(ledger.engine, channel.reserved, waiting_for=4)
    report = dispatch_channel(channel, "one-by-one", make_edition(), slow, POLICY)

    assert report.delivered == 4 and report.in_doubt == 0
    # The first claim may take one message or several already waiting; whatever queued
    # behind it while it was flushed (all the others) went in one more claim, not one each.
    assert len(slow.calls) <= 2 and sorted(sum(slow.calls, [])) == ["a", "b", "c", "d"]
    rows = slow.rows(make_edition().edition_id, "one-by-one")
    assert {t: r.state for t, r in rows.items()} == dict.fromkeys("abcd", "sent")


class CutsTheLedgerOff(ScriptedChannel):
    """Sends on several threads; before its third request the database drops every
    connection the ledger keeps (what a PostgreSQL restart or failover does)."""

    concurrency = 3

    def __init__(self, targets, ledger, admin_dsn):
        super().__init__(targets)
        self.ledger = ledger
        self.admin_dsn = admin_dsn
        self.calls = 0
        self.cut = 0
        self.lock = threading.Lock()

    def send(self, batch):
        with self.lock:
            self.calls += 1
            if self.calls == 3:
                self.cut_off()
        return super().send(batch)

    def cut_off(self):
        import psycopg

        pids = [c.connection.dbapi_connection.info.backend_pid for c in self.ledger._held_all]
        with psycopg.connect(self.admin_dsn, autocommit=True) as admin:
            for pid in pids:
                admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        self.cut = len(pids)


def test_the_senders_reconnect_after_the_database_drops_their_connections(postgres_url, caplog):
    engine = get_engine(postgres_url)
    ledger = Ledger(engine)
    targets = [f"t{n}" for n in range(20)]
    channel = CutsTheLedgerOff(targets, ledger, postgres_url.split("?")[0].replace("+psycopg", ""))
    report = dispatch_channel(channel, "scripted", make_edition(), ledger, POLICY)

    assert channel.cut > 0  # the senders had connections of their own, and lost them
    assert report.delivered == 20 and report.failed == 0 and report.in_doubt == 0
    assert sorted(t for t, _ in channel.accepted) == sorted(targets)  # each once
    rows = ledger.rows(make_edition().edition_id, "scripted")
    assert {r.state for r in rows.values()} == {"sent"}
    assert "connection was lost; reconnecting" in caplog.text
    assert engine.pool.checkedout() == 0  # and gave every connection back at the end


def test_a_dispatch_gives_back_every_connection_it_kept(ledger):
    channel = ScriptedChannel([f"t{n}" for n in range(9)])
    channel.concurrency = 3
    report = dispatch_channel(channel, "scripted", make_edition(), ledger, POLICY)
    assert report.delivered == 9
    assert ledger.engine.pool.checkedout() == 0
