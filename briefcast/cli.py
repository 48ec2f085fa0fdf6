"""The ``briefcast`` command line."""

from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from briefcast import (
    cli_db,
    cli_doctor,
    cli_init,
    cli_ledger,
    cli_report,
    cli_subscribers,
    cli_web,
    embedded_prefect,
)
from briefcast.config import ConfigFileError, Settings, load_settings

app = typer.Typer(
    help="Turn a day of articles into a daily brief for email, X and Telegram.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
ledger_app = typer.Typer(help="Inspect and settle the delivery ledger.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")
console = Console(soft_wrap=True)  # an error or a note stays one line in logs and mail

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="Config file (TOML).")]
DateOption = Annotated[
    str | None, typer.Option("--date", help="Edition date YYYY-MM-DD (default: today, local).")
]


NOTHING_TO_PUBLISH = 3  # exit status of run and preview on a day without articles


def _settings(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigFileError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None


def _date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        console.print(f"[red]error:[/red] --date {escape(repr(value))} is not a date (YYYY-MM-DD)")
        raise typer.Exit(2) from None


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


class _ProgressHandler(logging.Handler):
    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress
        self.tasks: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        channel = getattr(record, "channel", None)
        if channel is None:
            return
        if channel not in self.tasks:
            self.tasks[channel] = self.progress.add_task(channel, total=record.total)
        self.progress.update(self.tasks[channel], completed=record.done, total=record.total)


def print_problems(problems: list[dict]) -> None:
    """One line per skipped source or entry; their text is shown as it is, never as markup."""
    for problem in problems:
        entry = f" ({problem['entry']})" if problem.get("entry") else ""
        console.print(
            f"[yellow]skipped[/yellow] {escape(problem['source'] + entry)}: "
            f"{escape(problem['reason'])}",
            highlight=False,
        )


def resolve_hint(result: dict, config: Path | None) -> str:
    """The next step for deliveries a stopped run left in flight."""
    doubtful = [row for row in result["channels"] if row["in doubt"]]
    if not doubtful:
        return ""
    counts = ", ".join(f"{row['in doubt']} on {row['channel']}" for row in doubtful)
    options = f" --date {result['edition_date']}" + (f" --config {config}" if config else "")
    channel = doubtful[0]["channel"] if len(doubtful) == 1 else "CHANNEL"
    return (
        f"In doubt: {counts}. Their request went out and no answer was recorded (the reasons "
        "above say why), so they may have arrived; they are never resent blindly. "
        f"`briefcast ledger reconcile{options}` settles those the provider can confirm; "
        "check the rest with the provider, "
        f"then settle them: `briefcast ledger resolve {channel} sent{options}` if they arrived, "
        f"or `briefcast ledger resolve {channel} resend{options}` to send them on the next run "
        "(add --target for one delivery, --targets-file for a list; "
        f"`briefcast ledger list --state in-doubt{options}` lists them)."
    )


def print_summary(result: dict, config: Path | None = None) -> None:
    console.print(
        f"Edition [bold]{escape(result['edition_id'])}[/bold]: {result['articles']} articles",
        highlight=False,
    )
    print_problems(result["problems"])
    for channel, problem in result.get("channel_problems", {}).items():
        console.print(
            f"[red]channel {escape(channel)}[/red] {escape(problem)}",
            highlight=False,
        )
    if result.get("nothing_to_publish"):
        console.print(f"[yellow]{escape(result['nothing_to_publish'])}[/yellow]", highlight=False)
    elif result.get("dry_run"):
        console.print(
            f"Dry run: nothing sent. Preview: {escape(result['preview'])}", highlight=False
        )
    if not result["channels"]:
        return
    table = Table(title="Deliveries")
    for column in ("channel", "delivered", "skipped", "failed", "in doubt", "held back"):
        table.add_column(column, justify="left" if column == "channel" else "right")
    for row in result["channels"]:
        table.add_row(
            *(
                str(row[c])
                for c in ("channel", "delivered", "skipped", "failed", "in doubt", "held back")
            )
        )
    console.print(table)
    for row in result["channels"]:
        if row["reasons"]:
            colour = "red" if row["failed"] or row["in doubt"] else "yellow"  # skipped, held
            console.print(
                f"[{colour}]{escape(row['channel'])}[/{colour}]: {escape(row['reasons'])}",
                highlight=False,
            )
    hint = resolve_hint(result, config)
    if hint:
        console.print(escape(hint), highlight=False)


def _import_what_the_flow_needs() -> None:
    """The gatherers and the renderers (feedparser, twitter-text's patterns, MJML), and
    FastAPI's encoder Prefect serializes a flow run's parameters with: a second of imports
    the flow would make once Prefect's server answers."""
    import fastapi.encoders  # noqa: F401

    import briefcast.gather
    import briefcast.render.edition  # noqa: F401


@app.command()
def run(
    config: ConfigOption = None,
    edition_date: DateOption = None,
    channels: Annotated[str | None, typer.Option(help="Comma-separated channel names.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Render only; send nothing.")] = False,
    test_to: Annotated[
        str | None, typer.Option("--test-to", help="Comma-separated test recipients.")
    ] = None,
) -> None:
    """Gather, render and deliver an edition through the daily-brief flow."""
    settings = _settings(config)
    day = _date(edition_date)
    # Embedded Prefect by default, its home in our data folder (already started, as a rule:
    # see briefcast/__main__.py)
    server = embedded_prefect.start_in(settings.data_dir)
    from briefcast.flows.daily_brief import chosen_channels, daily_brief
    from briefcast.flows.outcome import result_of
    from briefcast.params import BriefParameters

    try:  # here too, so a typo gets one line instead of a failed flow run's traceback
        chosen_channels(settings, _split(channels))
    except ValueError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    try:
        params = BriefParameters(
            edition_date=day,
            channels=_split(channels),
            dry_run=dry_run,
            test_to=_split(test_to),
            config_path=str(settings.source_file or ""),
        )
    except ValidationError as exc:  # --test-to with a typo
        for error in exc.errors():
            option = "--" + str(error["loc"][0]).replace("_", "-")
            message = error["msg"].removeprefix("Value error, ")
            console.print(f"[red]error:[/red] {option}: {escape(message)}", highlight=False)
        raise typer.Exit(2) from None
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=False,
    )
    handler = _ProgressHandler(progress)
    progress_log = logging.getLogger("briefcast.progress")
    progress_log.setLevel(logging.INFO)
    progress_log.propagate = False  # the bar shows it; keep it out of Prefect's console log
    progress_log.addHandler(handler)
    try:
        if server is not None:
            _import_what_the_flow_needs()  # while the server starts: the CLI would only wait
            server.ready()
        with progress:
            state = daily_brief(params, return_state=True)
        result = result_of(state)  # a failed delivery's run ends Failed, its result kept
    except ConfigFileError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    except embedded_prefect.ServerDidNotStart as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    except ValueError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    finally:
        progress_log.removeHandler(handler)
        progress_log.propagate = True
    print_summary(result, config)
    if not result.get("ok", True):
        raise typer.Exit(1)
    if result.get("nothing_to_publish"):
        raise typer.Exit(NOTHING_TO_PUBLISH)


@app.command()
def preview(
    config: ConfigOption = None,
    edition_date: DateOption = None,
    out: Annotated[Path | None, typer.Option(help="Folder for the preview files.")] = None,
) -> None:
    """Render an edition to files (email HTML and text, posts, messages); sends nothing."""
    from briefcast import pipeline
    from briefcast.preview import public_samples, write_preview

    settings = _settings(config)
    day = _date(edition_date) or pipeline.today_in(settings)
    quiet = logging.NullHandler()  # the problems are printed below, once
    logging.getLogger("briefcast").addHandler(quiet)
    try:
        gathered = pipeline.gather_day(settings, day)
    finally:
        logging.getLogger("briefcast").removeHandler(quiet)
    print_problems([problem.model_dump() for problem in gathered.problems])
    if not gathered.articles:
        console.print(f"[yellow]{escape(pipeline.no_articles_message(settings, day))}[/yellow]")
        raise typer.Exit(NOTHING_TO_PUBLISH)
    edition = pipeline.render_day(settings, gathered)
    folder = out or settings.data_dir / "preview" / edition.edition_id
    samples = public_samples(settings.publication.web_base_url, edition.edition_id)
    try:
        write_preview(edition, folder, samples)
    except OSError as exc:
        detail = f"{exc.strerror}: {exc.filename}" if exc.strerror else str(exc)
        console.print(
            f"[red]error:[/red] cannot write the preview to {escape(str(folder))}: "
            f"{escape(detail)}",
            highlight=False,
        )
        raise typer.Exit(2) from None
    console.print(
        f"Preview of {edition.edition_id} ({len(edition.articles)} articles): "
        f"{escape(str(folder))}",
        highlight=False,
    )


@app.command()
def serve(
    config: ConfigOption = None,
    pause_on_shutdown: Annotated[
        bool,
        typer.Option(
            "--pause-on-shutdown/--no-pause-on-shutdown",
            help="Pause the deployment's schedule when this process stops (off: a supervisor "
            "restarting the process keeps the schedule running).",
        ),
    ] = False,
) -> None:
    """Serve the daily-brief deployment: its daily schedule and runs started from the Prefect UI."""
    from briefcast.flows.serve import ServeError, api_url, deployment_name
    from briefcast.flows.serve import serve as serve_deployment

    try:
        url = api_url()  # first: { prefect_secret = ... } in the config needs the server too
    except ServeError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    settings = _settings(config)
    schedule = settings.schedule
    console.print(
        f"Serving [bold]{deployment_name(settings)}[/bold] against {url}: "
        f"cron {schedule.cron!r} in {settings.publication.timezone}, "
        f"approval {'required' if schedule.require_approval else 'not required'}. "
        "Ctrl+C stops.",
        highlight=False,
    )
    try:
        serve_deployment(
            settings,
            pause_on_shutdown=pause_on_shutdown,
            say=lambda line: console.print(escape(line), highlight=False),
        )
    except ConfigFileError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None


@ledger_app.command("status")
def ledger_status(
    config: ConfigOption = None,
    edition_date: DateOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show the delivery states of an edition."""
    from briefcast import pipeline

    settings = _settings(config)
    edition_id = (_date(edition_date) or pipeline.today_in(settings)).isoformat()
    summary = pipeline.ledger_for(settings).summary(edition_id)
    if as_json:
        console.print_json(json.dumps({k: dict(v) for k, v in summary.items()}))
        return
    if not summary:
        console.print(f"No deliveries recorded for edition {edition_id}.", highlight=False)
        return
    table = Table(title=f"Ledger for {edition_id}")
    states = ("pending", "in_flight", "sent", "failed", "held")
    table.add_column("channel")
    for state in states:
        table.add_column(state, justify="right")
    for channel, counts in sorted(summary.items()):
        table.add_row(channel, *(str(counts.get(s, 0)) for s in states))
    console.print(table)


ledger_app.command("list")(cli_ledger.list_)
ledger_app.command("resolve")(cli_ledger.resolve)
ledger_app.command("reconcile")(cli_ledger.reconcile)
app.add_typer(cli_subscribers.app, name="subscribers")
app.add_typer(cli_db.app, name="db")
app.command("init")(cli_init.init)
app.command("doctor")(cli_doctor.doctor)
app.command("web")(cli_web.web)
app.command("report")(cli_report.report)
