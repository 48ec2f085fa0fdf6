"""``briefcast web``: serve the subscriber web app with uvicorn."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Annotated

import typer

from briefcast.config import ConfigFileError, load_settings

_TOKEN_PATH = re.compile(r"^(.*?/u/|.*?/confirm/|.*?/review/)[^?\s]+")


class RedactLinkTokens(logging.Filter):
    """Keep per-subscriber link tokens out of the access log: each one can unsubscribe someone."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], _TOKEN_PATH.sub(r"\1…", args[2]), *args[3:])
        return True


def web(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Config file (TOML).")
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: web.host, 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to listen on (default: web.port, 8000).")
    ] = None,
) -> None:
    """Serve the subscribe form, one-click unsubscribe, the archive and the SendGrid webhook."""
    import uvicorn

    from briefcast.web.app import create_app
    from briefcast.web.serving import server_config

    try:
        settings = load_settings(config)
        app = create_app(settings)
    except ConfigFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    where = {"host": host or settings.web.host, "port": settings.web.port if port is None else port}
    logging.getLogger("uvicorn.access").addFilter(RedactLinkTokens())
    uvicorn.Server(server_config(app, settings, **where)).run()
