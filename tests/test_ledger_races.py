"""Runs competing for the same rows, live runs, stops: the ledger never lets a row go twice.

On SQLite and PostgreSQL: a claim takes only pending rows (a second ledger's claim of
claimed rows comes back empty), a dispatcher sends only what its claim returned (another
run that took a row between read and claim keeps it), rows of a live run are refused to
``resolve``, and a stop (SIGTERM) claims nothing new.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence

import pytest
from briefcast.channels.base import BaseChannel, Delivery, InDoubt, Receipt
from support import make_edition

from briefcast.config import Dispatch
from briefcast.db import get_engine
from briefcast.dispatch import ChannelReport, dispatch_channel
from briefcast.ledger import IN_FLIGHT, PENDING, SENT, Ledger, RunStillLive

POLICY = Dispatch(max_attempts=3, backoff_seconds=0, max_wait_seconds=5)
EDITION = "2026-11-20"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / 'ledger.db'}"


class Recording(BaseChannel):
    """A provider in memory that records every delivery it accepted, from any thread."""

    name = "recording"

    def __init__(self, targets, *, max_batch=10, concurrency=1, before_send=None, fate=None):
        super().__init__(None, None)
        self.targets = targets
        self.max_batch = max_batch
        self.concurrency = concurrency
        self.before_send = before_send
        self.fate = fate  # target -> outcome instead of a receipt
        self.accepted: list[str] = []
        self.lock = threading.Lock()

    def plan(self, edition):
        return (Delivery(t, t) for t in self.targets)

    def send(self, batch: Sequence[Delivery]):
        if self.before_send:
            self.before_send(batch)
        outcomes = []
        for delivery in batch:
            if self.fate and delivery.target in self.fate:
                outcomes.append(self.fate[delivery.target])
                continue
            with self.lock:
                self.accepted.append(delivery.target)
            outcomes.append(Receipt(f"id-{delivery.target}"))
        return outcomes


def dispatch(channel, ledger, **kwargs) -> ChannelReport:
    return dispatch_channel(
        channel, "recording", make_edition(EDITION), ledger, POLICY, sleep=lambda s: None, **kwargs
    )


def test_a_second_ledgers_claim_of_claimed_rows_comes_back_empty(db_url):
    engine = get_engine(db_url)
    first, second = Ledger(engine, run_id="run-a"), Ledger(engine, run_id="run-b")
    first.ensure(EDITION, "recording", ["a", "b", "c"])

    taken = first.claim_targets(EDITION, "recording", ["a", "b"])

    assert set(taken) == {"a", "b"}
    assert second.claim_targets(EDITION, "recording", ["a", "b"]) == {}
    assert second.claim(taken.values()) == set()
    assert set(second.claim_targets(EDITION, "recording", ["a", "b", "c"])) == {"c"}
    rows = first.rows(EDITION, "recording")
    assert {t: (r.state, r.run_id) for t, r in rows.items()} == {
        "a": (IN_FLIGHT, "run-a"),
        "b": (IN_FLIGHT, "run-a"),
        "c": (IN_FLIGHT, "run-b"),
    }


def test_a_claim_creates_the_missing_rows_in_flight_and_takes_pending_ones_once(db_url):
    engine = get_engine(db_url)
    first, second = Ledger(engine, run_id="run-a"), Ledger(engine, run_id="run-b")
    first.create(EDITION, "recording", [("a", 0)])  # pending, as a shard plan leaves it

    claimed = first.claim_new(EDITION, "recording", [("a", 0), ("b", 1)])
    assert set(claimed) == {"a", "b"}
    assert second.claim_new(EDITION, "recording", [("a", 0), ("b", 1), ("c", 2)]) == {
        "c": second.rows(EDITION, "recording")["c"].id
    }
    rows = first.rows(EDITION, "recording")
    assert {t: (r.state, r.run_id, r.seq, r.id) for t, r in rows.items()} == {
        "a": (IN_FLIGHT, "run-a", 0, claimed["a"]),
        "b": (IN_FLIGHT, "run-a", 1, claimed["b"]),
        "c": (IN_FLIGHT, "run-b", 2, rows["c"].id),
    }


def test_a_claim_that_expects_new_rows_still_takes_only_what_no_one_else_has(db_url):
    """A run that found the channel empty inserts without a conflict check (PostgreSQL);
    rows that appeared meanwhile (a shard's pending row, another run's claim) make it
    claim the usual way: pending ones are taken, others' are left alone."""
    engine = get_engine(db_url)
    ours, other = Ledger(engine, run_id="our-run"), Ledger(engine, run_id="other-run")
    ours.create(EDITION, "recording", [("pending", 0)])
    other.claim_new(EDITION, "recording", [("theirs", 1)])

    batch = [("pending", 0), ("theirs", 1), ("new", 2)]
    claimed = ours.claim_new(EDITION, "recording", batch, expect_new=True)

    assert set(claimed) == {"pending", "new"}
    assert ours.claim_new(EDITION, "recording", batch, expect_new=True) == {}
    rows = ours.rows(EDITION, "recording")
    assert {t: (r.state, r.run_id) for t, r in rows.items()} == {
        "pending": (IN_FLIGHT, "our-run"),
        "theirs": (IN_FLIGHT, "other-run"),
        "new": (IN_FLIGHT, "our-run"),
    }
    assert {claimed[t] for t in ("pending", "new")} == {rows["pending"].id, rows["new"].id}


def test_a_row_another_run_takes_between_read_and_claim_is_not_sent_by_us(db_url):
    engine = get_engine(db_url)
    targets = [f"t{n}" for n in range(6)]
    other = Ledger(engine, run_id="other-run")
    taken: list[str] = []

    def race(batch):  # runs before our first request: the other run claims t3 meanwhile
        if not taken:  # as a run claims: creating the row in flight, or taking it if pending
            taken.extend(other.claim_new(EDITION, "recording", [("t3", 3)]))

    # Our claim of the first batch happens before send(); the race claims t3 of the
    # second batch after we read it as pending and before we claim it.
    ours = Recording(targets, max_batch=3, before_send=race)
    report = dispatch(ours, Ledger(engine, run_id="our-run"))

    assert taken == ["t3"]
    assert sorted(ours.accepted) == ["t0", "t1", "t2", "t4", "t5"]
    assert (report.delivered, report.in_doubt) == (5, 1)  # it holds no lease: it may be gone
    assert "t3: in doubt (claimed by run other-run)" in report.errors
    assert other.rows(EDITION, "recording")["t3"].run_id == "other-run"


def test_two_dispatchers_on_one_edition_send_each_target_exactly_once(db_url):
    engine = get_engine(db_url)
    targets = [f"reader{n:04d}@example.org" for n in range(600)]
    channels = [Recording(targets, max_batch=20, concurrency=3) for _ in range(2)]
    reports: list[ChannelReport] = []

    def run(channel, run_id):
        reports.append(dispatch(channel, Ledger(engine, run_id=run_id)))

    threads = [
        threading.Thread(target=run, args=(channel, f"run-{n}"))
        for n, channel in enumerate(channels)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    sent = Counter(t for channel in channels for t in channel.accepted)
    assert sent == Counter(targets)  # each exactly once, between the two of them
    assert sum(r.delivered for r in reports) == 600
    states = {r.state for r in Ledger(engine).rows(EDITION, "recording").values()}
    assert states == {SENT}


def test_resolve_refuses_rows_in_flight_in_a_live_run(db_url):
    engine = get_engine(db_url)
    ledger = Ledger(engine)
    refused: list[str] = []

    def resolve_while_sending(batch):
        try:
            Ledger(engine).resolve(EDITION, "recording", None, as_sent=False)
        except RunStillLive as exc:
            refused.append(str(exc))

    channel = Recording(["a", "b"], before_send=resolve_while_sending)
    report = dispatch(channel, ledger)

    assert report.delivered == 2 and channel.accepted == ["a", "b"]
    assert "2 of these deliveries are in flight in run" in refused[0]
    assert "which is still sending" in refused[0]


def test_a_request_in_doubt_in_a_finished_run_says_so_and_is_resolvable(db_url):
    engine = get_engine(db_url)
    no_answer = InDoubt("no answer within 30s after the request went out")
    report = dispatch(Recording(["a", "b"], fate={"b": no_answer}), Ledger(engine, run_id="r1"))
    assert (report.delivered, report.in_doubt) == (1, 1)
    assert "b: in doubt, it may have gone out (no answer within 30s" in report.errors[0]

    rerun = dispatch(Recording(["a", "b"]), Ledger(engine, run_id="r2"))
    assert (rerun.skipped, rerun.in_doubt, rerun.delivered) == (1, 1, 0)
    assert "no answer within 30s" in rerun.errors[0] and "(run r1," in rerun.errors[0]
    assert "crashed" not in rerun.errors[0]  # the run finished; the request had no answer
    assert Ledger(engine).resolve(EDITION, "recording", "b", as_sent=True) == 1


def test_a_stop_claims_nothing_new_and_records_what_was_on_the_wire(db_url):
    engine = get_engine(db_url)
    stop = threading.Event()
    targets = [f"t{n}" for n in range(50)]

    def stop_during_the_second_request(batch):
        if batch[0].target == "t10":
            stop.set()  # SIGTERM arrives while this request is on the wire

    channel = Recording(targets, max_batch=10, before_send=stop_during_the_second_request)
    report = dispatch(channel, Ledger(engine), stop=stop)

    assert channel.accepted == targets[:20]  # the request on the wire finished
    assert report.delivered == 20 and report.stopped and not report.ok
    assert "stopped (SIGTERM or cancel)" in report.as_row()["reasons"]
    rows = Ledger(engine).rows(EDITION, "recording")
    assert {t for t, r in rows.items() if r.state == SENT} == set(targets[:20])
    assert all(r.state == PENDING for t, r in rows.items() if t not in targets[:20])

    rerun = Recording(targets)
    dispatch(rerun, Ledger(engine))
    assert rerun.accepted == targets[20:]


def test_the_summary_says_how_many_more_reasons_there_are(db_url):
    engine = get_engine(db_url)
    doubt = InDoubt("no answer")
    fate = {f"t{n}": doubt for n in range(0, 80, 2)}  # every other one, in 8 requests
    report = dispatch(Recording([f"t{n}" for n in range(80)], fate=fate), Ledger(engine))
    assert report.in_doubt == 40
    reasons = report.as_row()["reasons"]
    assert reasons.count("in doubt") == 5 and reasons.endswith("; and 3 more")
