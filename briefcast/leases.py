"""Leases on claimed deliveries: which run holds a row in flight, and is it still alive.

A dispatch of one channel takes a lease (a row of ``runs``) and keeps its
heartbeat fresh from a thread while it sends. Rows it claims carry the lease
id. Another run or ``ledger resolve`` can then tell a live run's claims (never
touched) from those a crashed run left (in doubt, named with that run and when
it was last seen), and from those of a run that finished and recorded them as
in doubt itself (a request whose answer never came).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import insert, update

from briefcast.tables import runs

if TYPE_CHECKING:
    from briefcast.ledger import Ledger

log = logging.getLogger("briefcast.leases")

HEARTBEAT_SECONDS = 5.0
LEASE_SECONDS = 30.0  # a heartbeat older than this: the run is gone


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:  # SQLite hands back naive datetimes
        return value.replace(tzinfo=UTC)
    return value


def holder_columns() -> list:
    """The columns of ``runs`` a query joins to a delivery, labelled for Holder.of."""
    return [
        runs.c.run_id.label("holder_run_id"),
        runs.c.pid.label("holder_pid"),
        runs.c.host.label("holder_host"),
        runs.c.heartbeat_at.label("holder_heartbeat_at"),
        runs.c.finished_at.label("holder_finished_at"),
        runs.c.outcome.label("holder_outcome"),
    ]


@dataclass(frozen=True)
class Holder:
    """The lease an in-flight row was claimed under."""

    run_id: str
    pid: int
    host: str
    heartbeat_at: datetime
    finished_at: datetime | None
    outcome: str | None

    @classmethod
    def of(cls, row) -> Holder | None:
        mapping = row._mapping
        if mapping.get("holder_run_id") is None:
            return None
        return cls(
            mapping["holder_run_id"],
            mapping["holder_pid"],
            mapping["holder_host"],
            _utc(mapping["holder_heartbeat_at"]),
            _utc(mapping["holder_finished_at"]),
            mapping["holder_outcome"],
        )

    @property
    def live(self) -> bool:
        fresh = _now() - self.heartbeat_at < timedelta(seconds=LEASE_SECONDS)
        return self.finished_at is None and fresh and not self._gone_from_this_host()

    def _gone_from_this_host(self) -> bool:
        """A run of this machine whose process is gone (kill -9) is dead at once, before
        its heartbeat goes stale."""
        if self.host != socket.gethostname() or self.pid == os.getpid():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, someone else's
            return False
        return False

    @property
    def crashed(self) -> bool:
        return self.finished_at is None and not self.live

    def describe(self) -> str:
        ago = (_now() - self.heartbeat_at).total_seconds()
        return f"pid {self.pid} on {self.host}, heartbeat {ago:.0f} s ago"


class Lease:
    """``with ledger.lease(edition, channel):`` claims carry this lease; a thread beats."""

    def __init__(
        self,
        ledger: Ledger,
        edition_id: str,
        channel: str,
        *,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
    ) -> None:
        self.ledger = ledger
        self.edition_id = edition_id
        self.channel = channel
        self.heartbeat_seconds = heartbeat_seconds
        self.lease_id = uuid.uuid4().hex
        self.outcome = "finished"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Lease:
        stamp = _now()
        with self.ledger.engine.begin() as conn:
            conn.execute(
                insert(runs),
                {
                    "lease_id": self.lease_id,
                    "run_id": self.ledger.run_id,
                    "channel": self.channel,
                    "edition_id": self.edition_id,
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "started_at": stamp,
                    "heartbeat_at": stamp,
                },
            )
        self.ledger.lease_id = self.lease_id
        self._thread = threading.Thread(
            target=self._beat, name=f"lease-{self.channel}", daemon=True
        )
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_seconds):
            try:
                self._set(heartbeat_at=_now())
            except Exception:  # a database hiccup: the next beat tries again
                log.warning("lease %s: heartbeat failed", self.lease_id, exc_info=True)

    def _set(self, **values) -> None:
        with self.ledger.engine.begin() as conn:
            conn.execute(update(runs).where(runs.c.lease_id == self.lease_id).values(**values))

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        stamp = _now()
        self._set(heartbeat_at=stamp, finished_at=stamp, outcome=self.outcome)
        self.ledger.lease_id = None
