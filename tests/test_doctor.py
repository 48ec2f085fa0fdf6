"""`briefcast doctor`: one line per check, exit 1 when something would fail; nothing is sent."""

from __future__ import annotations

import socket

from fakes.dns_server import FakeDns
from sqlalchemy import text
from typer.testing import CliRunner

from briefcast.cli import app
from briefcast.db import get_engine
from briefcast.doctor import run_checks

PUBLICATION = """
data_dir = "data"
[publication]
name = "The Quay Post"
site_url = "https://quaypost.news"
sender_email = "brief@quaypost.news"
"""


def write_config(tmp_path, extra: str = "", **publication: str):
    lines = "".join(f'{key} = "{value}"\n' for key, value in publication.items())
    config = tmp_path / "briefcast.toml"
    config.write_text(PUBLICATION + lines + extra)
    return config


def lines_of(checks) -> dict[str, tuple[str, str]]:
    return {check.name: (check.status, check.detail) for check in checks}


def doctor(config, *options: str):
    return CliRunner().invoke(app, ["doctor", "--config", str(config), "--offline", *options])


def test_a_setup_ready_for_the_outbox_passes(tmp_path):
    config = write_config(tmp_path, "[channels.outbox]\n", postal_address="1 Quay St")

    result = doctor(config)

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].startswith("ok    config")
    assert "ok    channel outbox" in result.output
    assert "created on the first run" in result.output
    assert "warn  sender SPF        quaypost.news: not looked up (--offline)" in result.output


def test_email_without_https_links_postal_address_or_dmarc_fails(tmp_path):
    smtp = '[channels.smtp]\nhost = "127.0.0.1"\nport = 2525\nsecurity = "plain"\n'
    config = write_config(
        tmp_path, smtp, web_base_url="http://news.quaypost.news", postal_address=""
    )
    records = {"quaypost.news": {"TXT": ['"v=spf1 include:mail.quaypost.news -all"']}}

    with FakeDns(records) as dns:
        checks = lines_of(run_checks(config, resolver=dns.resolver()))

    assert checks["channel smtp"][0] == "ok"
    assert checks["web base URL"][0] == "FAIL"
    assert checks["postal address"][0] == "FAIL"
    assert checks["sender SPF"] == ("ok", "quaypost.news: v=spf1 include:mail.quaypost.news -all")
    assert checks["sender DMARC"][0] == "FAIL"
    assert "_dmarc.quaypost.news starting v=DMARC1" in checks["sender DMARC"][1]


def test_a_channel_whose_secret_is_missing_fails_naming_it(tmp_path, monkeypatch):
    monkeypatch.delenv("QUAY_BOT_TOKEN", raising=False)
    telegram = '[channels.telegram]\nbot_token = { env = "QUAY_BOT_TOKEN" }\nchats = ["@quay"]\n'
    config = write_config(tmp_path, telegram, postal_address="1 Quay St")

    result = doctor(config)

    assert result.exit_code == 1
    (line,) = [line for line in result.output.splitlines() if "channel telegram" in line]
    assert line.startswith("FAIL") and "QUAY_BOT_TOKEN is not set" in line


def test_an_unreachable_prefect_api_and_a_newer_database_fail(tmp_path, monkeypatch):
    config = write_config(tmp_path, "[channels.outbox]\n", postal_address="1 Quay St")
    engine = get_engine(f"sqlite:///{tmp_path / 'data' / 'briefcast.db'}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{port}/api")

    checks = lines_of(run_checks(config, offline=True))

    assert checks["prefect"] == (
        "FAIL",
        f"http://127.0.0.1:{port}/api: not reachable (ConnectError)",
    )
    assert checks["database"][0] == "FAIL" and "revision 9999" in checks["database"][1]


def test_a_broken_config_is_one_failed_line(tmp_path):
    config = tmp_path / "briefcast.toml"
    config.write_text("[publication]\nname = 'Q'\n")

    result = doctor(config)

    assert result.exit_code == 1
    assert result.output.splitlines()[0].startswith(f"FAIL  config            {config}")
    assert "1 checks: 1 failed" in result.output
