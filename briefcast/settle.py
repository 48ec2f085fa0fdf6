"""Listing and settling ledger rows in bulk: what ``briefcast ledger list/resolve`` run.

Every settlement goes through :func:`settle`, which takes a :class:`RowFilter` and
builds its WHERE clause in one place (:func:`settleable`): a rule about which rows
may be settled at all (for instance "never the rows of a run that is still alive")
is added there once and holds for every caller. Lists of targets are settled in
chunks, one transaction per chunk, so ten thousand targets take seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice

from sqlalchemy import Engine, and_, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from briefcast.ledger import (
    FAILED,
    HELD,
    IN_FLIGHT,
    OPERATOR_RECEIPT,
    PENDING,
    SENT,
    RunStillLive,
    deliveries,
    live_holders,
)
from briefcast.ledger import now as utc_now

# The names operators type and read, and the ledger's own.
STATE_NAMES = {
    "in-doubt": IN_FLIGHT,
    "pending": PENDING,
    "failed": FAILED,
    "sent": SENT,
    "held": HELD,
}
SHOWN_STATE = {ledger: shown for shown, ledger in STATE_NAMES.items()}
LIST_COLUMNS = ("target", "channel", "state", "run_id", "attempts", "updated", "error")
CHUNK = 500  # targets per transaction: well under SQLite's and PostgreSQL's parameter limits
SHOW_TARGETS = 20  # a settlement this small names every target it changed
RESENT_NOTE = "resolved by operator: resend"


@dataclass(frozen=True)
class RowFilter:
    """Which rows: an edition and/or a run, optionally one channel and a list of targets."""

    edition_id: str | None = None
    channel: str | None = None
    run_id: str | None = None
    targets: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.edition_id is None and self.run_id is None:
            raise ValueError("settling needs an edition or a run")


@dataclass
class Settled:
    """What a settlement changed: how many rows, some of their targets, what was not found."""

    outcome: str
    count: int = 0
    targets: list[str] = field(default_factory=list)  # the first SHOW_TARGETS changed
    not_matched: int = 0  # listed targets that were not in doubt (or not in the ledger)
    not_matched_sample: list[str] = field(default_factory=list)

    def add(self, changed: Iterable[str], asked: Iterable[str] = ()) -> None:
        changed = list(changed)
        self.count += len(changed)
        self.targets.extend(changed[: max(0, SHOW_TARGETS - len(self.targets))])
        found = set(changed)
        missing = [t for t in asked if t not in found]
        self.not_matched += len(missing)
        room = max(0, SHOW_TARGETS - len(self.not_matched_sample))
        self.not_matched_sample.extend(missing[:room])


def state_name(value: str) -> str:
    """The ledger state for an operator's name ("in-doubt", "pending", ...); ValueError if none."""
    try:
        return STATE_NAMES[value]
    except KeyError:
        raise ValueError(f"unknown state {value!r}; one of {', '.join(STATE_NAMES)}") from None


def _scope(where: RowFilter) -> list[ColumnElement[bool]]:
    conditions = []
    if where.edition_id is not None:
        conditions.append(deliveries.c.edition_id == where.edition_id)
    if where.channel is not None:
        conditions.append(deliveries.c.channel == where.channel)
    if where.run_id is not None:
        conditions.append(deliveries.c.run_id == where.run_id)
    return conditions


def list_rows(engine: Engine, where: RowFilter, state: str | None = None) -> Iterator[dict]:
    """The rows of an edition (or run) in send order, streamed: one dict per row."""
    conditions = _scope(where)
    if state is not None:
        conditions.append(deliveries.c.state == state)
    query = (
        select(
            deliveries.c.target,
            deliveries.c.channel,
            deliveries.c.state,
            deliveries.c.run_id,
            deliveries.c.attempts,
            deliveries.c.updated_at,
            deliveries.c.error,
        )
        .where(and_(*conditions))
        .order_by(deliveries.c.edition_id, deliveries.c.channel, deliveries.c.seq)
        .execution_options(yield_per=1000)
    )
    with engine.connect() as conn:
        for row in conn.execute(query):
            updated: datetime = row.updated_at
            yield {
                "target": row.target,
                "channel": row.channel,
                "state": SHOWN_STATE.get(row.state, row.state),
                "run_id": row.run_id or "",
                "attempts": row.attempts,
                "updated": updated.isoformat(timespec="seconds") if updated else "",
                "error": row.error or "",
            }


def settleable(where: RowFilter, *, as_sent: bool, receipt: str | None) -> ColumnElement[bool]:
    """The one WHERE clause for rows an operator may settle: in doubt, within the filter.

    With a receipt, a row already settled as sent without one may also be given it (the X
    post id found later, so the rest of the thread can reply to it).
    """
    in_doubt: ColumnElement[bool] = deliveries.c.state == IN_FLIGHT
    if as_sent and receipt:
        in_doubt = or_(
            in_doubt,
            and_(deliveries.c.state == SENT, deliveries.c.receipt == OPERATOR_RECEIPT),
        )
    return and_(*_scope(where), in_doubt)


def settle(
    engine: Engine, where: RowFilter, *, as_sent: bool, receipt: str | None = None
) -> Settled:
    """Settle the in-doubt rows the filter names: they arrived (sent) or did not (pending).

    A list of targets is settled in chunks of :data:`CHUNK`, one transaction each; a
    settlement that fails part-way keeps the chunks already done (each is complete).
    """
    refuse_live_runs(engine, where)
    outcome = "sent" if as_sent else "resend"
    values = (
        {"state": SENT, "receipt": receipt or OPERATOR_RECEIPT, "error": None}
        if as_sent
        else {"state": PENDING, "error": RESENT_NOTE}
    )
    result = Settled(outcome)
    if where.targets is None:
        result.add(_update(engine, settleable(where, as_sent=as_sent, receipt=receipt), values))
        return result
    targets = iter(dict.fromkeys(where.targets))
    while chunk := list(islice(targets, CHUNK)):
        condition = and_(
            settleable(where, as_sent=as_sent, receipt=receipt), deliveries.c.target.in_(chunk)
        )
        result.add(_update(engine, condition, values), asked=chunk)
    return result


def refuse_live_runs(engine: Engine, where: RowFilter) -> None:
    """RunStillLive if a run that is still sending holds in-flight rows the filter names.

    That run records them itself when their answers come; settling them now could send
    them twice. A list of targets is checked in chunks, like the settlement itself.
    """
    if where.targets is None:
        live = live_holders(engine, *_scope(where))
    else:
        live, targets = [], iter(dict.fromkeys(where.targets))
        while chunk := list(islice(targets, CHUNK)):
            live += live_holders(engine, *_scope(where), deliveries.c.target.in_(chunk))
    if live:
        raise RunStillLive.holding(live)


def _update(engine: Engine, condition: ColumnElement[bool], values: dict) -> list[str]:
    with engine.begin() as conn:
        changed = conn.execute(
            update(deliveries)
            .where(condition)
            .values(updated_at=utc_now(), **values)
            .returning(deliveries.c.target)
        )
        return list(changed.scalars())


def read_targets(lines: Iterable[str]) -> Iterator[str]:
    """Targets from a file: one per line, or the CSV of ``ledger list --format csv``.

    Blank lines and lines starting with ``#`` are skipped; surrounding spaces are dropped.
    """
    lines = iter(lines)
    for first in lines:
        first = first.strip()
        if not first or first.startswith("#"):
            continue
        if first == ",".join(LIST_COLUMNS):
            import csv

            for row in csv.reader(lines):
                if row and row[0].strip():
                    yield row[0].strip()
            return
        yield first
        break
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            yield line
