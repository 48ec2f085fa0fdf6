"""``briefcast ledger list``, ``resolve`` and ``reconcile``: see and settle deliveries in bulk."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from briefcast import settle
from briefcast.config import ConfigFileError, Settings, load_settings

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="Config file (TOML).")]
DateOption = Annotated[
    str | None, typer.Option("--date", help="Edition date YYYY-MM-DD (default: today, local).")
]
TABLE_WIDTHS = {"target": 40, "channel": 10, "state": 9, "run_id": 32, "attempts": 8}


def say(text: str) -> None:
    typer.echo(text)


def fail(text: str, status: int = 2) -> typer.Exit:
    typer.echo(f"error: {text}")
    return typer.Exit(status)


def _settings(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigFileError as exc:
        raise fail(str(exc)) from None


def _edition(settings: Settings, value: str | None) -> str:
    from briefcast import pipeline

    if value is None:
        return pipeline.today_in(settings).isoformat()
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise fail(f"--date {value!r} is not a date (YYYY-MM-DD)") from None


def _engine(settings: Settings):
    from briefcast.db import get_engine

    return get_engine(settings.database_url)


# -- list -------------------------------------------------------------------------
def _table(rows: Iterator[dict]) -> Iterator[str]:
    """Fixed-width lines, streamed: a listing of 100,000 rows never sits in memory."""
    header = [f"{name:<{width}}" for name, width in TABLE_WIDTHS.items()]
    yield " ".join([*header, f"{'updated':<25}", "error"]).rstrip()
    for row in rows:
        cells = [f"{str(row[name]):<{width}}" for name, width in TABLE_WIDTHS.items()]
        error = " ".join(row["error"].split())  # one line per row, whatever the provider said
        yield " ".join([*cells, f"{row['updated']:<25}", error]).rstrip()


def list_(
    config: ConfigOption = None,
    edition_date: DateOption = None,
    channel: Annotated[str | None, typer.Option(help="Only this channel.")] = None,
    state: Annotated[
        str | None,
        typer.Option(help=f"Only this state: {', '.join(settle.STATE_NAMES)}."),
    ] = None,
    run: Annotated[
        str | None,
        typer.Option("--run", help="Only this run's rows (of every edition unless --date)."),
    ] = None,
    output: Annotated[
        str, typer.Option("--format", help="table, csv or json (an array of objects).")
    ] = "table",
) -> None:
    """List an edition's deliveries one per line: target, channel, state, run, attempts, error."""
    if output not in {"table", "csv", "json"}:
        raise fail("--format must be table, csv or json")
    try:
        ledger_state = settle.state_name(state) if state else None
    except ValueError as exc:
        raise fail(f"--state: {exc}") from None
    settings = _settings(config)
    edition_id = None if run and edition_date is None else _edition(settings, edition_date)
    where = settle.RowFilter(edition_id, channel=channel, run_id=run)
    rows = settle.list_rows(_engine(settings), where, ledger_state)
    if output == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=settle.LIST_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    elif output == "json":
        sys.stdout.write("[")
        for n, row in enumerate(rows):
            sys.stdout.write(("," if n else "") + "\n" + json.dumps(row, ensure_ascii=False))
        sys.stdout.write("\n]\n")
    else:
        for line in _table(rows):
            say(line)


# -- resolve ----------------------------------------------------------------------
def _targets_from(path: str) -> tuple[str, ...]:
    if path == "-":
        return tuple(settle.read_targets(sys.stdin))
    try:
        with open(path, encoding="utf-8") as handle:
            return tuple(settle.read_targets(handle))
    except OSError as exc:
        raise fail(f"--targets-file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise fail(f"--targets-file {path}: not UTF-8 text") from None


def _some(targets: list[str], total: int) -> str:
    more = f" and {total - len(targets)} more" if total > len(targets) else ""
    return ", ".join(targets) + more


def resolve(
    channel: Annotated[str, typer.Argument(help="Channel name.")],
    outcome: Annotated[str, typer.Argument(help="'sent' (it arrived) or 'resend'.")],
    config: ConfigOption = None,
    edition_date: DateOption = None,
    target: Annotated[str | None, typer.Option(help="One target; default: all in doubt.")] = None,
    targets_file: Annotated[
        str | None,
        typer.Option(
            "--targets-file",
            help="A file of targets, one per line (or the CSV of `ledger list --format csv`); "
            "'-' reads them from standard input.",
        ),
    ] = None,
    run: Annotated[
        str | None,
        typer.Option(
            "--run",
            help="Only the rows this run left in doubt (of every edition unless --date is given).",
        ),
    ] = None,
    receipt: Annotated[
        str | None,
        typer.Option(
            help="With 'sent' and --target: the provider's id for it (the X post id, so the "
            "rest of the thread replies to it)."
        ),
    ] = None,
) -> None:
    """Settle deliveries left in doubt: one, a list of them, a run's or a channel's."""
    if outcome not in {"sent", "resend"}:
        raise fail("outcome must be 'sent' or 'resend'")
    if receipt is not None and (outcome != "sent" or not target or not receipt.strip()):
        raise fail("--receipt goes with 'sent' and one --target")
    if target and targets_file:
        raise fail("give --target or --targets-file, not both")
    settings = _settings(config)
    edition_id = None if run and edition_date is None else _edition(settings, edition_date)
    targets = (target,) if target else _targets_from(targets_file) if targets_file else None
    if targets == ():
        raise fail(f"--targets-file {targets_file}: no targets in it")
    where = settle.RowFilter(edition_id, channel=channel, run_id=run, targets=targets)
    from briefcast.ledger import RunStillLive

    try:
        done = settle.settle(
            _engine(settings), where, as_sent=outcome == "sent", receipt=receipt and receipt.strip()
        )
    except RunStillLive as exc:
        say(f"Refused: {exc}")
        raise typer.Exit(1) from None
    scope = f"edition {edition_id}" if edition_id else f"run {run}"
    if edition_id and run:
        scope += f" (run {run})"
    if done.not_matched and targets and len(targets) > 1:
        say(
            f"{done.not_matched} of the {len(targets)} targets were not in doubt on {channel} "
            f"in {scope} and were left as they are: "
            f"{_some(done.not_matched_sample, done.not_matched)}."
        )
    if not done.count:
        which = f"{channel} {target}" if target else channel
        hint = edition_id or "YYYY-MM-DD"
        say(
            f"Nothing in doubt for {which} in {scope}; "
            f"`briefcast ledger status --date {hint}` shows its deliveries by channel."
        )
        raise typer.Exit(1)
    say(
        f"{done.count} in-doubt deliveries marked {outcome} on {channel} in {scope}: "
        f"{_some(done.targets, done.count)}."
    )


# -- reconcile --------------------------------------------------------------------
def reconcile(
    config: ConfigOption = None,
    edition_date: DateOption = None,
    channel: Annotated[str | None, typer.Option(help="Only this channel.")] = None,
) -> None:
    """Ask the providers that let us look whether deliveries in doubt arrived; settle those."""
    from briefcast import reconcile as checks

    settings = _settings(config)
    edition_id = _edition(settings, edition_date)
    if channel is not None and channel not in settings.channels:
        raise fail(f"unknown channel {channel!r}; configured: {sorted(settings.channels)}")
    results = checks.reconcile_edition(settings, edition_id, [channel] if channel else None)
    if not results:
        say(f"Nothing in doubt in edition {edition_id}.")
        return
    for result in results:
        say(result.line())
    if any(r.left for r in results):
        say(
            "Still in doubt: check with the provider, then settle them with "
            f"`briefcast ledger resolve CHANNEL sent|resend --date {edition_id}` "
            "(see “When something is in doubt” in docs/operating.md)."
        )
        raise typer.Exit(1)
