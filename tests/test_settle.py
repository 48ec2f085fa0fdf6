"""Listing and settling in-doubt deliveries in bulk, as an operator does after a crash.

The ledger is real (SQLite, and PostgreSQL where it runs); the rows in doubt are
what a killed run leaves: claimed by its run id, never recorded.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from briefcast.cli import app
from briefcast.db import get_engine
from briefcast.ledger import IN_FLIGHT, PENDING, SENT, Ledger
from briefcast.settle import RowFilter, settle

EDITION = "2026-11-20"
CONFIG = """
data_dir = "data"

[publication]
name = "The Test Gazette"
site_url = "https://gazette.example"
postal_address = "1 Main St"
sender_email = "brief@gazette.example"

[database]
url = "{url}"

[channels.outbox]
"""


def addresses(n: int, start: int = 0) -> list[str]:
    return [f"reader{i:05d}@example.org" for i in range(start, start + n)]


def crashed_run(engine, run_id: str, channel: str, targets: list[str], pending=(), edition=EDITION):
    """Rows claimed by a run that was killed before it recorded them (and ``pending`` not)."""
    ledger = Ledger(engine, run_id=run_id)
    ledger.ensure(edition, channel, [*targets, *pending])
    rows = ledger.rows(edition, channel)
    ledger.claim(rows[t].id for t in targets)
    return ledger


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'briefcast.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def config(tmp_path, db_url) -> Path:
    path = tmp_path / "briefcast.toml"
    path.write_text(CONFIG.format(url=db_url), encoding="utf-8")
    return path


def cli(config: Path, *args: str, stdin: str | None = None):
    result = CliRunner().invoke(app, ["ledger", *args, "--config", str(config)], input=stdin)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def states(engine, channel: str = "sendgrid") -> dict[str, str]:
    return {t: r.state for t, r in Ledger(engine).rows(EDITION, channel).items()}


def test_the_listing_names_every_row_in_doubt_in_table_csv_and_json(config, db_url):
    engine = get_engine(db_url)
    doubtful = addresses(3)
    crashed_run(engine, "run-killed-at-0412", "sendgrid", doubtful, pending=addresses(2, start=3))
    Ledger(engine).ensure(EDITION, "x", ["post-1"])

    table = cli(config, "list", "--date", EDITION, "--state", "in-doubt")
    as_csv = cli(config, "list", "--date", EDITION, "--state", "in-doubt", "--format", "csv")
    as_json = cli(config, "list", "--date", EDITION, "--channel", "sendgrid", "--format", "json")

    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split() == [
        "target",
        "channel",
        "state",
        "run_id",
        "attempts",
        "updated",
        "error",
    ]
    assert [line.split()[:5] for line in lines[1:]] == [
        [a, "sendgrid", "in-doubt", "run-killed-at-0412", "1"] for a in doubtful
    ]
    rows = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert [r["target"] for r in rows] == doubtful
    assert {r["run_id"] for r in rows} == {"run-killed-at-0412"}
    listed = json.loads(as_json.output)
    assert [(r["target"], r["state"]) for r in listed] == [
        *((a, "in-doubt") for a in doubtful),
        *((a, "pending") for a in addresses(2, start=3)),
    ]


def test_a_file_of_targets_settles_exactly_those_and_names_the_ones_not_in_doubt(
    config, db_url, tmp_path
):
    engine = get_engine(db_url)
    doubtful = addresses(30)
    crashed_run(engine, "run-a", "sendgrid", doubtful)
    arrived = doubtful[:25]
    listing = tmp_path / "arrived.txt"
    listing.write_text(
        "# found in SendGrid's activity feed\n"
        + "\n".join([*arrived, "", "stranger@example.org"])
        + "\n",
        encoding="utf-8",
    )

    result = cli(
        config, "resolve", "sendgrid", "sent", "--date", EDITION, "--targets-file", str(listing)
    )

    assert result.exit_code == 0, result.output
    assert "25 in-doubt deliveries marked sent on sendgrid in edition 2026-11-20" in result.output
    assert "and 5 more" in result.output  # 20 named, the rest counted
    assert (
        "1 of the 26 targets were not in doubt on sendgrid in edition 2026-11-20 and were "
        "left as they are: stranger@example.org." in result.output
    )
    now = states(engine)
    assert {now[a] for a in arrived} == {SENT}
    assert {now[a] for a in doubtful[25:]} == {IN_FLIGHT}
    rows = Ledger(engine).rows(EDITION, "sendgrid")
    assert rows[arrived[0]].receipt == "resolved-by-operator"


def test_the_listing_piped_back_settles_everything_it_showed(config, db_url):
    engine = get_engine(db_url)
    crashed_run(engine, "run-a", "smtp", addresses(4))
    listed = cli(config, "list", "--date", EDITION, "--state", "in-doubt", "--format", "csv")

    result = cli(
        config,
        "resolve",
        "smtp",
        "resend",
        "--date",
        EDITION,
        "--targets-file",
        "-",
        stdin=listed.output,
    )

    assert result.exit_code == 0, result.output
    assert result.output.startswith("4 in-doubt deliveries marked resend on smtp")
    assert all(a in result.output for a in addresses(4))  # a small set is named in full
    assert set(states(engine, "smtp").values()) == {PENDING}


def test_a_run_settles_only_what_that_run_left_in_doubt(config, db_url):
    engine = get_engine(db_url)
    crashed_run(engine, "run-killed-first", "sendgrid", addresses(3))
    crashed_run(engine, "run-killed-later", "sendgrid", addresses(2, start=3))

    listed = cli(config, "list", "--run", "run-killed-first", "--format", "csv")
    result = cli(config, "resolve", "sendgrid", "resend", "--run", "run-killed-first")
    again = cli(config, "resolve", "sendgrid", "resend", "--run", "run-killed-first")

    assert [r["target"] for r in csv.DictReader(io.StringIO(listed.output))] == addresses(3)
    assert result.exit_code == 0, result.output
    assert "3 in-doubt deliveries marked resend on sendgrid in run run-killed-first" in (
        result.output
    )
    now = states(engine)
    assert [now[a] for a in addresses(5)] == [PENDING] * 3 + [IN_FLIGHT] * 2
    assert again.exit_code == 1  # nothing left to settle: said so, and a non-zero status
    assert "Nothing in doubt for sendgrid in run run-killed-first" in again.output


def test_a_whole_channel_is_settled_in_one_command_and_a_second_time_finds_nothing(config, db_url):
    engine = get_engine(db_url)
    crashed_run(engine, "run-a", "x", ["post-3"])
    crashed_run(engine, "run-a", "sendgrid", addresses(2))

    first = cli(config, "resolve", "sendgrid", "sent", "--date", EDITION)
    second = cli(config, "resolve", "sendgrid", "sent", "--date", EDITION)

    assert first.exit_code == 0 and first.output.startswith("2 in-doubt deliveries marked sent")
    assert second.exit_code == 1
    assert states(engine, "x") == {"post-3": IN_FLIGHT}  # another channel is not touched


def test_bad_options_are_one_line_each(config):
    cases = {
        ("list", "--state", "lost"): "--state: unknown state 'lost'; one of in-doubt,",
        ("list", "--format", "xml"): "--format must be table, csv or json",
        ("resolve", "x", "sent", "--target", "post-1", "--targets-file", "-"): (
            "give --target or --targets-file, not both"
        ),
        ("resolve", "x", "sent", "--targets-file", "/nonexistent/list.txt"): (
            "--targets-file /nonexistent/list.txt: No such file or directory"
        ),
    }
    for args, message in cases.items():
        result = cli(config, *args)
        assert result.exit_code == 2, (args, result.output)
        assert result.output.startswith(f"error: {message}"), result.output


def test_settling_ten_thousand_targets_uses_chunks_and_leaves_the_rest(db_url):
    engine = get_engine(db_url)
    doubtful = addresses(10_500)
    crashed_run(engine, "run-big", "sendgrid", doubtful)

    done = settle(
        engine,
        RowFilter(EDITION, channel="sendgrid", targets=tuple(doubtful[:10_000])),
        as_sent=True,
    )

    assert (done.count, done.not_matched) == (10_000, 0)
    assert len(done.targets) == 20
    now = states(engine)
    assert sum(1 for s in now.values() if s == SENT) == 10_000
    assert [now[a] for a in doubtful[10_000:]] == [IN_FLIGHT] * 500


def test_an_x_post_settled_without_its_id_can_be_given_it_later_but_never_overwritten(
    config, db_url
):
    engine = get_engine(db_url)
    crashed_run(engine, "run-a", "x", ["post-4"])
    options = ("--date", EDITION, "--target", "post-4")

    by_hand = cli(config, "resolve", "x", "sent", *options)
    with_id = cli(config, "resolve", "x", "sent", *options, "--receipt", "1861234567890123456")
    again = cli(config, "resolve", "x", "sent", *options, "--receipt", "1999999999999999999")

    assert (by_hand.exit_code, with_id.exit_code, again.exit_code) == (0, 0, 1)
    assert "1 in-doubt deliveries marked sent on x in edition 2026-11-20: post-4." in with_id.output
    assert Ledger(engine).rows(EDITION, "x")["post-4"].receipt == "1861234567890123456"
