"""Subscriber data handled with care: a suppressed reader may come back by a fresh double
opt-in when the operator allows it; exports are safe to open in a spreadsheet; link tokens
are decoded strictly; the link secret and the SQLite database are private to their owner;
a config that is not a secret reference stops ``briefcast web`` with a message."""

from __future__ import annotations

import csv
import io
import os
import stat
import subprocess
import sys
import textwrap
import time

import httpx
import pytest
import typer
from typer.testing import CliRunner
from web_support import (
    SECRET,
    confirmation_link,
    listening_socket,
    make_settings,
    served,
    smtp_sink,
)

from briefcast import subscribers, tokens
from briefcast.cli_subscribers import app as subscribers_cli
from briefcast.db import get_engine
from briefcast.web import links

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def status(engine, address: str) -> str | None:
    found = subscribers.get(engine, address)
    return found.status if found else None


# -- 1. a suppressed reader comes back, when the operator allows it ------------------------


@pytest.mark.parametrize("suppressed", ["bounced", "complained"])
def test_a_suppressed_address_comes_back_by_a_fresh_double_opt_in_when_allowed(
    tmp_path, monkeypatch, suppressed
):
    with smtp_sink() as sink:
        sock, base = listening_socket()
        settings = make_settings(
            tmp_path,
            monkeypatch,
            smtp_port=sink.port,
            base_url=base,
            web_extra="resubscribe_suppressed = true",
        )
        engine = get_engine(settings.database_url)
        subscribers.add(engine, "back@example.org", status="active")
        subscribers.set_status(engine, "back@example.org", suppressed, "a provider said so")
        earlier = links.confirm_token(SECRET, "back@example.org", time.time() - 60)
        old_link = f"{base}/confirm/{earlier}"

        with served(settings, sock):
            refused = httpx.post(old_link)  # issued before the bounce or complaint
            httpx.post(f"{base}/subscribe", data={"email": "back@example.org"})
            link = confirmation_link(sink.received.wait_for("back@example.org")[0].message)
            confirmed = httpx.post(link)

    assert refused.status_code == 409
    assert confirmed.status_code == 200 and "You're subscribed" in confirmed.text
    assert status(engine, "back@example.org") == "active"


# -- 5. CSV export ------------------------------------------------------------------------

HOSTILE = [
    ("=cmd@example.org", '=HYPERLINK("https://evil.example","click")'),
    ("+sum@example.org", "+1+2"),
    ("-minus@example.org", "-2+3"),
    ("at@example.org", "@SUM(A1)"),
    ("plain@example.org", "Plain Name"),
]


def test_an_export_opens_safely_in_a_spreadsheet_and_an_import_keeps_values(tmp_path, monkeypatch):
    settings = make_settings(tmp_path, monkeypatch)
    source = tmp_path / "readers.csv"
    with source.open("w", newline="") as handle:
        csv.writer(handle).writerows([("email", "name"), *HOSTILE, ("tab@example.org", "\tTab")])
    runner = CliRunner()
    config = ["--config", str(settings.source_file)]

    imported = runner.invoke(subscribers_cli, ["import", str(source), *config])
    exported = runner.invoke(subscribers_cli, ["export", *config])
    raw = runner.invoke(subscribers_cli, ["export", "--raw", *config])
    help_text = runner.invoke(subscribers_cli, ["export", "--help"], terminal_width=200).output

    assert imported.exit_code == 0, imported.output
    engine = get_engine(settings.database_url)
    stored = {s.address: s.name for s in subscribers.list_subscribers(engine)}
    assert stored["=cmd@example.org"] == '=HYPERLINK("https://evil.example","click")'
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    for row in rows:
        for column in ("address", "name"):
            assert not row[column].startswith(("=", "+", "-", "@", "\t", "\r")), row
    cells = {row["address"]: row["name"] for row in rows}
    assert cells["'=cmd@example.org"] == '\'=HYPERLINK("https://evil.example","click")'
    assert cells["plain@example.org"] == "Plain Name"
    raw_cells = {row["address"]: row["name"] for row in csv.DictReader(io.StringIO(raw.stdout))}
    assert raw_cells["+sum@example.org"] == "+1+2"
    assert "formula" in help_text and "--raw" in help_text


# -- 8. small ones ------------------------------------------------------------------------


def test_a_re_encoded_token_does_not_work(tmp_path, monkeypatch):
    sock, base = listening_socket()
    settings = make_settings(tmp_path, monkeypatch, base_url=base)
    engine = get_engine(settings.database_url)
    subscribers.add(engine, "reader@example.org", status="active")
    token = tokens.sign(SECRET, "unsubscribe", "reader@example.org")
    body, mac = token.split(".")
    variants = [
        f"{body}.{mac}=",  # padded
        f"{body}=.{mac}" if len(body) % 4 else f"{body}.{mac}==",
        f"{body}.{mac[:10]}!{mac[10:]}",  # a stray character a lax decoder skips
        f"{body}.{mac[:-1]}{spare_bits_twin(mac[-1])}",  # same bytes, other spelling
    ]

    with served(settings, sock):
        answers = [httpx.post(f"{base}/u/{v}", data=ONE_CLICK).status_code for v in variants]
        assert status(engine, "reader@example.org") == "active"
        genuine = httpx.post(f"{base}/u/{token}", data=ONE_CLICK).status_code

    assert answers == [400, 400, 400, 400]
    assert genuine == 200 and status(engine, "reader@example.org") == "unsubscribed"


def spare_bits_twin(last: str) -> str:
    """A base64 character that differs from ``last`` only in bits a 43-character spelling of
    32 bytes leaves unused (the last two)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return alphabet[alphabet.index(last) ^ 1]


def test_a_secret_reference_that_is_not_a_name_is_a_config_error(tmp_path):
    from briefcast.cli_web import web

    path = tmp_path / "briefcast.toml"
    path.write_text(
        '[publication]\nname = "G"\nsite_url = "https://g.example"\npostal_address = "1 St"\n'
        'sender_email = "b@g.example"\n[web]\nsecret = { env = 5 }\n'
    )
    cli = typer.Typer()
    cli.command()(web)

    result = CliRunner().invoke(cli, ["--config", str(path)])

    assert result.exit_code == 2
    assert "web.secret" in result.output and "Traceback" not in result.output


PRIVATE_FILES = textwrap.dedent(
    """
    import os, stat, sys
    from pathlib import Path

    seen = []

    def watch(event, args):
        # Each time the secret's file is created, linked or re-moded, what others could read.
        if event in ("open", "os.link", "os.rename", "os.chmod") and args:
            for name in args[:2]:
                if isinstance(name, (str, Path)) and "link-secret" in str(name):
                    if os.path.exists(name):
                        seen.append(stat.S_IMODE(os.stat(name).st_mode))

    sys.addaudithook(watch)
    os.umask(0o022)
    from briefcast import tokens
    value = tokens.local_secret(Path(sys.argv[1]))
    seen.append(stat.S_IMODE(os.stat(Path(sys.argv[1]) / "link-secret").st_mode))
    print(value == tokens.local_secret(Path(sys.argv[1])), *sorted(set(seen)))
    """
)


def test_the_link_secret_is_never_readable_by_others(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", PRIVATE_FILES, str(tmp_path / "data")],
        capture_output=True,
        text=True,
        check=True,
    )
    same, *modes = result.stdout.split()
    assert same == "True"
    assert [int(m) & 0o077 for m in modes] == [0] * len(modes), result.stdout


def test_the_sqlite_database_is_not_readable_by_others(tmp_path, monkeypatch):
    old = os.umask(0o022)
    try:
        settings = make_settings(tmp_path, monkeypatch)
        sock, _ = listening_socket()
        with served(settings, sock):
            pass
    finally:
        os.umask(old)
    database = settings.data_dir / "briefcast.db"
    assert database.is_file()
    for path in database.parent.glob("briefcast.db*"):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
