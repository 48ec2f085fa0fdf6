"""``briefcast report``: how an edition did on each channel, and the trend."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from briefcast.config import ConfigFileError, load_settings

console = Console(soft_wrap=True)


def report(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Config file (TOML).")
    ] = None,
    edition_date: Annotated[
        str | None,
        typer.Option("--date", help="Edition date YYYY-MM-DD (default: the latest edition sent)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Sent, delivered, opened, clicked, bounced, complained and unsubscribed per channel."""
    from briefcast.db import get_engine
    from briefcast.report import edition_report, recent_editions
    from briefcast.report_views import HEADERS, channel_cells, trend_lines

    try:
        settings = load_settings(config)
    except ConfigFileError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    engine = get_engine(settings.database_url)
    if edition_date is not None:
        try:
            edition_id = date.fromisoformat(edition_date).isoformat()
        except ValueError:
            console.print(f"[red]error:[/red] --date {escape(repr(edition_date))} is not a date")
            raise typer.Exit(2) from None
    else:
        latest = recent_editions(engine, count=1)
        if not latest:
            console.print("No edition has been sent yet.")
            raise typer.Exit(1)
        edition_id = latest[0]
    result = edition_report(engine, settings, edition_id)
    if as_json:
        print(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
        return
    if not result.channels:
        console.print(f"Nothing was sent for edition {edition_id}.", highlight=False)
        raise typer.Exit(1)
    table = Table(title=f"Edition {edition_id}")
    for n, header in enumerate(HEADERS):
        table.add_column(header, justify="left" if n == 0 else "right")
    for stats in result.channels:
        table.add_row(*channel_cells(stats))
    console.print(table)
    for stats in result.channels:
        if stats.top_links:
            console.print(f"\nTop links ({stats.channel}):", highlight=False)
            for link in stats.top_links:
                console.print(
                    f"  {link.label:<24} {escape(link.url)}",
                    highlight=False,
                )
        if stats.posts:
            console.print(f"\nPosts ({stats.channel}):", highlight=False)
            for post in stats.posts:
                console.print(f"  {escape(post)}", highlight=False)
    lines = trend_lines(result.trend)
    if lines:
        console.print(f"\nThe last {len(result.trend)} editions:", highlight=False)
        for label, spark, latest in lines:
            console.print(f"  {label:<13} {spark}  {latest}", highlight=False)
