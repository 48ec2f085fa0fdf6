"""The README's first command, end to end: the sample day through the real CLI and Prefect."""

from __future__ import annotations

import email
import email.policy
import json
import subprocess
import sys
from pathlib import Path

import pytest
from support import cli_env

ROOT = Path(__file__).resolve().parent.parent
BRIEFCAST = [sys.executable, "-m", "briefcast"]
DAY = "2026-11-20"
# End to end through the CLI (the rerun: test_end_to_end.py); one shared Prefect API.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("shared_prefect_api")]


def briefcast(*args: str, data: Path) -> subprocess.CompletedProcess:
    env = cli_env(BRIEFCAST_DATA=str(data))
    return subprocess.run(
        [*BRIEFCAST, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
    )


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    imported = briefcast("subscribers", "import", "sample/subscribers.csv", data=data)
    assert imported.returncode == 0, imported.stderr
    first = briefcast("run", "--date", DAY, data=data)
    return data, first


def test_sample_day_lands_in_the_outbox_for_every_channel(sample_run):
    data, first = sample_run
    assert first.returncode == 0, first.stdout + first.stderr
    outbox = data / "outbox" / DAY
    emails = sorted((outbox / "email").glob("*.eml"))
    assert len(emails) == 5
    for path in emails:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        html = message.get_body(("html",)).get_content()
        text = message.get_body(("plain",)).get_content()
        assert len(html.encode()) < 102 * 1024  # Gmail clips larger messages
        assert "%%" not in html and "%%" not in text  # every placeholder filled
        unsubscribe = message["List-Unsubscribe"].strip("<>")
        assert unsubscribe in html and unsubscribe in text  # the recipient's own link
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert "&#8217;" not in html and "&#8217;" not in text
        assert "Rua do Cais 12" in html and "Rua do Cais 12" in text
    posts = [json.loads(p.read_text()) for p in (outbox / "x").glob("post-*.json")]
    assert len(posts) >= 9 and all(p["weighted_length"] <= 280 for p in posts)
    messages = [json.loads(p.read_text()) for p in (outbox / "telegram").glob("*msg-*.json")]
    assert len(messages) >= 2  # the long lead forces a split
    assert all(len(m["text"].encode("utf-16-le")) // 2 <= 4096 for m in messages)
    skeets = [json.loads(p.read_text()) for p in (outbox / "bluesky").glob("post-*.json")]
    assert len(skeets) == len(posts) and all(p["length"] <= 300 for p in skeets)
    for skeet in skeets:  # each link facet covers its URL's bytes in the text
        for link in skeet["links"]:
            shown = skeet["text"].encode()[link["byte_start"] : link["byte_end"]].decode()
            assert link["uri"].removeprefix("https://").startswith(shown.rstrip("…"))
    statuses = [json.loads(p.read_text()) for p in (outbox / "mastodon").glob("status-*.json")]
    assert len(statuses) == len(posts) and all(s["length"] <= 500 for s in statuses)
    assert "delivered" in first.stdout and "outbox" in first.stdout


def test_preview_writes_files_and_touches_no_ledger(tmp_path):
    result = briefcast("preview", "--date", DAY, data=tmp_path)
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "preview" / DAY
    assert (folder / "email.html").stat().st_size > 1000
    assert "Subject:" in (folder / "email.txt").read_text()
    assert json.loads((folder / "x.json").read_text())
    status = briefcast("ledger", "status", "--date", DAY, "--json", data=tmp_path)
    assert json.loads(status.stdout) == {}


def test_broken_config_exits_2_naming_the_key(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text((ROOT / "config" / "briefcast.toml").read_text() + "\n[edition2]\nx = 1\n")
    result = briefcast("run", "--config", str(config), data=tmp_path)
    assert result.returncode == 2
    assert "edition2: unknown key" in result.stdout + result.stderr


def test_first_command_on_a_fresh_checkout_creates_its_data_folder(tmp_path):
    data = tmp_path / "not" / "yet" / "there"
    result = briefcast("run", "--date", DAY, "--dry-run", data=data)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Edition 2026-11-20" in result.stdout
    assert not (data / "outbox").exists()  # a dry run sends nothing


def test_ledger_resolve_takes_a_receipt_only_for_one_delivery_that_was_sent(tmp_path):
    for args in (("resend", "--target", "post-3"), ("sent",)):
        result = briefcast(
            "ledger", "resolve", "x", *args, "--receipt", "1790000000000000003", data=tmp_path
        )
        assert result.returncode == 2
        assert "--receipt goes with 'sent' and one --target" in result.stdout
