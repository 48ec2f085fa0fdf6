"""What the dispatcher and the adapters log reaches the run's logs in the Prefect UI.

``briefcast`` and ``channels`` log with the standard library (they know nothing of
Prefect). :func:`forward_to_runs` gives those loggers Prefect's API log handler, active
only inside a run, so a retry, a provider's wait or a warning shows under the flow or
task run that logged it, not only on the serving console. :class:`ProgressArtifact` turns the
dispatcher's progress callbacks into a progress artifact per channel.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Iterator

from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.context import FlowRunContext, TaskRunContext
from prefect.logging.handlers import APILogHandler

FORWARDED = ("briefcast", "channels")
PROGRESS_LOGGER = "briefcast.progress"


class _NotProgress(logging.Filter):
    """Per-batch progress lines go to the progress artifact, not to the run's logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(PROGRESS_LOGGER)


class RunLogHandler(APILogHandler):
    """Prefect's API log handler for records logged inside a flow or task run only.

    Outside a run (the CLI's other commands, ``briefcast web``) records are left to the
    other handlers instead of drawing Prefect's "no flow run" warning.
    """

    def emit(self, record: logging.LogRecord) -> None:
        if FlowRunContext.get() is None and TaskRunContext.get() is None:
            return
        super().emit(record)


def forward_to_runs() -> None:
    """Send the ``briefcast`` and ``channels`` loggers' records to the logs of the run that
    logs them (once per process; idempotent).

    At the loggers' own level (warnings by default: retries, waits, held-back deliveries,
    non-https links); the flow logs its own steps through Prefect's run logger.
    """
    for name in FORWARDED:
        logger = logging.getLogger(name)
        if any(isinstance(h, APILogHandler) for h in logger.handlers):
            continue  # done, or PREFECT_LOGGING_EXTRA_LOGGERS already forwards it
        handler = RunLogHandler()
        handler.addFilter(_NotProgress())
        logger.addHandler(handler)


def _artifact_key(channel: str, test_send: bool) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", channel.lower()).strip("-") or "channel"
    return f"{'test-copy' if test_send else 'delivery'}-progress-{slug}"


class ProgressArtifact(logging.Handler):
    """A progress artifact for one channel, updated from the dispatcher's progress records.

    Updates are throttled (one API call per ``every`` seconds, plus the last one): an
    adapter sending one message per batch reports after every message.
    """

    def __init__(self, channel: str, *, test_send: bool, every: float = 2.0) -> None:
        super().__init__()
        self.channel = channel
        self.test_send = test_send
        self.every = every
        self.artifact_id = None
        self.last_update = 0.0
        self.last_percent = -1.0

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "channel", None) != self.channel:
            return  # another channel's task, running side by side
        done, total = record.done, record.total
        percent = 100.0 if not total else round(100.0 * done / total, 1)
        now = time.monotonic()
        final = done >= total
        if self.artifact_id is not None and not final and now - self.last_update < self.every:
            return
        if percent == self.last_percent:
            return
        try:
            if self.artifact_id is None:
                what = "[TEST] copy" if self.test_send else "Delivery"
                self.artifact_id = create_progress_artifact(
                    percent,
                    key=_artifact_key(self.channel, self.test_send),
                    description=f"{what} progress on {self.channel} ({total} deliveries).",
                )
            else:
                update_progress_artifact(self.artifact_id, percent)
        except Exception:  # noqa: BLE001 - the UI's progress bar never stops a delivery
            logging.getLogger("briefcast").debug("progress artifact not updated", exc_info=True)
            return
        self.last_update, self.last_percent = now, percent


_listening = threading.Lock()
_listeners = 0
_saved: tuple[int, bool] = (logging.NOTSET, True)


@contextlib.contextmanager
def progress_artifact(channel: str, *, test_send: bool) -> Iterator[None]:
    """While one channel is dispatched, its progress goes to an artifact of the task run.

    The progress logger is turned up to INFO (and kept off the console) while any
    channel listens; dispatch tasks run side by side, so the last one out restores it.
    """
    global _listeners, _saved
    logger = logging.getLogger(PROGRESS_LOGGER)
    handler = ProgressArtifact(channel, test_send=test_send)
    with _listening:
        if _listeners == 0:
            _saved = (logger.level, logger.propagate)
            if logger.getEffectiveLevel() > logging.INFO:
                logger.setLevel(logging.INFO)
            logger.propagate = False
        _listeners += 1
        logger.addHandler(handler)
    try:
        yield
    finally:
        with _listening:
            logger.removeHandler(handler)
            _listeners -= 1
            if _listeners == 0:
                logger.setLevel(_saved[0])
                logger.propagate = _saved[1]
