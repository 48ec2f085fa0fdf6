"""Schema migrations: a database made before migrations keeps its data and is upgraded in place;
the migrations build exactly the tables the code defines; a newer database is refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from briefcast import schema, subscribers
from briefcast.cli import app
from briefcast.db import get_engine, metadata
from briefcast.ledger import Ledger

FIXTURES = Path(__file__).parent / "fixtures"

# Rows as a briefcast from before migrations wrote them: a sent delivery and a subscriber.
OLD_ROWS = [
    "INSERT INTO deliveries (edition_id, channel, target, seq, state, attempts, receipt,"
    " retryable, created_at, updated_at) VALUES ('2026-11-20', 'x', 'post-1', 0, 'sent', 1,"
    " '1861234567890123456', false, '2026-11-21 06:00:00+00', '2026-11-21 06:00:01+00')",
    "INSERT INTO edition_contents (edition_id, content, recorded_at)"
    " VALUES ('2026-11-20', '{}', '2026-11-21 06:00:00+00')",
    "INSERT INTO subscribers (address, address_key, name, status, source, created_at,"
    " updated_at) VALUES ('Ana@Example.org', 'ana@example.org', 'Ana', 'active', 'import',"
    " '2026-11-01 09:00:00+00', '2026-11-01 09:00:00+00')",
]


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'briefcast.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    return request.getfixturevalue("postgres_url")


def dialect_of(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


def make_database_from_before_migrations(url: str) -> None:
    ddl = (FIXTURES / f"schema-before-migrations.{dialect_of(url)}.sql").read_text()
    engine = schema.plain_engine(url, create=True)
    with engine.begin() as conn:
        for statement in ddl.split(";"):
            if "CREATE TABLE" in statement:
                conn.exec_driver_sql(statement)
        for row in OLD_ROWS:
            conn.exec_driver_sql(row)
    engine.dispose()


def test_a_database_from_before_migrations_keeps_its_data_and_is_upgraded(database_url):
    make_database_from_before_migrations(database_url)

    engine = get_engine(database_url)

    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == schema.head()
    assert Ledger(engine).summary("2026-11-20")["x"]["sent"] == 1
    assert Ledger(engine).rows("2026-11-20", "x")["post-1"].receipt == "1861234567890123456"
    kept = subscribers.get(engine, "ana@example.org")
    assert kept is not None and kept.status == "active" and kept.name == "Ana"
    # The upgraded database takes new rows as a fresh one does.
    subscribers.add(engine, "bo@example.org", name="Bo")
    assert subscribers.get(engine, "bo@example.org") is not None


def test_the_migrations_build_exactly_the_tables_the_code_defines(database_url):
    """A table or column added to the code without its migration fails here."""
    engine = schema.plain_engine(database_url, create=True)
    schema.import_table_modules()
    with engine.begin() as conn:
        command.upgrade(schema.alembic_config(conn), "head")
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert differences == [], "write the migration: briefcast db revision -m '...'"


def test_a_database_upgraded_by_a_newer_briefcast_is_refused(tmp_path):
    url = sqlite_url(tmp_path)
    get_engine(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()

    with pytest.raises(schema.SchemaError, match="revision 9999.*Upgrade briefcast"):
        get_engine.__wrapped__(url)


def test_db_status_and_upgrade_tell_the_operator_where_the_database_stands(tmp_path):
    config = tmp_path / "briefcast.toml"
    config.write_text(
        'data_dir = "data"\n[publication]\nname = "The Test Gazette"\n'
        'site_url = "https://gazette.example"\npostal_address = "1 Main St"\n'
        'sender_email = "brief@gazette.example"\n'
    )
    make_database_from_before_migrations(f"sqlite:///{tmp_path / 'data' / 'briefcast.db'}")
    runner = CliRunner()

    before = runner.invoke(app, ["db", "status", "--config", str(config)])
    upgrade = runner.invoke(app, ["db", "upgrade", "--config", str(config)])
    after = runner.invoke(app, ["db", "status", "--config", str(config)])

    assert before.exit_code == 1, before.output
    assert "0001 (made before migrations)" in before.output
    assert "briefcast db upgrade" in before.output
    assert upgrade.exit_code == 0, upgrade.output
    assert f"upgraded from schema 0001 (made before migrations) to {schema.head()}" in (
        upgrade.output
    )
    assert after.exit_code == 0 and "the newest" in after.output


@pytest.mark.slow  # starts three Python processes
def test_processes_starting_together_upgrade_an_old_database_once(database_url):
    make_database_from_before_migrations(database_url)
    code = "import sys; from briefcast.db import get_engine; get_engine(sys.argv[1])"
    starts = [
        subprocess.Popen(
            [sys.executable, "-c", code, database_url], stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    errors = [process.communicate(timeout=120)[1] for process in starts]

    assert [process.returncode for process in starts] == [0, 0, 0], errors
    assert sum("upgraded from schema 0001" in error for error in errors) == 1, errors
    engine = schema.plain_engine(database_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [
            (schema.head(),)
        ]
        assert conn.execute(text("SELECT count(*) FROM subscribers")).scalar() == 1
    engine.dispose()


def test_postgresql_delivery_pages_keep_room_for_the_rows_updates(postgres_url):
    """A claim and a record rewrite each delivery row; with room on its page, PostgreSQL
    updates it without touching the indexes. An older database gets the room too."""
    make_database_from_before_migrations(postgres_url)
    engine = get_engine(postgres_url)  # migrates
    with engine.connect() as conn:
        options = conn.scalar(
            text("SELECT reloptions FROM pg_class WHERE oid = 'deliveries'::regclass")
        )
    assert "fillfactor=50" in options
