"""Bring a database to this release's schema with Alembic (migrations in briefcast/migrations).

``get_engine`` calls :func:`upgrade` once per process and URL, so a fresh database and
one made by an older briefcast just work: a fresh one gets every table at once and is
stamped at the newest revision; a database created before migrations existed (the
tables, no ``alembic_version``) is stamped at the baseline, 0001, and upgraded from
there; one at an older revision is upgraded. A database at a revision this release
does not know (a newer briefcast upgraded it) is refused with :class:`SchemaError`.

The check and the upgrade run in one transaction holding a lock (PostgreSQL: an
advisory lock; SQLite: BEGIN IMMEDIATE), so two processes starting together upgrade
once.
"""

from __future__ import annotations

import importlib
import logging
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, inspect, text

from briefcast.config import ConfigFileError
from briefcast.db import metadata

log = logging.getLogger("briefcast.schema")

# Modules whose import adds tables to briefcast.db.metadata. A new one goes here.
TABLE_MODULES = ("briefcast.tables",)
BASELINE = "0001"
BASELINE_TABLES = ("deliveries", "edition_stories", "edition_contents", "subscribers")
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
PG_LOCK_KEY = 0x62726663  # "brfc": the advisory lock every briefcast process agrees on


class SchemaError(ConfigFileError):
    """The database's schema cannot be brought to this release's. The message says why.

    A setup error like a bad config (exit 2), so every command already reports it in one line.
    """


@dataclass(frozen=True)
class SchemaState:
    current: str | None  # None: no alembic_version table (fresh, or made before migrations)
    head: str
    legacy: bool  # briefcast's tables exist but no revision is recorded

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head

    @property
    def described(self) -> str:
        if self.current:
            return self.current
        return f"{BASELINE} (made before migrations)" if self.legacy else "none (no tables)"


def import_table_modules() -> None:
    for name in TABLE_MODULES:
        importlib.import_module(name)


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    config.attributes["connection"] = connection
    return config


@lru_cache(maxsize=1)
def scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    heads = scripts().get_heads()
    if len(heads) != 1:
        raise SchemaError(
            f"the migrations in {MIGRATIONS / 'versions'} have {len(heads)} heads "
            f"({', '.join(sorted(heads))}): give the newest down_revision the other's id"
        )
    return heads[0]


def state(connection: Connection) -> SchemaState:
    current = MigrationContext.configure(connection).get_current_revision()
    legacy = current is None and any(inspect(connection).has_table(t) for t in BASELINE_TABLES)
    return SchemaState(current=current, head=head(), legacy=legacy)


def plain_engine(url: str, create: bool = False) -> Engine:
    """An engine that leaves the schema alone (get_engine upgrades it): to look, or to
    build a database from the migrations alone (tests, `briefcast db revision`)."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        file = Path(url.removeprefix("sqlite:///"))
        if create:
            file.parent.mkdir(parents=True, exist_ok=True)
        elif not file.exists():
            raise SchemaError(f"{file}: no database yet (`briefcast db upgrade` creates it)")
        return create_engine(url, connect_args={"timeout": 30})
    return create_engine(url)


def describe(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def upgrade(engine: Engine) -> SchemaState:
    """Bring the database to the newest revision; return the state it was found in."""
    with engine.connect() as connection:
        found = state(connection)
    if found.up_to_date:
        return found
    refuse_unknown(engine, found)
    with engine.begin() as connection:
        _lock(connection)
        found = state(connection)  # again: another process may have upgraded meanwhile
        if found.up_to_date:
            return found
        refuse_unknown(engine, found)
        config = alembic_config(connection)
        if found.current is None and not found.legacy:
            import_table_modules()
            metadata.create_all(connection)
            command.stamp(config, found.head)
            return found
        if found.legacy:
            command.stamp(config, BASELINE)
        command.upgrade(config, found.head)
    log.warning("database %s upgraded from schema %s", describe(engine), found.described)
    return found


def refuse_unknown(engine: Engine, found: SchemaState) -> None:
    if found.current is None or found.up_to_date:
        return
    try:
        scripts().get_revision(found.current)
    except Exception:  # alembic raises several kinds for an unknown id
        raise SchemaError(
            f"database {describe(engine)} is at schema revision {found.current}, which this "
            f"briefcast does not know (its newest is {found.head}): a newer briefcast upgraded "
            "it. Upgrade briefcast (pip install -U briefcast) instead of downgrading the database."
        ) from None


def _lock(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
    elif connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def new_revision(message: str, versions: Path | None = None) -> Path:
    """Write the next migration, its operations generated from the tables' difference.

    The tables are compared with a temporary SQLite database at the newest revision,
    so the file needs reading (and, for SQLite, batch operations are already used).
    """
    number = f"{int(head()) + 1:04d}"
    folder = versions or MIGRATIONS / "versions"
    import_table_modules()
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{tmp}/head.db")
        try:
            with engine.begin() as connection:
                config = alembic_config(connection)
                command.upgrade(config, "head")
                config.set_main_option("version_locations", str(folder))
                script = command.revision(
                    config, message, autogenerate=True, rev_id=number, head="head"
                )
        finally:
            engine.dispose()
    scripts.cache_clear()
    path = Path(script.path)
    if shutil.which("ruff"):  # a developer's checkout: the file as ruff wants it
        subprocess.run(["ruff", "format", "-q", str(path)], check=False)
    return path
