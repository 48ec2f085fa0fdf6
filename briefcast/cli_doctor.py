"""``briefcast doctor``: check the setup, one line per check, exit 1 if any fails."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from briefcast.doctor import FAIL, WARN, run_checks


def doctor(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Config file (TOML).")
    ] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="No DNS lookups: say what to check instead.")
    ] = False,
) -> None:
    """Check the config, channels, database, Prefect API, links and sender DNS; sends nothing."""
    checks = run_checks(config, offline=offline)
    for check in checks:
        typer.echo(f"{check.status:<4}  {check.name:<16}  {check.detail}")
    failed = sum(check.status == FAIL for check in checks)
    warned = sum(check.status == WARN for check in checks)
    typer.echo(f"{len(checks)} checks: {failed} failed, {warned} to look at.")
    if failed:
        raise typer.Exit(1)
