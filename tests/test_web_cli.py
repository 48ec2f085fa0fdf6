"""``briefcast web``: config errors stop it with a message; access logs hide link tokens."""

from __future__ import annotations

import logging

import typer
from typer.testing import CliRunner

from briefcast.cli_web import RedactLinkTokens, web


def test_a_bad_config_stops_it_with_the_file_and_key(tmp_path):
    path = tmp_path / "briefcast.toml"
    path.write_text('[publication]\nname = "G"\n[web]\nport = "eighty"\n')
    cli = typer.Typer()
    cli.command()(web)

    result = CliRunner().invoke(cli, ["--config", str(path)])

    assert result.exit_code == 2
    assert str(path) in result.output and "web.port" in result.output


def test_access_log_lines_keep_the_path_but_not_the_token():
    def access_line(path: str) -> str:
        # the shape of uvicorn's access log record
        record = logging.LogRecord(
            "uvicorn.access",
            logging.INFO,
            __file__,
            1,
            '%s - "%s %s HTTP/%s" %d',
            ("127.0.0.1:5000", "POST", path, "1.1", 200),
            None,
        )
        RedactLinkTokens().filter(record)
        return record.getMessage()

    assert access_line("/u/cHVycG9zZQ.c2lnbmF0dXJl") == '127.0.0.1:5000 - "POST /u/… HTTP/1.1" 200'
    assert "c2ln" not in access_line("/confirm/abc.c2lnbmF0dXJl?utm=1")
    assert "/archive/2026-11-20" in access_line("/archive/2026-11-20")
    assert access_line("/review/cmV2aWV3.c2lnbmF0dXJl").count("c2ln") == 0  # reviewer's link
    assert "c2ln" not in access_line("/brief/u/abc.c2lnbmF0dXJl")  # behind a path prefix
