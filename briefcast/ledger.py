"""The delivery ledger: exactly-once bookkeeping for every (edition, channel, target).

A delivery moves ``pending → in_flight → sent`` (or ``failed``). The claim is
one atomic UPDATE guarded by the current state (on PostgreSQL through a
``FOR UPDATE SKIP LOCKED`` subselect), so two runs can never both send the
same row, and a crash between the provider's accept and our write leaves the
row ``in_flight``: it is reported as *in doubt*, never resent blindly. An
operator settles it with ``briefcast ledger resolve``.

Every write works on a page or a request at a time: a request's rows are
claimed with one INSERT … ON CONFLICT DO NOTHING that creates them in flight
(``claim_new``; rows already there are claimed with one UPDATE; on PostgreSQL a
channel that had no rows inserts without the conflict check, and falls back to
it if a row turns up), pending rows
are created a page at a time where a channel claims message by message, and a
request's outcomes are written in one transaction.
Claims carry a lease (``briefcast.leases``): the rows of a run whose heartbeat
is fresh are never touched by another run or by ``resolve``.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import TypeVar

import orjson
from sqlalchemy import (
    ColumnElement,
    Engine,
    Integer,
    String,
    and_,
    any_,
    bindparam,
    cast,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError

from briefcast.db import one_writer, relaxed
from briefcast.leases import LEASE_SECONDS, Holder, Lease, holder_columns
from briefcast.tables import deliveries, edition_contents, edition_stories, runs

log = logging.getLogger("briefcast.ledger")
T = TypeVar("T")

__all__ = [
    "FAILED",
    "HELD",
    "IN_FLIGHT",
    "OPERATOR_RECEIPT",
    "PENDING",
    "SENT",
    "Ledger",
    "Outcomes",
    "Row",
    "RunStillLive",
    "deliveries",
    "edition_contents",
    "edition_stories",
    "now",
]

PENDING, IN_FLIGHT, SENT, FAILED, HELD = "pending", "in_flight", "sent", "failed", "held"
OPERATOR_RECEIPT = "resolved-by-operator"  # settled as sent by hand, without the provider's id


def now() -> datetime:
    return datetime.now(UTC)


# Statements for one message at a time (SMTP claims and records each message), built
# once: building a SQLAlchemy statement costs more than running it on SQLite.
_CLAIM_ONE = (
    update(deliveries)
    .where(
        deliveries.c.edition_id == bindparam("b_edition"),
        deliveries.c.channel == bindparam("b_channel"),
        deliveries.c.target == bindparam("b_target"),
        deliveries.c.state == PENDING,
    )
    .values(
        state=IN_FLIGHT,
        run_id=bindparam("b_run"),
        lease_id=bindparam("b_lease"),
        error=None,
        attempts=deliveries.c.attempts + 1,
        updated_at=bindparam("b_now"),
    )
    .returning(deliveries.c.id, deliveries.c.target)
)


@lru_cache(maxsize=32)
def _outcome_statement(state: str, column: str, leased: bool, **values):
    """UPDATE one in-flight row (``row_id``) to ``state`` with ``column`` = ``value``."""
    guard = [deliveries.c.id == bindparam("b_row_id"), deliveries.c.state == IN_FLIGHT]
    if leased:
        guard.append(deliveries.c.lease_id == bindparam("b_lease"))
    return (
        update(deliveries)
        .where(*guard)
        .values(
            state=state, updated_at=bindparam("b_now"), **{column: bindparam("b_value")}, **values
        )
    )


def _rows_at_once(conn: Connection, condition) -> list[tuple[int, str]]:
    """(id, target) of the rows matching ``condition``, read in one step (SQLite).

    sqlite3 lets go of the GIL at every row it steps to. Inside a write, with the
    writer lock held, each such row could hand the GIL to the thread planning the
    next page and wait for it back: 1000 rows with RETURNING took twice as long in a
    run as alone. One JSON array is one step.
    """
    packed = select(func.json_group_array(func.json_array(deliveries.c.id, deliveries.c.target)))
    return [tuple(pair) for pair in orjson.loads(conn.scalar(packed.where(condition)))]


def _inserted_last(conn: Connection, count: int) -> dict[str, int]:
    """target → id of the ``count`` rows the last INSERT made (SQLite, in its transaction).

    Without AUTOINCREMENT, SQLite gives each new row the largest rowid so far plus one,
    so the rows of one INSERT … SELECT are the ``count`` ids ending at last_insert_rowid().
    """
    if count <= 0:
        return {}
    last = func.last_insert_rowid()
    rows = _rows_at_once(conn, deliveries.c.id.between(last - count + 1, last))
    if len(rows) != count:  # not as expected: nothing is assumed
        raise RuntimeError(f"{len(rows)} rows found for {count} created")
    return {target: row_id for row_id, target in rows}


@lru_cache(maxsize=8)
def _insert_statement(dialect: str, claimed: bool, only_new: bool = False):
    """INSERT … SELECT … ON CONFLICT DO NOTHING over a page of (target, seq): pending
    rows, or rows in flight for the claiming run (``:run``, ``:lease``).

    ``only_new`` (PostgreSQL): no ON CONFLICT clause, for rows that should all be
    new; one already there fails the statement. Checking each row for a conflict
    first took a third of the INSERT's time.
    """
    columns = (
        "edition_id, channel, target, seq, state, run_id, lease_id, attempts, retryable, "
        "created_at, updated_at"
    )
    state = f"'{IN_FLIGHT}', :run, :lease, 1" if claimed else f"'{PENDING}', NULL, NULL, 0"
    values = f":edition, :channel, t.target, t.seq, {state}, false, :stamp, :stamp"
    conflict = " ON CONFLICT (edition_id, channel, target) DO NOTHING"
    if dialect == "postgresql":
        # A JSON text and a comma-separated one: psycopg adapting two Python lists of
        # 1000 items cost more than the INSERT's own work on the server.
        source = (
            "unnest(ARRAY(SELECT json_array_elements_text(CAST(:targets AS json))), "
            "CAST(string_to_array(:seqs, ',') AS integer[])) AS t(target, seq)"
        )
        returning = " RETURNING id, target"
        conflict = "" if only_new else conflict
    else:
        source = (
            "(SELECT json_extract(value, '$[0]') AS target, "
            "json_extract(value, '$[1]') AS seq FROM json_each(:targets)) AS t"
        )
        returning = ""
    return text(
        f"INSERT INTO deliveries ({columns}) SELECT {values} FROM {source} WHERE true"
        f"{conflict}{returning}"
    ).bindparams(bindparam("stamp", type_=deliveries.c.created_at.type))


def _numbers(values: Sequence[int]) -> str:
    return ",".join(map(str, values))


class RunStillLive(RuntimeError):
    """The rows asked for are in flight in a run that is still sending them."""

    @classmethod
    def holding(cls, live: list) -> RunStillLive:
        """The refusal for ``live``: (run id, holder, rows) as :func:`live_holders` gives."""
        return cls(
            "; ".join(
                f"{rows} of these deliveries are in flight in run {run_id}, which is still "
                f"sending ({holder.describe()})"
                for run_id, holder, rows in live
            )
            + ": it records them itself when it finishes. Wait for it, or stop it "
            "(SIGTERM lets it finish what is on the wire), then look again."
        )


def live_holders(engine: Engine, *conditions: ColumnElement[bool]) -> list:
    """(run id, holder, rows) for live runs holding in-flight rows that match ``conditions``."""
    cutoff = now() - timedelta(seconds=LEASE_SECONDS)
    query = (
        select(*holder_columns(), func.count(deliveries.c.id).label("rows"))
        .select_from(deliveries.join(runs, runs.c.lease_id == deliveries.c.lease_id))
        .where(
            *conditions,
            deliveries.c.state == IN_FLIGHT,
            runs.c.finished_at.is_(None),
            runs.c.heartbeat_at >= cutoff,
        )
        .group_by(*holder_columns())
    )
    with engine.connect() as conn:
        found = [(r.holder_run_id, Holder.of(r), r.rows) for r in conn.execute(query)]
    return [(run_id, holder, rows) for run_id, holder, rows in found if holder.live]


@dataclass(frozen=True)
class Row:
    id: int
    target: str
    state: str
    seq: int
    receipt: str | None
    error: str | None
    run_id: str | None
    holder: Holder | None = None  # the lease of an in-flight row, if it is known


@dataclass
class Outcomes:
    """What one request's deliveries came to, by row id, written in one transaction."""

    sent: list[tuple[int, str]]  # (row, receipt)
    failed: list[tuple[int, str, bool]]  # (row, error, retryable)
    released: list[tuple[int, str]]  # (row, why): surely not delivered, back to pending
    doubtful: list[tuple[int, str]]  # (row, why): left in flight, in doubt

    @classmethod
    def empty(cls) -> Outcomes:
        return cls([], [], [], [])


# Connections kept by threads (Ledger.holding_connections), per engine: at most the
# pool's capacity less FREE_FOR_OTHERS, so holding never makes anyone wait for the pool.
FREE_FOR_OTHERS = 5
_holds: dict[Engine, int] = {}
_holds_lock = threading.Lock()


def _take_a_hold(engine: Engine) -> bool:
    pool = engine.pool
    size = pool.size() if hasattr(pool, "size") else 0
    capacity = size + max(0, getattr(pool, "_max_overflow", 0))
    with _holds_lock:
        if _holds.get(engine, 0) >= capacity - FREE_FOR_OTHERS:
            return False
        _holds[engine] = _holds.get(engine, 0) + 1
        return True


def _release_holds(engine: Engine, count: int) -> None:
    with _holds_lock:
        _holds[engine] = _holds.get(engine, 0) - count


def _row(r, holder: Holder | None = None) -> Row:
    return Row(r.id, r.target, r.state, r.seq, r.receipt, r.error, r.run_id, holder)


class Ledger:
    def __init__(self, engine: Engine, run_id: str | None = None) -> None:
        self.engine = engine
        self.run_id = run_id or uuid.uuid4().hex
        self.lease_id: str | None = None  # set while a lease is held (see lease())
        self._holding = False  # see holding_connections()
        self._held = threading.local()
        self._held_all: list[Connection] = []
        self._held_lock = threading.Lock()

    @property
    def _dialect(self) -> str:
        return self.engine.dialect.name

    # -- leases -----------------------------------------------------------
    def lease(self, edition_id: str, channel: str, **kwargs) -> Lease:
        """A heartbeat lease for claims of this run on one channel (a context manager)."""
        return Lease(self, edition_id, channel, **kwargs)

    # -- pages of deliveries ------------------------------------------------
    @contextmanager
    def holding_connections(self) -> Iterator[None]:
        """Until the block ends, each thread keeps the connection of its first transaction.

        For threads that write many small transactions (a dispatch's senders and its
        per-message claims): taking a connection from the pool for each one cost a
        third of a claim's CPU, and on PostgreSQL a ping. A connection that breaks
        reconnects at its next transaction.
        """
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
            with self._held_lock:
                held, self._held_all = self._held_all, []
            for conn in held:
                conn.close()
            _release_holds(self.engine, len(held))

    def _held_connection(self) -> Connection | None:
        if not self._holding:
            return None
        conn = getattr(self._held, "conn", None)
        if conn is not None and not conn.closed:
            return conn
        if not _take_a_hold(self.engine):
            return None  # the pool's other connections stay free for everyone else
        try:
            conn = self.engine.connect()
        except Exception:  # the transaction will try again, and say what is wrong
            _release_holds(self.engine, 1)
            return None
        self._held.conn = conn
        with self._held_lock:
            self._held_all.append(conn)
        return conn

    def _in_transaction(self, work: Callable[[Connection], T], *, durable: bool) -> T:
        """``work(conn)`` in one transaction; ``durable=False`` skips the disk flush at its
        commit.

        Only claims must be on disk before their request goes out: a claim lost to a
        power cut would make the row pending again and send it twice. Creating rows
        and recording outcomes may wait for the next flush (the next claim's commit
        carries them to disk): lost, a row is recreated, or stays in flight, in doubt,
        never sent twice. A kill -9 loses nothing either way.
        """
        # On SQLite a transaction that may skip the flush runs on the relaxed engine.
        held = self._held_connection() if durable or self._dialect != "sqlite" else None
        if held is not None:
            try:
                return self._run(held, work, durable)
            except DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise
                # Lost with its connection (a database restart): rolled back, or, if the
                # commit itself was cut, written; the writes only take rows still pending
                # or in flight, so doing it again on a new connection never doubles them.
                log.warning("the ledger's connection was lost; reconnecting")
                return self._run(held, work, durable)
        engine = self.engine if durable else relaxed(self.engine)
        # The connection is checked out before the writer's turn: only the transaction
        # holds it up.
        with engine.connect() as conn:
            return self._run(conn, work, durable)

    def _run(self, conn: Connection, work: Callable[[Connection], T], durable: bool) -> T:
        with one_writer(self.engine), conn.begin():
            if self._dialect == "postgresql" and not durable:
                conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            return work(conn)

    def add(self, edition_id: str, channel: str, targets: Sequence[tuple[str, int]]) -> int:
        """Create a pending row for each (target, seq) not yet in the ledger; how many new."""
        return len(self.create(edition_id, channel, targets))

    def create(
        self, edition_id: str, channel: str, targets: Sequence[tuple[str, int]]
    ) -> dict[str, int]:
        """Create a pending row for each (target, seq) not yet in the ledger; target → id of
        the rows created.

        One INSERT … SELECT … RETURNING over the page (json_each on SQLite, unnest on
        PostgreSQL).
        """
        if not targets:
            return {}
        insert = self._insert(edition_id, channel, targets, claimed=False)
        return self._in_transaction(insert, durable=False)

    def claim_new(
        self,
        edition_id: str,
        channel: str,
        targets: Sequence[tuple[str, int]],
        *,
        expect_new: bool = False,
    ) -> dict[str, int]:
        """Claim these (target, seq): rows not yet in the ledger are created in flight for
        this run, pending ones are claimed; target → row id of those claimed.

        A fresh edition's rows are written twice (claimed, then their outcome) instead of
        three times; the pending row of a plan that has yet to go is never written.
        ``expect_new``: the channel had no rows for the edition; on PostgreSQL they are
        inserted without a conflict check, and if one is there after all (another
        worker's, a run started meanwhile) the claim is made again the usual way.
        """
        if not targets:
            return {}
        if expect_new and self._dialect == "postgresql":
            only_new = self._insert(edition_id, channel, targets, claimed=True, only_new=True)
            try:
                return self._in_transaction(only_new, durable=True)
            except IntegrityError:
                log.debug("%s: some rows of the claim were in the ledger already", channel)
        insert = self._insert(edition_id, channel, targets, claimed=True)

        def work(conn: Connection) -> dict[str, int]:
            got = insert(conn)
            if len(got) < len(targets):  # already in the ledger: claimed if still pending
                rest = [target for target, _ in targets if target not in got]
                condition = and_(
                    deliveries.c.edition_id == edition_id,
                    deliveries.c.channel == channel,
                    self._among(deliveries.c.target, rest),
                )
                got.update((target, row_id) for row_id, target in self._claim(conn, condition))
            return got

        return self._in_transaction(work, durable=True)

    def _insert(self, edition_id, channel, targets, *, claimed: bool, only_new: bool = False):
        """One INSERT … SELECT of the rows not yet in the ledger, ready to run on a
        connection (all but the statement itself is done before the writer's turn);
        running it gives target → id of the rows it made."""
        params = {"edition": edition_id, "channel": channel, "stamp": now()}
        if claimed:
            params.update(run=self.run_id, lease=self.lease_id)
        if self._dialect == "postgresql":
            params.update(
                targets=orjson.dumps([t for t, _ in targets]).decode(),
                seqs=_numbers([n for _, n in targets]),
            )
        else:
            params.update(targets=json.dumps(targets))
        statement = _insert_statement(self._dialect, claimed, only_new)

        def run(conn: Connection) -> dict[str, int]:
            result = conn.execute(statement, params)
            if self._dialect == "postgresql":
                return {target: row_id for row_id, target in result.all()}
            return _inserted_last(conn, result.rowcount)

        return run

    def has_rows(self, edition_id: str, channel: str, *conditions) -> bool:
        """Whether the channel has a row for this edition (matching ``conditions``)."""
        with self.engine.connect() as conn:
            found = conn.scalar(
                select(deliveries.c.id)
                .where(
                    deliveries.c.edition_id == edition_id,
                    deliveries.c.channel == channel,
                    *conditions,
                )
                .limit(1)
            )
        return found is not None

    def ensure(self, edition_id: str, channel: str, targets: Sequence[str]) -> None:
        """Create a pending row for every target not yet in the ledger."""
        self.add(edition_id, channel, [(target, seq) for seq, target in enumerate(targets)])

    def settled(self, edition_id: str, channel: str, targets: Sequence[str]) -> dict[str, Row]:
        """The rows among ``targets`` that are not pending, with the lease of in-flight ones."""
        if not targets:
            return {}
        query = (
            select(deliveries, *holder_columns())
            .select_from(deliveries.outerjoin(runs, runs.c.lease_id == deliveries.c.lease_id))
            .where(
                deliveries.c.edition_id == edition_id,
                deliveries.c.channel == channel,
                self._among(deliveries.c.target, targets),
                deliveries.c.state != PENDING,
            )
        )
        with self.engine.connect() as conn:
            return {r.target: _row(r, Holder.of(r)) for r in conn.execute(query)}

    def row(self, edition_id: str, channel: str, target: str) -> Row | None:
        found = self.settled(edition_id, channel, [target])
        if target in found:
            return found[target]
        with self.engine.connect() as conn:
            r = conn.execute(
                select(deliveries).where(
                    deliveries.c.edition_id == edition_id,
                    deliveries.c.channel == channel,
                    deliveries.c.target == target,
                )
            ).first()
        return _row(r) if r else None

    def rows(self, edition_id: str, channel: str) -> dict[str, Row]:
        """Every row of an edition's channel (for tests and small channels only)."""
        with self.engine.connect() as conn:
            result = conn.execute(
                select(deliveries).where(
                    deliveries.c.edition_id == edition_id, deliveries.c.channel == channel
                )
            )
            return {r.target: _row(r) for r in result}

    def has_pending(self, edition_id: str, channel: str) -> bool:
        """Whether any row of the channel is still pending (another shard may take it)."""
        return self.has_rows(edition_id, channel, deliveries.c.state == PENDING)

    def reopen_retryable(self, edition_id: str, channel: str) -> int:
        """Failed-but-retryable rows from an earlier run go back to pending."""
        with self.engine.begin() as conn:
            return conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.edition_id == edition_id,
                    deliveries.c.channel == channel,
                    deliveries.c.state.in_([FAILED, HELD]),
                    deliveries.c.retryable.is_(True),
                )
                .values(state=PENDING, updated_at=now())
            ).rowcount

    # -- claims -----------------------------------------------------------
    def _among(self, column, values: Sequence) -> ColumnElement:
        """``column IN values`` with one bound parameter (an array or JSON), not one per value:
        a request's 1000 targets cost one bind, and the statement is compiled once."""
        values = list(values)
        if len(values) == 1:  # one message at a time (SMTP): the plain, cheapest form
            return column == values[0]
        if self._dialect == "postgresql":
            if isinstance(column.type, Integer):  # ids: one text, cheaper to bind than a list
                listed = func.string_to_array(bindparam(None, _numbers(values), String), ",")
                return column == any_(cast(listed, ARRAY(Integer)))
            return column == any_(bindparam(None, values, type_=ARRAY(String)))
        listed = func.json_each(bindparam(None, json.dumps(values))).table_valued("value")
        return column.in_(select(listed.c.value))

    def _claim(self, conn, condition) -> list[tuple[int, str]]:
        pending = select(deliveries.c.id).where(condition, deliveries.c.state == PENDING)
        if self._dialect == "postgresql":  # a row another worker is claiming is skipped
            pending = pending.with_for_update(skip_locked=True)
            condition = deliveries.c.id.in_(pending.scalar_subquery())
        return conn.execute(
            update(deliveries)
            .where(condition, deliveries.c.state == PENDING)
            .values(
                state=IN_FLIGHT,
                run_id=self.run_id,
                lease_id=self.lease_id,
                error=None,
                attempts=deliveries.c.attempts + 1,
                updated_at=now(),
            )
            .returning(deliveries.c.id, deliveries.c.target)
        ).all()  # fetchall: iterating a result fetches row by row, a third of a claim's CPU

    def claim_targets(
        self,
        edition_id: str,
        channel: str,
        targets: Sequence[str],
        *,
        recording: Outcomes | None = None,
    ) -> dict[str, int]:
        """Atomically move these pending rows to in_flight for this run; target → row id.

        ``recording``: outcomes of earlier claims written in the same transaction (per-message
        claims share one commit with the outcomes that came in meanwhile).
        """
        if not targets:
            if recording is not None:
                self.record(recording)
            return {}

        def work(conn: Connection) -> dict[str, int]:
            if recording is not None:
                self._write_outcomes(conn, recording)
            if len(targets) == 1:  # one message at a time (SMTP): a statement built once
                params = {"b_edition": edition_id, "b_channel": channel, "b_target": targets[0]}
                params.update(b_run=self.run_id, b_lease=self.lease_id, b_now=now())
                return {target: row_id for row_id, target in conn.execute(_CLAIM_ONE, params)}
            condition = and_(
                deliveries.c.edition_id == edition_id,
                deliveries.c.channel == channel,
                self._among(deliveries.c.target, targets),
            )
            return {target: row_id for row_id, target in self._claim(conn, condition)}

        return self._in_transaction(work, durable=True)

    def claim(self, ids: Iterable[int]) -> set[int]:
        """Atomically move pending rows to in_flight for this run; return the ids we got."""
        ids = list(ids)
        if not ids:
            return set()
        condition = deliveries.c.id.in_(ids)
        claimed = self._in_transaction(lambda conn: self._claim(conn, condition), durable=True)
        return {row_id for row_id, _ in claimed}

    # -- outcomes ---------------------------------------------------------
    def record(self, outcomes: Outcomes) -> None:
        """Write one request's outcomes in one transaction (only rows still in flight)."""
        self._in_transaction(lambda conn: self._write_outcomes(conn, outcomes), durable=False)

    def _write_outcomes(self, conn, outcomes: Outcomes) -> None:
        stamp = now()
        self._write(conn, outcomes.sent, SENT, "receipt", stamp, error=None)
        self._write(conn, outcomes.released, PENDING, "error", stamp, retryable=True)
        self._write(conn, outcomes.doubtful, IN_FLIGHT, "error", stamp)
        for retryable in (True, False):
            failed = [(i, e) for i, e, r in outcomes.failed if r is retryable]
            self._write(conn, failed, FAILED, "error", stamp, retryable=retryable)

    def _write(self, conn, pairs, state, column, stamp, **values) -> None:
        """Rows that share the value in one UPDATE … WHERE id IN; differing ones executemany."""
        if not pairs:
            return
        distinct = {value for _, value in pairs}
        if len(distinct) == 1 and len(pairs) > 1:
            guard = (deliveries.c.state == IN_FLIGHT,)
            if self.lease_id is not None:
                guard += (deliveries.c.lease_id == self.lease_id,)
            conn.execute(
                update(deliveries)
                .where(self._among(deliveries.c.id, [i for i, _ in pairs]), *guard)
                .values(state=state, updated_at=stamp, **{column: distinct.pop()}, **values)
            )
            return
        statement = _outcome_statement(state, column, self.lease_id is not None, **values)
        conn.execute(
            statement,
            [
                {"b_row_id": i, "b_value": v, "b_lease": self.lease_id, "b_now": stamp}
                for i, v in pairs
            ],
        )

    def release(self, ids: Iterable[int], error: str) -> None:
        """Put claimed rows back to pending: the attempt surely did not deliver."""
        self._finish(ids, PENDING, error=error, retryable=True)

    def mark_sent(self, row_id: int, receipt: str) -> None:
        self._finish([row_id], SENT, receipt=receipt, error=None)

    def mark_failed(self, row_id: int, error: str, retryable: bool) -> None:
        self._finish([row_id], FAILED, error=error, retryable=retryable)

    def mark_held(self, ids: Iterable[int], reason: str) -> None:
        self._finish(ids, HELD, error=reason, retryable=True, from_states=(PENDING,))

    def hold(self, edition_id: str, channel: str, targets: Sequence[str], reason: str) -> None:
        """Pending rows held back (a budget): retried by the next run."""
        self._unsent(edition_id, channel, [(t, reason) for t in targets], HELD)

    def refuse(self, edition_id: str, channel: str, problems: Sequence[tuple[str, str]]) -> None:
        """Pending rows that cannot go as they are (target, why): failed, nothing sent.

        Retryable: once the cause is fixed (an address, a setting), the next run sends them.
        """
        self._unsent(edition_id, channel, problems, FAILED)

    def _unsent(self, edition_id, channel, pairs, state) -> None:
        if not pairs:
            return
        with self.engine.begin() as conn:
            conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.edition_id == edition_id,
                    deliveries.c.channel == channel,
                    deliveries.c.target == bindparam("t"),
                    deliveries.c.state == PENDING,
                )
                .values(state=state, error=bindparam("why"), retryable=True, updated_at=now()),
                [{"t": t, "why": why} for t, why in pairs],
            )

    def _finish(self, ids, state, *, from_states=(IN_FLIGHT,), **values) -> None:
        ids = list(ids)
        if not ids:
            return
        with self.engine.begin() as conn:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id.in_(ids), deliveries.c.state.in_(from_states))
                .values(state=state, updated_at=now(), **values)
            )

    def recent_count(self, channel: str, hours: float = 24) -> int:
        """Deliveries this channel made (or may have made: in flight) in the last ``hours``."""
        since = now() - timedelta(hours=hours)
        with self.engine.connect() as conn:
            return conn.scalar(
                select(func.count()).where(
                    deliveries.c.channel == channel,
                    deliveries.c.state.in_([SENT, IN_FLIGHT]),
                    deliveries.c.updated_at >= since,
                )
            )

    # -- settling by hand ---------------------------------------------------
    def live_holders(self, edition_id: str, channel: str, target: str | None = None) -> list:
        """(run id, holder, rows) for live runs holding in-flight rows of this channel."""
        conditions = [deliveries.c.edition_id == edition_id, deliveries.c.channel == channel]
        if target:
            conditions.append(deliveries.c.target == target)
        return live_holders(self.engine, *conditions)

    def resolve(
        self,
        edition_id: str,
        channel: str,
        target: str | None,
        as_sent: bool,
        receipt: str | None = None,
    ) -> int:
        """Settle in-doubt rows by hand: they did arrive (sent) or did not (pending).

        ``receipt`` is the provider's id for a delivery that arrived (an X post
        id, so the rest of a thread can reply to it). It may also be given later
        for a row already settled as sent without one. Rows in flight in a run
        that is still alive are never touched: RunStillLive says which run.
        """
        live = self.live_holders(edition_id, channel, target)
        if live:
            raise RunStillLive.holding(live)
        conditions = [
            deliveries.c.edition_id == edition_id,
            deliveries.c.channel == channel,
        ]
        if as_sent and receipt:
            conditions.append(
                or_(
                    deliveries.c.state == IN_FLIGHT,
                    and_(deliveries.c.state == SENT, deliveries.c.receipt == OPERATOR_RECEIPT),
                )
            )
        else:
            conditions.append(deliveries.c.state == IN_FLIGHT)
        if target:
            conditions.append(deliveries.c.target == target)
        values = (
            {"state": SENT, "receipt": receipt or OPERATOR_RECEIPT, "error": None}
            if as_sent
            else {"state": PENDING, "error": "resolved by operator: resend"}
        )
        with self.engine.begin() as conn:
            return conn.execute(
                update(deliveries).where(and_(*conditions)).values(updated_at=now(), **values)
            ).rowcount

    def summary(self, edition_id: str) -> dict[str, Counter]:
        with self.engine.connect() as conn:
            result = conn.execute(
                select(deliveries.c.channel, deliveries.c.state, func.count())
                .where(deliveries.c.edition_id == edition_id)
                .group_by(deliveries.c.channel, deliveries.c.state)
            )
            out: dict[str, Counter] = {}
            for channel, state, count in result:
                out.setdefault(channel, Counter())[state] = count
            return out

    # -- editions ---------------------------------------------------------
    def keep_content(self, edition_id: str, content: str) -> None:
        """Record what the edition sends (replacing an earlier version that sent nothing)."""
        with self.engine.begin() as conn:
            conn.execute(
                edition_contents.delete().where(edition_contents.c.edition_id == edition_id)
            )
            conn.execute(
                insert(edition_contents),
                {"edition_id": edition_id, "content": content, "recorded_at": now()},
            )

    def kept_content(self, edition_id: str) -> str | None:
        """What the edition sent, if anything of it went out (sent, or in flight)."""
        with self.engine.connect() as conn:
            started = conn.scalar(
                select(deliveries.c.id)
                .where(
                    deliveries.c.edition_id == edition_id,
                    deliveries.c.state.in_([SENT, IN_FLIGHT]),
                )
                .limit(1)
            )
            if started is None:
                return None
            return conn.scalar(
                select(edition_contents.c.content).where(
                    edition_contents.c.edition_id == edition_id
                )
            )

    def record_edition(
        self, edition_id: str, edition_date: date, story_keys: Sequence[str]
    ) -> None:
        stamp = now()
        with self.engine.begin() as conn:
            known = set(
                conn.scalars(
                    select(edition_stories.c.story_key).where(
                        edition_stories.c.edition_id == edition_id
                    )
                )
            )
            fresh = [
                {
                    "edition_id": edition_id,
                    "edition_date": edition_date,
                    "story_key": key,
                    "recorded_at": stamp,
                }
                for key in dict.fromkeys(story_keys)
                if key not in known
            ]
            if fresh:
                conn.execute(insert(edition_stories), fresh)

    def stories_sent_before(self, edition_date: date, keys: Iterable[str]) -> set[str]:
        """The keys among ``keys`` that an earlier edition carried out to someone.

        An earlier edition of which nothing went out (every channel failed, or it was
        only previewed) does not count: its stories are still news for the next one.
        """
        keys = list(keys)
        if not keys:
            return set()
        went_out = (
            select(deliveries.c.id)
            .where(
                deliveries.c.edition_id == edition_stories.c.edition_id,
                deliveries.c.state.in_([SENT, IN_FLIGHT]),
            )
            .exists()
        )
        with self.engine.connect() as conn:
            return set(
                conn.scalars(
                    select(edition_stories.c.story_key).where(
                        edition_stories.c.edition_date < edition_date,
                        edition_stories.c.story_key.in_(keys),
                        went_out,
                    )
                )
            )
