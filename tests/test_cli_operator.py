"""The CLI as an operator meets it on a bad day: no articles, a typo, odd feed text, a crash.

Every case runs the real ``briefcast`` command in a subprocess against a small
newsroom in a temporary folder, and checks what the operator reads and the exit
status: one clear line (never a traceback) and a next step where there is one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from flow_fixtures import EDITION_DATE, SUBSCRIBERS, write_newsroom
from support import cli_env

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("shared_prefect_api")  # no temporary server per command
EDITION = EDITION_DATE.isoformat()
EMPTY_DAY = "2026-03-15"  # the newsroom has nothing published that day

# A wire whose source name and entry title look like console markup.
ODD_WIRE = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Wire</title><link>https://wire.example/</link>
<item><title>[/red] Update [draft]</title><link>https://wire.example/1</link></item>
</channel></rss>
"""


def briefcast(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "briefcast", *args],
        cwd=ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )


def said(result: subprocess.CompletedProcess) -> str:
    """Everything printed, with the console's line wrapping undone."""
    return " ".join((result.stdout + result.stderr).split())


@pytest.fixture
def newsroom(tmp_path, monkeypatch):
    monkeypatch.delenv("BRIEFCAST_DATA", raising=False)
    monkeypatch.delenv("BRIEFCAST_CONFIG", raising=False)
    room = write_newsroom(tmp_path)
    (tmp_path / "wire.xml").write_text(ODD_WIRE, encoding="utf-8")
    with room.config.open("a", encoding="utf-8") as config:
        config.write('\n[[sources]]\nname = "[wire]"\ntype = "feed"\nurl = "wire.xml"\n')
    return room


@pytest.mark.slow  # runs the flow in a subprocess
def test_a_day_without_articles_says_so_and_exits_3(newsroom):
    run = briefcast("run", "--config", str(newsroom.config), "--date", EMPTY_DAY)
    preview = briefcast("preview", "--config", str(newsroom.config), "--date", EMPTY_DAY)

    for result in (run, preview):
        assert result.returncode == 3, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        assert f"No articles for {EMPTY_DAY}: the 2 sources have no new story" in said(result)
        assert "Nothing was rendered or sent." in said(result)
    assert not (newsroom.data / "outbox").exists()
    assert not (newsroom.data / "preview").exists()


def test_an_unknown_channel_is_one_line_and_nothing_runs(newsroom):
    result = briefcast("run", "--config", str(newsroom.config), "--channels", "outbox,fax")

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert (result.stdout + result.stderr).strip() == (
        "error: unknown channels ['fax']; configured: ['outbox']"
    )
    assert not (newsroom.data / "preview").exists()


def test_feed_text_is_printed_as_it_is_never_read_as_markup(newsroom):
    result = briefcast("preview", "--config", str(newsroom.config), "--date", EDITION)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("skipped") == 1  # printed once, not again by the log
    assert "skipped [wire] ([/red] Update [draft]): entry has no publication date" in result.stdout


@pytest.mark.slow  # runs the flow in a subprocess
def test_a_run_after_a_crash_reports_in_doubt_deliveries_and_how_to_settle_them(newsroom):
    from briefcast import pipeline
    from briefcast.config import load_settings

    # What a run killed mid-dispatch leaves behind: rows claimed, never recorded.
    crashed = pipeline.ledger_for(load_settings(newsroom.config), run_id="killed-run")
    doubtful = [f"email:{SUBSCRIBERS[0]}", "x:post-2"]
    crashed.ensure(EDITION, "outbox", doubtful)
    assert len(crashed.claim(r.id for r in crashed.rows(EDITION, "outbox").values())) == 2

    result = briefcast("run", "--config", str(newsroom.config), "--date", EDITION)

    assert result.returncode == 1, result.stdout + result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("│ outbox"))
    delivered, skipped, failed, in_doubt = [c.strip() for c in row.split("│")[2:6]]
    assert (skipped, failed, in_doubt) == ("0", "0", "2") and int(delivered) > 0
    assert newsroom.emails(EDITION) == sorted(SUBSCRIBERS[1:])  # the doubtful one not resent
    assert not (newsroom.outbox(EDITION) / "x" / "post-2.json").exists()
    text = said(result)
    assert "In doubt: 2 on outbox." in text
    command = f"briefcast ledger resolve outbox sent --date {EDITION} --config {newsroom.config}"
    assert f"`{command}` if they arrived" in text
    assert "ledger resolve outbox resend" in text

    settled = briefcast(*command.split()[1:])

    assert settled.returncode == 0, settled.stdout + settled.stderr
    assert "2 in-doubt deliveries marked sent" in settled.stdout
    status = briefcast(
        "ledger", "status", "--config", str(newsroom.config), "--date", EDITION, "--json"
    )
    assert "in_flight" not in json.loads(status.stdout)["outbox"]


def test_a_preview_folder_that_cannot_be_written_is_one_line(newsroom, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = blocker / "preview"

    result = briefcast(
        "preview", "--config", str(newsroom.config), "--date", EDITION, "--out", str(out)
    )

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        f"error: cannot write the preview to {out}: Not a directory: {out}"
    )


def test_an_error_about_a_long_path_stays_on_one_line(tmp_path):
    folder = tmp_path / ("long-" * 30) / ("deeper-" * 20) / "briefcast.toml"
    folder.mkdir(parents=True)  # a folder where the config file should be

    result = briefcast("ledger", "status", "--config", str(folder))

    assert result.returncode == 2
    assert result.stdout.splitlines() == [f"error: {folder}: is a folder, not a config file"]


@pytest.mark.slow  # runs the flow in a subprocess
def test_a_dry_run_finds_a_channel_the_real_run_could_not_start(newsroom):
    with newsroom.config.open("a", encoding="utf-8") as config:
        config.write('\n[channels.sendgrid]\napi_key = { env = "BRIEFCAST_TEST_UNSET_KEY" }\n')

    result = briefcast("run", "--config", str(newsroom.config), "--date", EDITION, "--dry-run")

    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        f"channel sendgrid cannot start: {newsroom.config} [channels.sendgrid]: "
        "invalid configuration api_key: Value error, environment variable "
        "BRIEFCAST_TEST_UNSET_KEY is not set"
    ) in said(result)
    assert "Dry run: nothing sent." in result.stdout
    assert not (newsroom.data / "outbox").exists()


@pytest.mark.slow  # runs the flow in a subprocess
def test_a_dry_run_finds_an_edition_a_channel_would_refuse(newsroom, monkeypatch):
    # A newsroom's own Telegram template with a tag Telegram does not accept.
    custom = newsroom.config.parent / "my-templates"
    custom.mkdir()
    story = (ROOT / "templates" / "telegram_story.html.j2").read_text(encoding="utf-8")
    (custom / "telegram_story.html.j2").write_text(f"<div>{story}</div>", encoding="utf-8")
    text = newsroom.config.read_text(encoding="utf-8")
    newsroom.config.write_text(
        text.replace("[edition]", '[edition]\ntemplates = "my-templates"', 1)
        if "[edition]" in text
        else text + '\n[edition]\ntemplates = "my-templates"\n',
        encoding="utf-8",
    )
    with newsroom.config.open("a", encoding="utf-8") as config:
        config.write(
            '\n[channels.telegram]\nbot_token = { env = "BRIEFCAST_TEST_TG_TOKEN" }\n'
            'chats = ["@newsroom"]\n'
        )
    monkeypatch.setenv("BRIEFCAST_TEST_TG_TOKEN", "123:not-a-real-token")

    result = briefcast("run", "--config", str(newsroom.config), "--date", EDITION, "--dry-run")

    assert result.returncode == 1, result.stdout + result.stderr
    assert "channel telegram would refuse the edition:" in said(result)
    assert "div" in said(result)
    assert "not-a-real-token" not in result.stdout + result.stderr
    assert not (newsroom.data / "outbox").exists()


def test_resolving_a_target_that_is_not_in_doubt_says_so_instead_of_0(newsroom):
    config = ("--config", str(newsroom.config), "--date", EDITION)

    status = briefcast("ledger", "status", *config)
    resolved = briefcast("ledger", "resolve", "x", "sent", "--target", "post-4", *config)

    assert status.returncode == 0
    assert status.stdout.strip() == f"No deliveries recorded for edition {EDITION}."
    assert resolved.returncode == 1
    assert resolved.stdout.strip() == (
        f"Nothing in doubt for x post-4 in edition {EDITION}; "
        f"`briefcast ledger status --date {EDITION}` shows its deliveries by channel."
    )
