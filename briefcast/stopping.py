"""A graceful stop: SIGTERM (a Prefect cancel, a supervisor) ends dispatch cleanly.

While the flow sends, SIGTERM sets ``STOP`` instead of killing the process:
every dispatcher stops claiming, lets the requests on the wire finish and
records them, and gives back what was waiting for a retry. Then the handler
that was there before (Prefect's, which ends the run as cancelled or crashed)
gets the signal. kill -9 stays the only way to leave rows in doubt.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("briefcast.stopping")

STOP = threading.Event()


@contextmanager
def graceful_sigterm() -> Iterator[None]:
    """Within this block SIGTERM sets STOP; afterwards it is passed on. Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    STOP.clear()
    received: list[int] = []

    def on_sigterm(signum, _frame) -> None:
        if not received:
            log.warning(
                "SIGTERM: no new deliveries are claimed; the requests on the wire finish "
                "and are recorded, then the run stops"
            )
        received.append(signum)
        STOP.set()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        STOP.clear()
        if received:
            if callable(previous):
                previous(signal.SIGTERM, None)
            elif previous == signal.SIG_DFL:
                os.kill(os.getpid(), signal.SIGTERM)
