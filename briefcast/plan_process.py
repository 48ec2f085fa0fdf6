"""Plan a big mailing list's deliveries in a second process, streamed back in pages.

A send at a million recipients is bound by one interpreter's lock: reading the
subscribers, signing their links and encoding their personalizations took as much
CPU as the requests, claims and receipts together, on the same core. A second
process does that part on the other core and hands the deliveries over a pipe a
page at a time; the pipe's buffer keeps it at most a page or two ahead, so memory
stays flat.

The producer is a picklable callable returning an iterable (a bound method of a
small dataclass, say). It starts in a fresh interpreter (``spawn``: the sending
process has threads, which ``fork`` would copy half-way), so whatever it reads it
opens itself. Its log records are logged again here; an error there is raised
here, with its message.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import logging
import multiprocessing
from collections.abc import Callable, Iterable, Iterator

PAGE = 1000  # items a message: about as many as one request carries
PIPE_BYTES = 1 << 20  # a page or two in the pipe: its default 64 KiB took eight hand-overs

_SPAWN = multiprocessing.get_context("spawn")


class PlanProcessError(RuntimeError):
    """The planning process failed or ended without finishing its plan."""


def in_second_process(produce: Callable[[], Iterable], page: int = PAGE) -> Iterator:
    """Yield what ``produce()`` yields, made in a second process.

    Closing the iterator early (a stop) ends the process.
    """
    receiver, sender = _SPAWN.Pipe(duplex=False)
    _widen(receiver)
    process = _SPAWN.Process(
        target=_produce_into, args=(produce, sender, page), name="briefcast-plan", daemon=True
    )
    process.start()
    sender.close()  # ours: the pipe reports the end when the child's copy closes
    try:
        while True:
            try:
                kind, value = receiver.recv()
            except EOFError:
                process.join()
                raise PlanProcessError(
                    f"the planning process ended before its plan was done (exit {process.exitcode})"
                ) from None
            if kind == "items":
                yield from value
            elif kind == "log":
                name, level, message = value
                logging.getLogger(name).log(level, "%s", message)
            elif kind == "error":
                raise PlanProcessError(f"planning failed in the second process: {value}")
            else:
                return
    finally:
        receiver.close()
        if process.is_alive():
            process.terminate()
        process.join()


def _widen(pipe) -> None:
    """Let a page through the pipe at once (Linux; elsewhere, or past the system's
    limit, the pipe keeps its size). A page written in 64 KiB pieces went back and
    forth between the two processes, each waiting for the other to be scheduled."""
    with contextlib.suppress(AttributeError, OSError):  # AttributeError: not Linux
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)


class _ToParent(logging.Handler):
    def __init__(self, send: Callable[[object], None]) -> None:
        super().__init__(logging.INFO)
        self.send = send

    def emit(self, record: logging.LogRecord) -> None:
        self.send(("log", (record.name, record.levelno, record.getMessage())))


def _produce_into(produce: Callable[[], Iterable], sender, page: int) -> None:
    root = logging.getLogger()
    root.addHandler(_ToParent(sender.send))
    root.setLevel(logging.INFO)
    try:
        items = iter(produce())
        while chunk := list(itertools.islice(items, page)):
            sender.send(("items", chunk))
        sender.send(("end", None))
    except BrokenPipeError:
        pass  # the parent stopped reading: it has what it wanted
    except Exception as exc:  # handed to the parent, which raises it there
        sender.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        sender.close()
