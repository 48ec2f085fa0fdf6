"""The dispatcher: the one place where retries, provider waits, claims and the ledger meet.

For one channel it streams the edition's deliveries from the adapter's plan a
page at a time: what an earlier run settled is counted (sent, failed, in
doubt), and the rest is cut into requests of the adapter's ``max_batch``. Up to
``concurrency`` requests are in flight at once, each on its own thread: claim
(one statement, immediately before the request, creating the rows in flight
where the ledger has none yet), send, record its outcomes (one small
transaction, as soon as they are known). So after a kill -9 the rows in doubt
are at most those whose request was on the wire. An adapter whose batch is
many separate messages (SMTP, ``claims_each``) claims and records each message
itself through a :class:`_Handover`, at its point of no return, on rows made
pending a page at a time.

Provider waits (429) close a gate that every sender of the channel waits on;
transient failures are retried with capped, jittered exponential backoff;
permanent ones are recorded with the provider's reason. A request whose fate
is unknown leaves its rows in flight: in doubt, never retried blindly. What
depends on a delivery in doubt (the rest of an X thread or a Telegram chat)
waits, reported as such. On SIGTERM (``briefcast.stopping``) nothing new is
claimed, requests on the wire finish and are recorded, and rows waiting for a
retry go back to pending.

Nothing here grows with the number of recipients: pages, the requests in
flight and the first reasons of each kind are all that is held.
"""

from __future__ import annotations

import contextvars
import gc
import itertools
import logging
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from briefcast import stopping
from briefcast.channels.base import Channel, Delivery, InDoubt, Receipt, size_of
from briefcast.channels.errors import (
    AuthError,
    ChannelError,
    DeliveryError,
    PermanentError,
    RateLimited,
    RecipientRejected,
    TransientError,
)
from briefcast.config import Dispatch
from briefcast.ledger import FAILED, HELD, IN_FLIGHT, SENT, Ledger, Outcomes, Row
from briefcast.models import RenderedEdition
from briefcast.reconcile import settle_from_provider

log = logging.getLogger("briefcast.dispatch")

PAGE_SIZE = 1000  # deliveries planned, recorded and checked against the ledger together
REASONS_KEPT = 50  # reasons a report keeps; the others are counted
REASONS_SHOWN = 5  # in the summary row


@dataclass
class ChannelReport:
    channel: str
    planned: int = 0
    delivered: int = 0  # sent in this run
    skipped: int = 0  # sent by an earlier run
    failed: int = 0
    in_doubt: int = 0
    held: int = 0
    errors: list[str] = field(default_factory=list)  # the first REASONS_KEPT reasons
    rejected: list[str] = field(default_factory=list)  # refused for good (first REASONS_KEPT)
    more_errors: int = 0  # reasons beyond those kept
    stopped: bool = False  # a SIGTERM or a cancel stopped it before the end

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.in_doubt == 0 and not self.stopped

    def note(self, reason: str, *, always: bool = False) -> None:
        """Keep a reason (the first REASONS_KEPT of them; a summary line always)."""
        if always or len(self.errors) < REASONS_KEPT:
            self.errors.append(reason)
        else:
            self.more_errors += 1

    def as_row(self) -> dict[str, object]:
        reasons = "; ".join(self.errors[:REASONS_SHOWN])
        more = max(0, len(self.errors) - REASONS_SHOWN) + self.more_errors
        if more:
            reasons += f"; and {more} more"
        return {
            "channel": self.channel,
            "delivered": self.delivered,
            "skipped": self.skipped,
            "failed": self.failed,
            "in doubt": self.in_doubt,
            "held back": self.held,
            "reasons": reasons,
        }


Progress = Callable[[str, int, int], None]


class Gate:
    """Closed by a provider's 429 until the time it named: every sender waits on it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._until = 0.0
        self._lock = threading.Lock()

    def close_for(self, seconds: float) -> None:
        with self._lock:
            self._until = max(self._until, self._clock() + seconds)

    def remaining(self) -> float:
        with self._lock:
            left = self._until - self._clock()
        return left if left > 0.01 else 0.0


def backoff(policy: Dispatch, attempt: int, rng: Callable[[], float] = random.random) -> float:
    """Exponential from ``backoff_seconds``, capped, with jitter (half to all of it)."""
    delay = min(policy.backoff_seconds * 2 ** (attempt - 1), policy.max_backoff_seconds)
    return delay * (0.5 + rng() / 2)


def concurrency_for(policy: Dispatch, channel: str, adapter: Channel) -> int:
    return max(1, policy.concurrency.get(channel, getattr(adapter, "concurrency", 1)))


@dataclass(frozen=True)
class _Retry:
    """Failed for now, surely not delivered: back to pending until its retry."""

    reason: str


@dataclass
class _Tally:
    """Outcomes sorted for the ledger, and what they add to the report."""

    outcomes: Outcomes
    delivered: int = 0
    failed: int = 0
    in_doubt: int = 0
    held: int = 0
    validated_reason: str = ""
    notes: dict[str, list[str]] = field(default_factory=dict)  # reason → targets, noted once
    rejected: list[str] = field(default_factory=list)
    refused: AuthError | None = None


def dispatch_channel(
    adapter: Channel,
    channel: str,
    edition: RenderedEdition,
    ledger: Ledger,
    policy: Dispatch,
    *,
    sleep: Callable[[float], object] | None = None,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    on_rejected: Callable[[list[str]], None] | None = None,
) -> ChannelReport:
    report = ChannelReport(channel)
    try:
        planned = adapter.plan(edition)
    except ChannelError as exc:
        report.failed = 1
        report.errors.append(f"edition refused before sending: {exc}")
        log.error("%s: edition refused before sending: %s", channel, exc)
        return report
    dispatcher = _Dispatcher(
        adapter, channel, edition, ledger, policy, report, sleep, progress, stop, on_rejected
    )
    with ledger.lease(edition.edition_id, channel) as lease, _collector_on_new_objects_only():
        if hasattr(adapter, "find_sent"):  # a short thread: ask the provider what went out
            planned = list(planned)
            settle_from_provider(adapter, ledger, edition.edition_id, channel, planned)
        dispatcher.run(planned)
        if report.stopped:
            lease.outcome = "stopped"
    return report


@contextmanager
def _collector_on_new_objects_only() -> Iterator[None]:
    """Keep what exists before the send (Prefect, the edition, every module) out of the
    garbage collector's full passes while it runs.

    A send makes a few objects per recipient that die young, and still sets off a full
    collection now and then, which walks the whole heap: a fifth of the CPU a recipient
    cost. Frozen objects are skipped; they are handed back at the end, so a long-lived
    process (``briefcast serve``) still collects them later.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _pages(items: Iterable[Delivery], size: int) -> Iterator[list[Delivery]]:
    iterator = iter(items)
    while page := list(itertools.islice(iterator, size)):
        yield page


class _Dispatcher:
    def __init__(
        self, adapter, channel, edition, ledger, policy, report, sleep, progress, stop, on_rejected
    ) -> None:
        self.adapter = adapter
        self.channel = channel
        self.edition_id = edition.edition_id
        self.ledger: Ledger = ledger
        self.policy: Dispatch = policy
        self.report: ChannelReport = report
        self.stop = stop or stopping.STOP
        self.skew = 0.0  # time an injected sleep (a test's clock) let pass, for the gate
        if sleep is None:
            self.sleep = self.stop.wait  # a stop cuts a wait short
        else:

            def slept(seconds: float) -> None:
                self.skew += seconds
                sleep(seconds)

            self.sleep = slept
        self.progress = progress
        self.on_rejected = on_rejected
        self.gate = Gate(clock=lambda: time.monotonic() + self.skew)
        self.lock = threading.Lock()  # guards the report and the counters below
        self.size = max(1, getattr(adapter, "max_batch", 1))
        self.claims_each = getattr(adapter, "claims_each", False)
        self.writer = _Writer(self)  # claims_each: the per-message claims and outcomes
        self.workers = concurrency_for(policy, channel, adapter)
        self.slots = threading.Semaphore(self.workers + 1)  # requests in flight or queued
        self.outstanding: deque[tuple[Future, set[str]]] = deque()
        self.waiting: dict[str, str] = {}  # thread/chat targets held behind one in doubt
        self.seqs: dict[str, int] = {}  # deliveries planned and not yet claimed (claim_new)
        self.fresh = False  # the channel had no rows for this edition when the run began
        self.refused: AuthError | None = None  # the provider refused our own credentials
        self.not_attempted = 0
        self.given_back = 0
        self.validated = 0
        self.validated_reason = ""
        self.done = 0
        self.total = 0
        self.seq = 0

    # -- the main loop (one thread) ---------------------------------------------
    def run(self, planned: Iterable[Delivery]) -> None:
        with self.ledger.holding_connections():  # each sender keeps its own
            self._run(planned)

    def _run(self, planned: Iterable[Delivery]) -> None:
        self.total = size_of(planned) or 0
        self.ledger.reopen_retryable(self.edition_id, self.channel)
        self.fresh = not self.ledger.has_rows(self.edition_id, self.channel)
        self._progress()
        first = True
        with ThreadPoolExecutor(self.workers, thread_name_prefix=f"send-{self.channel}") as pool:
            batch: list[Delivery] = []
            for page in _pages(planned, PAGE_SIZE):
                if self.stop.is_set():
                    break
                for delivery in self._prepare(page):
                    if delivery.after is not None and any(
                        d.target == delivery.after for d in batch
                    ):
                        first = self._submit(pool, batch, first)
                        batch = []
                    batch.append(delivery)
                    if len(batch) >= self.size:
                        first = self._submit(pool, batch, first)
                        batch = []
            if batch:
                self._submit(pool, batch, first)
        self.writer.close()
        self._finish()

    def _prepare(self, page: list[Delivery]) -> list[Delivery]:
        """Record the page in the ledger; count what is settled; what is left to send."""
        report = self.report
        targets = [(d.target, self.seq + n) for n, d in enumerate(page)]
        self.seq += len(page)
        if self.claims_each:  # claimed one by one later, by target: the rows come first
            created = self.ledger.create(self.edition_id, self.channel, targets)
            earlier = len(created) < len(page)
        else:  # each request's rows are created as they are claimed (claim_new)
            earlier = not self.fresh
        settled: dict[str, Row] = {}
        if earlier:
            settled = self.ledger.settled(self.edition_id, self.channel, [t for t, _ in targets])
        todo: list[Delivery] = []
        problems: list[tuple[str, str]] = []
        with self.lock:
            report.planned += len(page)
            for delivery in page:
                row = settled.get(delivery.target)
                if row is not None:
                    self._count_settled(row)
                elif delivery.problem:
                    problems.append((delivery.target, delivery.problem))
                    report.failed += 1
                    report.note(f"{delivery.target}: {delivery.problem}")
                else:
                    todo.append(delivery)
        held: list[Delivery] = []
        reason = ""
        admit = getattr(self.adapter, "admit", None)
        if admit is not None and todo:
            allowed, reason = admit(todo, self.ledger.recent_count(self.channel))
            todo, held = todo[:allowed], todo[allowed:]
        seqs = dict(targets)
        if not self.claims_each:  # what is not sent is recorded all the same: its rows now
            unsent = [t for t, _ in problems] + [d.target for d in held]
            self.ledger.create(self.edition_id, self.channel, [(t, seqs[t]) for t in unsent])
            self.seqs.update((d.target, seqs[d.target]) for d in todo)
        self.ledger.refuse(self.edition_id, self.channel, problems)
        if held:
            self.ledger.hold(self.edition_id, self.channel, [d.target for d in held], reason)
            with self.lock:
                report.held += len(held)
                report.note(f"{len(held)} held back: {reason}", always=True)
            log.warning("%s: %d held back: %s", self.channel, len(held), reason)
        self._advance(len(page) - len(todo))
        return todo

    def _count_settled(self, row: Row) -> None:
        """Count a row an earlier (or another) run settled or holds. Caller holds the lock."""
        report = self.report
        if row.state == SENT:
            report.skipped += 1
        elif row.state == FAILED:
            report.failed += 1
            report.note(f"{row.target}: {row.error}")
        elif row.state == HELD:
            report.held += 1
            report.note(f"{row.target}: held back: {row.error}")
        elif row.state == IN_FLIGHT:
            holder = row.holder
            if holder is not None and holder.live:
                report.held += 1
                report.note(
                    f"{row.target}: being sent by run {row.run_id}, still running "
                    f"({holder.describe()})"
                )
                return
            report.in_doubt += 1
            if holder is None:
                report.note(f"{row.target}: in doubt (claimed by run {row.run_id})")
            elif holder.finished_at is not None:
                report.note(
                    f"{row.target}: in doubt, it may have gone out: "
                    f"{row.error or 'no outcome recorded'} (run {row.run_id}, "
                    f"{holder.finished_at:%Y-%m-%d %H:%M} UTC)"
                )
            else:
                report.note(
                    f"{row.target}: in doubt, left by a crashed run {row.run_id} at "
                    f"{holder.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC"
                )

    def _submit(self, pool: ThreadPoolExecutor, batch: list[Delivery], first: bool) -> bool:
        """Queue one request (after the parents it replies to); False once one went."""
        ready = [d for d in (self._with_parent(d) for d in batch) if d is not None]
        if not ready:
            return first
        self.slots.acquire()
        # The sender thread runs in a copy of this one's context: Prefect's run logger (and
        # so the flow run's logs in the UI) follows the context, not the thread.
        future = pool.submit(contextvars.copy_context().run, self._send_batch, ready)
        # Requests still running, for a reply to wait on its parent's: a few at most.
        self.outstanding = deque((f, t) for f, t in self.outstanding if not f.done())
        self.outstanding.append((future, {d.target for d in ready}))
        if first:  # a bad key or sender costs one request, not one per sender
            future.result()
        return False

    def _with_parent(self, delivery: Delivery) -> Delivery | None:
        """The delivery with its parent's receipt, or None when it cannot go now."""
        if delivery.after is None:
            return delivery
        parent = delivery.after
        for future, targets in list(self.outstanding):
            if parent in targets:
                future.result()  # the parent's request first: its receipt is what we need
        root = self.waiting.get(parent)
        row = None if root else self.ledger.row(self.edition_id, self.channel, parent)
        if root is None and row is not None and row.state == SENT:
            return replace(delivery, parent_receipt=row.receipt)
        if root is None and row is not None and row.state == IN_FLIGHT:
            root = parent
        with self.lock:
            if root is not None:
                self.waiting[delivery.target] = root
                self.report.held += 1
                self.report.note(f"{delivery.target}: waiting on {root} (in doubt)")
            else:
                self.report.failed += 1
                self.report.note(f"{delivery.target}: not sent, {parent} did not go out")
        self._advance(1)
        return None

    # -- one request (a sender thread) ----------------------------------------------
    def _send_batch(self, batch: list[Delivery]) -> None:
        size = len(batch)
        try:
            self._send_batch_attempts(batch)
        except Exception as exc:  # our side failed (the database): nothing of it was sent
            log.exception("%s: a request of %d could not be made", self.channel, size)
            with self.lock:
                self.report.failed += size
                self.report.note(f"{size} not sent: {type(exc).__name__}: {exc}")
        finally:
            self.slots.release()
            self._advance(size)

    def _send_batch_attempts(self, batch: list[Delivery]) -> None:
        """Attempt after attempt until nothing is left to retry, waiting between them.

        Rows that failed for now are back to pending while their retry waits, and are
        claimed again for it: a kill during a wait leaves nothing in doubt.
        """
        attempt_once = self._attempt_each if self.claims_each else self._attempt_claimed
        remaining = batch
        attempt = 0
        while remaining:
            attempt += 1
            if not self._ready(len(remaining), attempt):
                return
            remaining, example, pause = attempt_once(remaining, attempt)
            if remaining:
                log.warning(
                    "%s: %d deliveries hit a transient failure (attempt %d): %s",
                    self.channel,
                    len(remaining),
                    attempt,
                    example,
                )
                if pause:
                    self.sleep(pause)

    def _ready(self, count: int, attempt: int) -> bool:
        """Wait out a provider's 429; False when the run stopped (the rows stay pending)."""
        wait = self.gate.remaining()
        if wait:
            self.sleep(wait)
        if self._halted():
            self._not_sent(count)
            if attempt > 1:  # released when they failed: back to pending already
                with self.lock:
                    self.given_back += count
            return False
        return True

    def _attempt_claimed(self, remaining: list[Delivery], attempt: int) -> tuple:
        """Claim the batch, send it, record every outcome at once: (retry, example, pause)."""
        claimed = self._claim(remaining)
        if len(claimed) < len(remaining):
            self._lost([d.target for d in remaining if d.target not in claimed])
        remaining = [d for d in remaining if d.target in claimed]
        if not remaining:
            return [], None, 0.0
        results = self._attempt(remaining)
        retry: list[Delivery] = []
        outcomes: list = []
        pause = 0.0
        for delivery, result in zip(remaining, results, strict=True):
            result = InDoubt() if result is None else result
            wait = self._transient(result, attempt)
            if wait is not None:
                retry.append(delivery)
                pause = max(pause, wait)
                result = _Retry(str(result))
            outcomes.append(result)
        try:
            self._record(remaining, claimed, outcomes)
        except Exception as exc:  # the provider has answered; our write did not happen
            log.exception("%s: could not record %d outcomes", self.channel, len(remaining))
            with self.lock:
                self.report.in_doubt += len(remaining)
                self.report.note(f"{len(remaining)} in doubt: outcome not recorded: {exc}")
            return [], None, 0.0
        example = next((o.reason for o in outcomes if isinstance(o, _Retry)), None)
        return retry, example, pause

    def _attempt_each(self, remaining: list[Delivery], attempt: int) -> tuple:
        """A ``claims_each`` adapter's attempt: it claims and reports each delivery itself."""
        handover = _Handover(self, attempt)
        results = self._attempt(remaining, handover)
        for delivery, result in zip(remaining, results, strict=True):
            handover.done(delivery, result)  # what the adapter did not report itself
        return handover.retry, handover.example, handover.pause

    def _claim(self, batch: list[Delivery]) -> dict[str, int]:
        """Claim the batch: its first attempt creates the rows in flight where they are
        missing; a retry claims the rows it released."""
        seqs = [(d.target, self.seqs.pop(d.target, None)) for d in batch]
        if any(seq is None for _, seq in seqs):
            return self.ledger.claim_targets(
                self.edition_id, self.channel, [d.target for d in batch]
            )
        return self.ledger.claim_new(self.edition_id, self.channel, seqs, expect_new=self.fresh)

    def _halted(self) -> bool:
        return self.stop.is_set() or self.refused is not None

    def _not_sent(self, count: int) -> None:
        with self.lock:
            if self.refused is not None:
                self.not_attempted += count
            else:
                self.report.stopped = True

    def _lost(self, targets: list[str]) -> None:
        """Rows another run claimed between our read and our claim: counted as it left them."""
        rows = self.ledger.settled(self.edition_id, self.channel, targets)
        with self.lock:
            for target in targets:
                if target in rows:
                    self._count_settled(rows[target])
                else:
                    self.report.held += 1
                    self.report.note(f"{target}: taken by another run")

    def _attempt(self, batch: list[Delivery], handover: _Handover | None = None) -> list:
        try:
            if handover is not None:
                return list(self.adapter.send(batch, handover))
            return list(self.adapter.send(batch))
        except DeliveryError as exc:
            return [exc] * len(batch)
        except ChannelError as exc:
            return [PermanentError(str(exc), channel=self.channel)] * len(batch)
        except Exception as exc:  # a bug or an unmapped error: the provider may have sent it
            log.exception(
                "%s: unexpected error; %d deliveries left in flight", self.channel, len(batch)
            )
            return [InDoubt(f"unexpected error while sending: {type(exc).__name__}")] * len(batch)

    def _record(self, batch, claimed: dict[str, int], outcomes: list) -> None:
        tally = self._tally(batch, claimed, outcomes)
        self.ledger.record(tally.outcomes)
        self._count(tally)

    def _tally(self, batch, claimed: dict[str, int], outcomes: list) -> _Tally:
        """What the outcomes write to the ledger and add to the report."""
        tally = _Tally(Outcomes.empty())
        out = tally.outcomes
        for delivery, outcome in zip(batch, outcomes, strict=True):
            row_id = claimed[delivery.target]
            if isinstance(outcome, _Retry):
                out.released.append((row_id, outcome.reason))
            elif isinstance(outcome, Receipt) and not outcome.delivered:
                reason = outcome.detail or "accepted, not delivered"
                out.released.append((row_id, reason))
                tally.validated_reason = reason
                tally.held += 1
            elif isinstance(outcome, Receipt):
                out.sent.append((row_id, outcome.provider_id))
                tally.delivered += 1
            elif isinstance(outcome, InDoubt):
                out.doubtful.append((row_id, outcome.reason))
                tally.in_doubt += 1
                reason = f"in doubt, it may have gone out ({outcome.reason})"
                tally.notes.setdefault(reason, []).append(delivery.target)
            else:
                # Refused credentials sent nothing: the next run, once they are fixed, retries.
                auth = isinstance(outcome, AuthError)
                out.failed.append((row_id, str(outcome), outcome.retryable or auth))
                tally.refused = outcome if auth else tally.refused
                tally.failed += 1
                tally.notes.setdefault(str(outcome), []).append(delivery.target)
                if isinstance(outcome, RecipientRejected):
                    tally.rejected.append(delivery.target)
        return tally

    def _count(self, tally: _Tally) -> None:
        """Add outcomes written to the ledger to the report."""
        if tally.rejected and self.on_rejected is not None:
            self.on_rejected(tally.rejected)
        with self.lock:
            report = self.report
            report.delivered += tally.delivered
            report.failed += tally.failed
            report.in_doubt += tally.in_doubt
            report.held += tally.held
            self.validated += tally.held
            self.validated_reason = tally.validated_reason or self.validated_reason
            for reason, targets in tally.notes.items():
                others = f" and {len(targets) - 1} more" if len(targets) > 1 else ""
                report.note(f"{targets[0]}{others}: {reason}")
            kept = max(0, REASONS_KEPT - len(report.rejected))
            report.rejected.extend(tally.rejected[:kept])
            if tally.refused is not None and self.refused is None:
                self.refused = tally.refused

    def _transient(self, outcome: object, attempt: int) -> float | None:
        """The pause before retrying ``outcome``; None when it is final."""
        if not isinstance(outcome, TransientError) or attempt >= self.policy.max_attempts:
            return None
        if isinstance(outcome, RateLimited):
            if outcome.retry_after > self.policy.max_wait_seconds:
                return None
            self.gate.close_for(outcome.retry_after)
            return outcome.retry_after
        return backoff(self.policy, attempt)

    # -- the end ------------------------------------------------------------------------
    def _advance(self, count: int) -> None:
        if not count:
            return
        with self.lock:
            self.done += count
            done = self.done
        self._progress(done)

    def _progress(self, done: int = 0) -> None:
        if self.progress:
            self.progress(self.channel, done, max(self.total, done))

    def _finish(self) -> None:
        report = self.report
        if self.not_attempted:
            report.failed += self.not_attempted
            report.note(f"{self.not_attempted} not attempted after: {self.refused}", always=True)
        if self.validated:
            report.note(f"{self.validated} held back: {self.validated_reason}", always=True)
        if self.stop.is_set():
            report.stopped = True
        if report.stopped:
            given = f"; {self.given_back} waiting for a retry went back to pending" * bool(
                self.given_back
            )
            report.note(
                "stopped (SIGTERM or cancel): nothing new was claimed, requests on the wire "
                f"were finished and recorded{given}; the next run sends the rest",
                always=True,
            )
            log.warning("%s: stopped before the end of the edition", self.channel)


class _Handover:
    """One attempt of a ``claims_each`` adapter: a claim and a record per delivery.

    ``claim`` takes the row (one durable UPDATE) when the adapter reaches its point
    of no return; ``done`` has the outcome written (or releases the row to be
    retried) before it returns. So a kill leaves in doubt only the messages the
    adapter was handing over. ``reserve`` starts a claim a little earlier, so its
    disk flush overlaps the adapter's last round trip; ``claim`` then only waits
    for it. Claims and outcomes are written by one writer thread, together when
    they come in during a flush. Called from the adapter's threads; never raises
    into them.
    """

    def __init__(self, dispatcher: _Dispatcher, attempt: int) -> None:
        self.d = dispatcher
        self.attempt = attempt
        self.claiming: dict[str, Future] = {}  # reserved, being claimed
        self.claimed: dict[str, int] = {}
        self.reported: set[str] = set()  # claim refused, or outcome handled
        self.retry: list[Delivery] = []
        self.pause = 0.0
        self.example: object = None
        self.lock = threading.Lock()

    def reserve(self, delivery: Delivery) -> None:
        with self.lock:
            if delivery.target in self.claiming or delivery.target in self.claimed:
                return
            self.claiming[delivery.target] = self.d.writer.claim(self, delivery)

    def claim(self, delivery: Delivery) -> bool:
        with self.lock:
            if delivery.target in self.claimed:
                return True
            reserved = self.claiming.pop(delivery.target, None)
        if reserved is None:
            reserved = self.d.writer.claim(self, delivery)
        return reserved.result()

    def took(self, target: str, row_id: int) -> None:
        with self.lock:
            self.claimed[target] = row_id

    def refused(self, target: str) -> None:
        with self.lock:
            self.reported.add(target)

    def done(self, delivery: Delivery, outcome: object) -> None:
        d = self.d
        target = delivery.target
        with self.lock:
            reserved = self.claiming.pop(target, None)
        if reserved is not None:  # reserved, then it failed before its point of no return
            reserved.result()
        with self.lock:
            if target in self.reported:
                return
            self.reported.add(target)
            row_id = self.claimed.get(target)
        outcome = InDoubt() if outcome is None else outcome
        try:
            pause = d._transient(outcome, self.attempt)
            if pause is not None:
                if row_id is not None:  # surely not delivered: pending until the retry
                    d._record([delivery], {target: row_id}, [_Retry(str(outcome))])
                    with self.lock:
                        del self.claimed[target]
                with self.lock:
                    self.retry.append(delivery)
                    self.pause = max(self.pause, pause)
                    self.example = outcome
                return
            if row_id is None:
                # Final before the point of no return (a refused recipient): claimed here
                # only to record it. A receipt or a doubt without a claim is the adapter's
                # bug; the ledger still gets the truth.
                if isinstance(outcome, Receipt | InDoubt):
                    log.error("%s: %s reported without a claim", d.channel, target)
                got = d.ledger.claim_targets(d.edition_id, d.channel, [target])
                if not got:
                    d._lost([target])
                    return
                row_id = got[target]
            # Written before the adapter speaks to the provider again: a kill leaves in
            # doubt only what is on the wire. The write shares the writer's next commit.
            d.writer.record(delivery, row_id, outcome).result()
        except Exception as exc:  # our database: the outcome is not written
            log.exception("%s: could not record the outcome of %s", d.channel, target)
            with d.lock:
                if row_id is None:
                    d.report.failed += 1
                    d.report.note(f"{target}: not sent: {exc}")
                else:
                    d.report.in_doubt += 1
                    d.report.note(f"{target}: in doubt: outcome not recorded: {exc}")


@dataclass
class _Write:
    """A claim (``handover`` set) or an outcome (``row_id`` set) for the writer thread."""

    delivery: Delivery
    future: Future
    handover: _Handover | None = None
    row_id: int | None = None
    outcome: object = None


class _Writer:
    """Per-message claims and outcomes (``claims_each``), written on one thread of their own.

    What comes in while one transaction is being flushed to disk is written together
    in the next (a group commit): outcomes first, then claims, in one transaction, so a
    slow disk flush is shared rather than paid by each message. A claim is made only
    after its reservation: a stop in between refuses it, and a row another run took is
    counted as that run left it.
    """

    def __init__(self, dispatcher: _Dispatcher) -> None:
        self.d = dispatcher
        self.waiting: queue.SimpleQueue = queue.SimpleQueue()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def claim(self, handover: _Handover, delivery: Delivery) -> Future:
        return self._submit(_Write(delivery, Future(), handover=handover))

    def record(self, delivery: Delivery, row_id: int, outcome: object) -> Future:
        return self._submit(_Write(delivery, Future(), row_id=row_id, outcome=outcome))

    def _submit(self, write: _Write) -> Future:
        with self.lock:
            if self.thread is None:
                run = contextvars.copy_context().run  # Prefect's run logger follows the context
                name = f"ledger-{self.d.channel}"
                self.thread = threading.Thread(target=run, args=(self._loop,), name=name)
                self.thread.daemon = True
                self.thread.start()
        self.waiting.put(write)
        return write.future

    def close(self) -> None:
        with self.lock:
            thread, self.thread = self.thread, None
        if thread is not None:
            self.waiting.put(None)
            thread.join()

    def _loop(self) -> None:
        while (first := self.waiting.get()) is not None:
            group = [first]
            while True:
                try:
                    item = self.waiting.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self.waiting.put(None)  # closing: after this group
                    break
                group.append(item)
            try:
                self._write(group)
            except Exception:  # never leave a sender waiting on its claim
                log.exception("%s: claims failed", self.d.channel)
            finally:
                for write in group:
                    if not write.future.done():
                        write.future.set_result(False)

    def _write(self, group: list[_Write]) -> None:
        d = self.d
        records = [w for w in group if w.handover is None]
        claims = [w for w in group if w.handover is not None]
        tally = None
        if records:
            claimed = {w.delivery.target: w.row_id for w in records}
            tally = d._tally([w.delivery for w in records], claimed, [w.outcome for w in records])
        halted = d._halted()
        if halted and claims:
            d._not_sent(len(claims))
        targets = [] if halted else [w.delivery.target for w in claims]
        got: dict[str, int] = {}
        problem = None
        try:
            recording = tally.outcomes if tally is not None else None
            got = d.ledger.claim_targets(d.edition_id, d.channel, targets, recording=recording)
        except Exception as exc:  # our database: none of them goes out, no outcome written
            what = f"{len(records)} outcomes and {len(targets)} claims"
            log.exception("%s: could not write %s", d.channel, what)
            problem = exc
        else:
            if tally is not None:
                d._count(tally)
        lost = []
        for write in claims:
            target = write.delivery.target
            if target in got:
                write.handover.took(target, got[target])
            else:
                write.handover.refused(target)
                if problem is None and not halted:
                    lost.append(target)
            write.future.set_result(target in got)
        for write in records:
            write.future.set_result(problem is None)
        if problem is not None:
            with d.lock:
                if targets:
                    d.report.failed += len(targets)
                    d.report.note(f"{len(targets)} not sent, could not claim them: {problem}")
                if records:
                    d.report.in_doubt += len(records)
                    d.report.note(f"{len(records)} in doubt: outcome not recorded: {problem}")
        if lost:
            d._lost(lost)
