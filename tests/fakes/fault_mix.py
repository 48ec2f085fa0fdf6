"""A random mix of provider faults for the fakes, and what is on the wire right now.

Give a fake a ``FaultMix`` (``fake.fault_mix = FaultMix(faults=0.2, ghosts=0.05)``)
and each send request draws its fate:

- ``ghosts`` of them are *ghosts*: the provider accepts the request (the message
  goes out, the fake records it), then the connection drops before the answer;
- ``faults`` of them fail without sending anything, evenly among ``429`` (a rate
  limit for ``rate_limit_seconds``), ``500``, ``503``, ``stall`` (no answer for
  ``stall_seconds``, longer than the client's timeout, then a 503) and ``reset``
  (the connection drops, nothing sent);
- the rest are served normally.

Every fake also counts the deliveries (recipients, messages or posts) whose
request it is handling at this moment: ``on_wire``, what a kill -9 of the client
can leave in doubt. Seeded, so a run can be repeated.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from contextlib import contextmanager

KINDS = ("429", "500", "503", "stall", "reset")


class FaultMix:
    def __init__(
        self,
        faults: float = 0.20,
        ghosts: float = 0.05,
        *,
        seed: int = 0,
        stall_seconds: float = 3.0,
        rate_limit_seconds: float = 1.0,
    ) -> None:
        if not 0 <= faults + ghosts <= 1:
            raise ValueError("faults + ghosts must be between 0 and 1")
        self.faults = faults
        self.ghosts = ghosts
        self.stall_seconds = stall_seconds
        self.rate_limit_seconds = rate_limit_seconds
        self.enabled = True
        self.drawn: Counter[str] = Counter()  # fate -> requests ("ok" for served normally)
        self.drawn_deliveries: Counter[str] = Counter()  # fate -> deliveries those carried
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._on_wire = 0

    def draw(self, deliveries: int = 1) -> str | None:
        """The fate of the next request (carrying ``deliveries``): None, "ghost", or a KIND."""
        with self._lock:
            if not self.enabled:
                return None
            roll = self._random.random()
            if roll < self.ghosts:
                kind = "ghost"
            elif roll < self.ghosts + self.faults:
                kind = self._random.choice(KINDS)
            else:
                kind = None
            self.drawn[kind or "ok"] += 1
            self.drawn_deliveries[kind or "ok"] += deliveries
            return kind

    @property
    def on_wire(self) -> int:
        with self._lock:
            return self._on_wire

    def carry(self, deliveries: int) -> None:
        with self._lock:
            self._on_wire += deliveries

    @contextmanager
    def wire(self, connection=None):
        """While a request is handled: ``wire.carry(n)`` counts its n deliveries as on the wire.

        With ``connection`` (the server's handler of that connection) they stay on the
        wire until the client has had the answer, which a server learns when the client
        sends its next request on that connection or hangs up (:func:`answered`).
        """
        if connection is not None:
            answered(connection)
        request = _Request(self)
        if connection is not None:
            connection.handling = request
        try:
            yield request
        finally:
            if connection is None:
                self.carry(-request.carried)
            else:
                connection.on_wire = request


def unanswered(connection) -> None:
    """The answer to the request ``connection`` is handling could not be written: the client
    had gone (it timed out). Its deliveries are counted under ``drawn_deliveries["unanswered"]``:
    the client cannot know their fate, so they are in doubt by design, as a ghost's are."""
    request = getattr(connection, "handling", None)
    if request is not None:
        with request.mix._lock:
            request.mix.drawn_deliveries["unanswered"] += request.carried


def answered(connection) -> None:
    """The client spoke again on ``connection``, or hung up: its last request is off the wire."""
    request = getattr(connection, "on_wire", None)
    if request is not None:
        connection.on_wire = None
        request.mix.carry(-request.carried)


class _Request:
    def __init__(self, mix: FaultMix) -> None:
        self.mix = mix
        self.carried = 0

    def carry(self, deliveries: int) -> None:
        self.carried += deliveries
        self.mix.carry(deliveries)
