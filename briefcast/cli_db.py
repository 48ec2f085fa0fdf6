"""``briefcast db``: the database's schema revision, upgrading it, writing a migration."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from briefcast import schema
from briefcast.config import ConfigFileError, load_settings

app = typer.Typer(help="The database schema: status and upgrades.", no_args_is_help=True)
ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="Config file (TOML).")]


def _fail(message: str, status: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(status)


@app.command("status")
def status(config: ConfigOption = None) -> None:
    """Show the database's schema revision and this release's newest; exit 1 if behind."""
    try:
        engine = schema.plain_engine(load_settings(config).database_url)
        with engine.connect() as connection:
            found = schema.state(connection)
    except ConfigFileError as exc:
        raise _fail(str(exc)) from None
    where = schema.describe(engine)
    engine.dispose()
    if found.up_to_date:
        typer.echo(f"{where}: schema {found.current}, the newest.")
        return
    typer.echo(
        f"{where}: schema {found.described}, newest {found.head}: run `briefcast db upgrade` "
        "(any other briefcast command also upgrades it first)."
    )
    raise typer.Exit(1)


def _state(url: str) -> schema.SchemaState | None:
    """The schema as found, or None where no database file exists yet."""
    try:
        engine = schema.plain_engine(url)
    except schema.SchemaError:
        return None
    try:
        with engine.connect() as connection:
            return schema.state(connection)
    finally:
        engine.dispose()


@app.command("upgrade")
def upgrade(config: ConfigOption = None) -> None:
    """Upgrade the database to this release's schema (creating it if needed)."""
    from briefcast.db import get_engine

    try:
        url = load_settings(config).database_url
        found = _state(url)
        engine = get_engine(url)  # creates or upgrades it, as every command does
    except ConfigFileError as exc:
        raise _fail(str(exc)) from None
    where = schema.describe(engine)
    if found is None:
        typer.echo(f"{where}: tables created at schema {schema.head()}.")
    elif found.up_to_date:
        typer.echo(f"{where}: schema {found.head}, already the newest.")
    elif found.current is None and not found.legacy:
        typer.echo(f"{where}: tables created at schema {found.head}.")
    else:
        typer.echo(f"{where}: upgraded from schema {found.described} to {found.head}.")


@app.command("revision", hidden=True)
def revision(
    message: Annotated[str, typer.Option("--message", "-m", help="What the change is.")],
) -> None:
    """For developers: write the next migration from the difference between tables and schema."""
    path = schema.new_revision(message)
    typer.echo(f"wrote {path}: read it, then commit it with the table change")
