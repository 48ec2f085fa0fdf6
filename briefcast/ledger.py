"""The delivery ledger: exactly-once bookkeeping for every (edition, channel, target).

A delivery moves ``pending → in_flight → sent`` (or ``failed``). The claim is
one atomic UPDATE guarded by the current state, so two runs can never both
send the same row, and a crash between the provider's accept and our write
leaves the row ``in_flight``: it is reported as *in doubt*, never resent
blindly. An operator settles it with ``briefcast ledger resolve``.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Engine,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    func,
    insert,
    or_,
    select,
    update,
)

from briefcast.db import metadata

PENDING, IN_FLIGHT, SENT, FAILED, HELD = "pending", "in_flight", "sent", "failed", "held"
OPERATOR_RECEIPT = "resolved-by-operator"  # settled as sent by hand, without the provider's id

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("edition_id", String(100), nullable=False),
    Column("channel", String(100), nullable=False),
    Column("target", String(400), nullable=False),
    Column("seq", Integer, nullable=False, default=0),
    Column("state", String(20), nullable=False, default=PENDING),
    Column("run_id", String(64)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("receipt", String(400)),
    Column("error", Text),
    Column("retryable", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("edition_id", "channel", "target", name="uq_delivery"),
)

edition_stories = Table(
    "edition_stories",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("edition_id", String(100), nullable=False),
    Column("edition_date", Date, nullable=False),
    Column("story_key", String(1000), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("edition_id", "story_key", name="uq_edition_story"),
)

# The rendered edition as it is being sent (RenderedEdition JSON). Targets such as
# "post-3" are positions in it, so a rerun must send this, not a fresh render of
# sources that have changed since.
edition_contents = Table(
    "edition_contents",
    metadata,
    Column("edition_id", String(100), primary_key=True),
    Column("content", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Row:
    id: int
    target: str
    state: str
    seq: int
    receipt: str | None
    error: str | None
    run_id: str | None


class Ledger:
    def __init__(self, engine: Engine, run_id: str | None = None) -> None:
        self.engine = engine
        self.run_id = run_id or uuid.uuid4().hex

    # -- deliveries -------------------------------------------------------
    def ensure(self, edition_id: str, channel: str, targets: Sequence[str]) -> None:
        """Create a pending row for every target not yet in the ledger."""
        stamp = now()
        with self.engine.begin() as conn:
            existing = set(
                conn.scalars(
                    select(deliveries.c.target).where(
                        deliveries.c.edition_id == edition_id, deliveries.c.channel == channel
                    )
                )
            )
            fresh = [
                {
                    "edition_id": edition_id,
                    "channel": channel,
                    "target": target,
                    "seq": seq,
                    "state": PENDING,
                    "attempts": 0,
                    "retryable": False,
                    "created_at": stamp,
                    "updated_at": stamp,
                }
                for seq, target in enumerate(targets)
                if target not in existing
            ]
            if fresh:
                conn.execute(insert(deliveries), fresh)

    def rows(self, edition_id: str, channel: str) -> dict[str, Row]:
        with self.engine.connect() as conn:
            result = conn.execute(
                select(deliveries).where(
                    deliveries.c.edition_id == edition_id, deliveries.c.channel == channel
                )
            )
            return {
                r.target: Row(r.id, r.target, r.state, r.seq, r.receipt, r.error, r.run_id)
                for r in result
            }

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

    def claim(self, ids: Iterable[int]) -> set[int]:
        """Atomically move pending rows to in_flight for this run; return the ids we got."""
        ids = list(ids)
        if not ids:
            return set()
        with self.engine.begin() as conn:
            claimed = conn.execute(
                update(deliveries)
                .where(deliveries.c.id.in_(ids), deliveries.c.state == PENDING)
                .values(
                    state=IN_FLIGHT,
                    run_id=self.run_id,
                    attempts=deliveries.c.attempts + 1,
                    updated_at=now(),
                )
                .returning(deliveries.c.id)
            )
            return set(claimed.scalars())

    def release(self, ids: Iterable[int], error: str) -> None:
        """Put claimed rows back to pending: the attempt surely did not deliver."""
        self._finish(ids, PENDING, error=error, retryable=True)

    def mark_sent(self, row_id: int, receipt: str) -> None:
        self._finish([row_id], SENT, receipt=receipt, error=None)

    def mark_failed(self, row_id: int, error: str, retryable: bool) -> None:
        self._finish([row_id], FAILED, error=error, retryable=retryable)

    def mark_held(self, ids: Iterable[int], reason: str) -> None:
        self._finish(ids, HELD, error=reason, retryable=True, from_states=(PENDING,))

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
        for a row already settled as sent without one.
        """
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
                select(func.count())
                .select_from(deliveries)
                .where(
                    deliveries.c.edition_id == edition_id,
                    deliveries.c.state.in_([SENT, IN_FLIGHT]),
                )
            )
            if not started:
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
