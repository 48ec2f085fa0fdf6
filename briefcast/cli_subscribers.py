"""``briefcast subscribers``: import, add, remove, list and export subscribers."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from briefcast import subscribers
from briefcast.config import ConfigFileError, load_settings
from briefcast.db import get_engine

app = typer.Typer(help="Manage the email subscriber list.", no_args_is_help=True)


def say(text: str) -> None:
    typer.echo(text)


def warn(text: str) -> None:
    typer.echo(text, err=True)


ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="Config file (TOML).")]
StatusOption = Annotated[
    str | None,
    typer.Option("--status", help=f"Only this status: {', '.join(subscribers.STATUSES)}."),
]


def _engine(config: Path | None):
    try:
        settings = load_settings(config)
    except ConfigFileError as exc:
        warn(f"error: {exc}")
        raise typer.Exit(2) from None
    return get_engine(settings.database_url)


def _check_status(status: str | None) -> None:
    if status is not None and status not in subscribers.STATUSES:
        warn(f"error: --status must be one of {', '.join(subscribers.STATUSES)}")
        raise typer.Exit(2)


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="CSV file: an email column, optionally a name.")],
    config: ConfigOption = None,
) -> None:
    """Import a CSV file: good rows are added, every other row is reported."""
    engine = _engine(config)
    try:
        report = subscribers.import_csv(engine, file)
    except UnicodeDecodeError as exc:
        # Excel's plain "CSV" is the Windows code page; nothing was imported.
        warn(
            f"error: {file} is not UTF-8 text (it has the byte {exc.object[exc.start]:#04x}); "
            'nothing was imported. Save it as "CSV UTF-8" and import it again.'
        )
        raise typer.Exit(2) from None
    except OSError as exc:
        warn(f"error: cannot read {file}: {exc}")
        raise typer.Exit(2) from None
    for row in report.bad:
        warn(f"{file}:{row.line}: bad address {row.value!r}: {row.reason}")
    for row in report.suppressed:
        warn(f"{file}:{row.line}: {row.address} not imported: {row.status}")
    say(
        f"{report.imported} imported, {len(report.duplicates)} duplicates skipped, "
        f"{len(report.suppressed)} suppressed (unsubscribed, bounced or complained), "
        f"{len(report.bad)} bad rows"
    )
    if report.bad:
        raise typer.Exit(1)


@app.command()
def add(
    address: Annotated[str, typer.Argument(help="Email address.")],
    name: Annotated[str, typer.Option(help="Subscriber's name.")] = "",
    config: ConfigOption = None,
) -> None:
    """Add one active subscriber (an unsubscribed address stays unsubscribed)."""
    engine = _engine(config)
    try:
        subscriber, created = subscribers.add(engine, address, name=name, source="cli")
    except subscribers.InvalidAddress as exc:
        warn(f"error: {address!r}: {exc}")
        raise typer.Exit(2) from None
    if created:
        say(f"added {subscriber.address}")
    elif subscriber.status in subscribers.SUPPRESSED:
        warn(f"{subscriber.address} is {subscriber.status}: not reactivated")
        raise typer.Exit(1)
    else:
        say(f"{subscriber.address} is already listed ({subscriber.status})")


@app.command()
def remove(
    address: Annotated[str, typer.Argument(help="Email address.")],
    config: ConfigOption = None,
) -> None:
    """Unsubscribe an address; it stays on file so it is never imported again."""
    engine = _engine(config)
    try:
        subscriber = subscribers.remove(engine, address, reason="removed with the CLI")
    except subscribers.InvalidAddress as exc:
        warn(f"error: {address!r}: {exc}")
        raise typer.Exit(2) from None
    say(f"{subscriber.address} unsubscribed")


@app.command("list")
def list_(status: StatusOption = None, config: ConfigOption = None) -> None:
    """List subscribers, tab-separated: address, name, status, source, created."""
    _check_status(status)
    engine = _engine(config)
    rows = subscribers.list_subscribers(engine, status)
    for s in rows:
        say(f"{s.address}\t{s.name}\t{s.status}\t{s.source}\t{s.created_at:%Y-%m-%d}")
    warn(f"{len(rows)} subscribers")


@app.command()
def export(
    file: Annotated[Path | None, typer.Argument(help="Output CSV (default: stdout).")] = None,
    status: StatusOption = None,
    raw: Annotated[
        bool,
        typer.Option(
            "--raw",
            help="Write every value exactly as stored, for programs; never open such a file "
            "in a spreadsheet.",
        ),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Export subscribers as CSV, every status and timestamp included.

    Safe to open in a spreadsheet: a name or address beginning with =, +, -, @, a tab or
    a carriage return is written with a leading ' so it shows as text instead of running
    as a formula (remove the ' before importing such a row again, or export with --raw).
    """
    _check_status(status)
    engine = _engine(config)
    if file is None:
        count = subscribers.export_csv(engine, sys.stdout, status, raw=raw)
    else:
        with file.open("w", newline="", encoding="utf-8") as handle:
            count = subscribers.export_csv(engine, handle, status, raw=raw)
    warn(f"{count} subscribers exported")
