"""``briefcast init DIR``: start a newsroom's own brief in a new folder."""

from __future__ import annotations

import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from briefcast.scaffold import CONFIG_NAME, Newsroom, ScaffoldError, files_for, write_newsroom


def _ask(value: str | None, option: str, question: str, default: str | None = None) -> str:
    if value is not None:
        return value
    if not sys.stdin.isatty():
        typer.echo(f"error: {option} is missing (run in a terminal to be asked)", err=True)
        raise typer.Exit(2)
    return typer.prompt(question, default=default)


def init(
    folder: Annotated[
        Path, typer.Argument(help="Folder for the new newsroom (created if needed).")
    ],
    name: Annotated[str | None, typer.Option(help="The publication's name.")] = None,
    timezone: Annotated[
        str | None, typer.Option(help="IANA time zone of the edition day, e.g. Europe/Lisbon.")
    ] = None,
    sender: Annotated[str | None, typer.Option(help="The address the brief is sent from.")] = None,
    site_url: Annotated[
        str | None, typer.Option(help="The publication's website (default: the sender's domain).")
    ] = None,
    postal_address: Annotated[
        str, typer.Option(help="Postal address for the email footer (can be set later).")
    ] = "",
    templates: Annotated[
        bool,
        typer.Option("--templates", help="Copy the templates into the folder to restyle them."),
    ] = False,
) -> None:
    """Create a newsroom folder: a commented config, an example article, sample subscribers."""
    newsroom = Newsroom(
        name=_ask(name, "--name", "Publication name"),
        timezone=_ask(timezone, "--timezone", "Time zone (IANA)", default="UTC"),
        sender=_ask(sender, "--sender", "Sender email address"),
        site_url=site_url or "",
        postal_address=postal_address,
    )
    try:
        newsroom = newsroom.checked()
        if folder.exists() and not folder.is_dir():
            raise ScaffoldError(f"{folder}: is a file, not a folder")
        written = write_newsroom(folder, files_for(newsroom, datetime.now(UTC), templates))
    except (ScaffoldError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    shown = [str(path.relative_to(folder)) for path in written if "templates" not in path.parts]
    if templates:
        shown.append(f"templates/ ({sum('templates' in p.parts for p in written)} files)")
    typer.echo(f"Created {newsroom.name} in {folder}: {', '.join(shown)}")
    if not newsroom.postal_address:
        typer.echo(f"Before sending real email, set publication.postal_address in {CONFIG_NAME}.")
    steps = [
        ("briefcast preview", "today's edition, rendered to var/preview/"),
        ("briefcast subscribers import subscribers.csv", "the sample readers (example.org)"),
        ("briefcast run", "deliver to var/outbox/: nothing leaves the machine"),
        ("briefcast doctor", "check the setup before enabling real channels"),
    ]
    typer.echo(f"Next:\n  cd {shlex.quote(str(folder))}")
    for command, what in steps:
        typer.echo(f"  {command:<46} # {what}")
