"""A graceful stop: SIGTERM (a Prefect cancel, a supervisor) ends dispatch cleanly.

While the flow sends, SIGTERM sets ``STOP`` instead of killing the process:
every dispatcher stops claiming, lets the requests on the wire finish and
records them, and gives back what was waiting for a retry. The run then ends
normally with reports that say it was stopped (``briefcast run`` prints them
and exits 1; the flow run fails with them), rather than crashing with
nothing recorded about it. kill -9 stays the only way to leave rows in doubt.
"""

from __future__ import annotations

import logging
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
        signal.signal(signal.SIGTERM, previous)  # a second SIGTERM from now on stops at once
        STOP.clear()
        if received:
            log.warning("stopped by SIGTERM: what was on the wire is recorded; run again")
