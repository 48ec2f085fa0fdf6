"""Database engine and the shared table metadata (SQLite by default, PostgreSQL by URL)."""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import weakref
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event

from briefcast.tables import metadata

__all__ = ["get_engine", "metadata", "one_writer", "reader_engine", "relaxed"]

_writers: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_writers_lock = threading.Lock()


def one_writer(engine: Engine) -> contextlib.AbstractContextManager:
    """Hold while writing to a SQLite database from one of several threads.

    SQLite lets one writer in at a time and puts the others to sleep in its busy
    handler (1 ms, then 2, 5, 10...), which costs more than the write; threads of
    one process queue on a lock instead. PostgreSQL locks rows, not the database.
    """
    if engine.dialect.name != "sqlite":
        return contextlib.nullcontext()
    with _writers_lock:
        return _writers.setdefault(engine, threading.Lock())


def _private_sqlite_file(name: str) -> None:
    """Subscriber addresses live here: create the file for its owner only (SQLite gives its
    -wal and -shm files the same mode), and take other users' access off an existing one."""
    if name in ("", ":memory:") or name.startswith("file:"):
        return
    try:
        os.close(os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        mode = os.stat(name).st_mode
        if mode & 0o007:
            with contextlib.suppress(PermissionError):  # someone else's file: theirs to fix
                os.chmod(name, stat.S_IMODE(mode) & ~0o007)


_relaxed: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def relaxed(engine: Engine) -> Engine:
    """For writes that may wait for the next disk flush: on SQLite, a second engine on
    the same file whose commits do not flush (``synchronous=NORMAL``); else ``engine``.

    In WAL mode a later flushing commit carries them to disk, and a kill loses none of
    them. Switching one connection back and forth cost four statements a transaction.
    """
    if engine.dialect.name != "sqlite":
        return engine
    with _writers_lock:
        found = _relaxed.get(engine)
        if found is None:
            found = _relaxed[engine] = _sqlite_engine(engine.url, synchronous="NORMAL")
        return found


def _sqlite_engine(url, *, synchronous: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(conn, _record) -> None:  # WAL: readers never block the writer
        cur = conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.close()

    return engine


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        _private_sqlite_file(url.removeprefix("sqlite:///"))
        engine = _sqlite_engine(url, synchronous="FULL")
    else:
        engine = create_engine(url, pool_pre_ping=True)
    from briefcast import schema

    schema.upgrade(engine)  # a fresh database gets its tables; an older one is migrated
    return engine


def reader_engine(url: str) -> Engine:
    """An engine that reads a database ``get_engine`` has set up (in another process):
    no migration check."""
    if url.startswith("sqlite:"):
        return _sqlite_engine(url, synchronous="NORMAL")
    return create_engine(url)
