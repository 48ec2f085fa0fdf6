"""``briefcast web``: serve the subscriber web app with uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from briefcast.config import ConfigFileError, load_settings


def web(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Config file (TOML).")
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: [web] host).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to listen on (default: [web] port).")
    ] = None,
) -> None:
    """Serve the subscribe form, one-click unsubscribe, the archive and the SendGrid webhook."""
    import uvicorn

    from briefcast.web.app import create_app

    try:
        settings = load_settings(config)
        app = create_app(settings)
    except ConfigFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    uvicorn.run(app, host=host or settings.web.host, port=port or settings.web.port)
