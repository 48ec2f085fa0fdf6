"""The pieces around the flow that need no Prefect server: preview, report, schedule, form."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from briefcast.flows.approval import Decision, duration
from briefcast.flows.artifacts import escape_markdown, fenced, preview_markdown, report_rows
from flow_fixtures import write_newsroom
from support import make_edition

from briefcast.config import ConfigFileError, load_settings
from briefcast.dispatch import ChannelReport
from briefcast.models import (
    EmailVariant,
    RenderedEdition,
    TelegramMessage,
    TelegramPhoto,
    XPost,
)


def edition(**changes) -> RenderedEdition:
    fields = dict(
        edition_date=date(2026, 3, 10),
        email=EmailVariant(
            subject="Bridge reopens",
            preheader="Buses are back",
            html="<html></html>",
            text="The text version\n```not a fence end```",
        ),
        x_posts=[XPost(text="Bridge reopens https://t.example", weighted_length=38)],
        telegram_photo=TelegramPhoto(url="https://img.example/b.jpg", caption="<b>Bridge</b>"),
        telegram_messages=[TelegramMessage(text="<b>Bridge</b> &amp; tunnel")],
    )
    return make_edition("2026-03-10", **{**fields, **changes})


def test_preview_shows_every_part_with_its_length():
    page = preview_markdown(edition(), html_link="http://127.0.0.1:8000/archive/2026-03-10")

    assert "**Subject:** Bridge reopens" in page
    assert "**Preheader:** Buses are back" in page
    assert "````\nThe text version\n```not a fence end```\n````" in page
    assert "weighted length 38/280" in page
    assert "caption length 6/1024" in page  # "Bridge": tags do not count
    assert "length 15/4096" in page  # "Bridge & tunnel": the entity counts as one character
    assert "[open the email as it will look](http://127.0.0.1:8000/archive/2026-03-10)" in page


def test_preview_shows_bluesky_and_mastodon_posts_with_their_own_counts():
    from briefcast.render.social_posts import bluesky_post, mastodon_post

    url = "https://gazette.example/2026/03/10/the-bridge-reopens-after-six-months"
    page = preview_markdown(
        edition(
            bluesky_posts=[bluesky_post(["Bridge reopens 🌉"], url)],
            mastodon_posts=[mastodon_post(["Bridge reopens 🌉"], url)],
        )
    )

    assert "## Bluesky (1 post)" in page and "## Mastodon (1 post)" in page
    assert f"length 48/300 (graphemes) → {escape_markdown(url)}" in page
    assert "length 41/500 (characters, any link 23)" in page


def test_preview_flags_what_is_over_a_limit():
    long_post = XPost(text="x" * 300, weighted_length=300)
    page = preview_markdown(edition(x_posts=[long_post]))

    assert "weighted length 300/280 **over the limit**" in page


def test_titles_cannot_inject_markdown_into_the_preview():
    hostile = edition(
        email=edition().email.model_copy(
            update={"subject": "[click me](javascript:alert(1)) # <script>"}
        )
    )
    page = preview_markdown(hostile)

    assert "[click me](javascript" not in page
    assert r"\[click me\]\(javascript:alert\(1\)\) \# \<script\>" in page


def test_fences_outgrow_the_backticks_inside():
    assert fenced("a ````` b").startswith("``````\n")
    assert escape_markdown("a\n  b") == "a b"


def test_the_report_has_one_row_per_channel_in_a_fixed_order():
    report = ChannelReport("sendgrid", delivered=2, failed=1, errors=["c@d.example: bounced"])
    (row,) = report_rows([report])

    assert list(row) == [
        "channel",
        "delivered",
        "skipped",
        "failed",
        "in doubt",
        "held back",
        "reasons",
    ]
    assert row["failed"] == 1 and row["reasons"] == "c@d.example: bounced"


def test_decisions_say_why():
    assert Decision(True, "fine").reason == "approved by an operator: fine"
    assert Decision(False).reason == "rejected by an operator"
    assert duration(10800) == "3 hours" and duration(150) == "2.5 minutes"
    assert duration(1) == "1 second"


# -- [schedule] and the served deployment ------------------------------------------------------


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.delenv("BRIEFCAST_DATA", raising=False)
    return load_settings(write_newsroom(tmp_path, subscribers=()).config)


def test_schedule_defaults_to_six_in_the_morning_with_approval(settings):
    assert settings.schedule.cron == "0 6 * * *"
    assert settings.schedule.require_approval is True
    assert settings.schedule.deployment == "daily"


@pytest.mark.parametrize(
    ("line", "test_to", "complaint"),
    [
        ('cron = "0 6 * *"', (), "schedule.cron: Value error, cron needs five fields"),
        ("", ("not-an-address",), "schedule.test_to: Value error, not an email address"),
        ("approve = true", (), "schedule.approve: unknown key"),
        ("approval_timeout_seconds = 0", (), "schedule.approval_timeout_seconds: Input should"),
    ],
)
def test_schedule_mistakes_name_the_key(tmp_path, monkeypatch, line, test_to, complaint):
    monkeypatch.delenv("BRIEFCAST_DATA", raising=False)
    room = write_newsroom(tmp_path, subscribers=(), test_to=test_to, schedule=line + "\n")

    with pytest.raises(ConfigFileError) as caught:
        load_settings(room.config)
    assert complaint in str(caught.value)


def test_the_deployment_runs_daily_in_the_publications_time_zone(settings):
    from briefcast.flows.serve import build_deployment

    deployment = build_deployment(settings)

    (schedule,) = deployment.schedules
    assert schedule.schedule.cron == "0 6 * * *"
    assert schedule.schedule.timezone == "Europe/Lisbon"
    assert deployment.name == "daily"
    assert deployment.entrypoint == "briefcast.flows.daily_brief.daily_brief"
    assert deployment.parameters == {
        "brief": {
            "require_approval": True,
            "days_ago": 1,  # the morning run publishes yesterday's complete day
            "config_path": str(settings.source_file),
        }
    }


def test_an_impossible_cron_is_a_config_error(tmp_path, monkeypatch):
    from briefcast.flows.serve import daily_schedule

    monkeypatch.delenv("BRIEFCAST_DATA", raising=False)
    room = write_newsroom(tmp_path, subscribers=(), schedule='cron = "61 6 * * *"\n')

    with pytest.raises(ConfigFileError, match="schedule.cron"):
        daily_schedule(load_settings(room.config))


def test_every_field_of_the_run_form_explains_itself():
    from briefcast.flows.daily_brief import daily_brief
    from prefect.utilities.callables import parameter_schema

    schema = parameter_schema(daily_brief).model_dump()
    assert list(schema["properties"]) == ["brief"]
    assert schema["properties"]["brief"]["description"].startswith("What to publish")
    fields = schema["definitions"]["BriefParameters"]["properties"]
    assert set(fields) == {
        "edition_date",
        "days_ago",
        "channels",
        "dry_run",
        "test_to",
        "require_approval",
        "config_path",
    }
    for name, field in fields.items():
        assert field.get("title") and len(field.get("description", "")) > 20, name
    assert {"format": "date", "type": "string"} in fields["edition_date"]["anyOf"]


def test_the_channels_field_offers_the_configured_channels():
    from briefcast.flows.daily_brief import daily_brief
    from briefcast.flows.serve import offer_configured_channels
    from prefect.utilities.callables import parameter_schema

    schema = offer_configured_channels(
        parameter_schema(daily_brief).model_dump(), ["outbox", "sendgrid"]
    )

    channels = schema["definitions"]["BriefParameters"]["properties"]["channels"]
    assert channels["items"]["enum"] == ["outbox", "sendgrid"]
    assert channels["uniqueItems"] is True


def briefcast_serve(config: Path, tmp_path: Path, **prefect: str) -> subprocess.CompletedProcess:
    """`briefcast serve --config config` with no PREFECT_* setting but a fresh PREFECT_HOME
    and ``prefect``; its output captured as text."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"PREFECT_HOME": str(tmp_path / "prefect"), "COLUMNS": "200", **prefect}
    briefcast = Path(sys.executable).with_name("briefcast")
    return subprocess.run(
        [str(briefcast), "serve", "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_serve_without_a_prefect_server_says_how_to_start_one(tmp_path, monkeypatch):
    monkeypatch.delenv("BRIEFCAST_DATA", raising=False)
    room = write_newsroom(tmp_path, subscribers=())

    done = briefcast_serve(room.config, tmp_path)

    assert done.returncode == 2
    assert "PREFECT_API_URL is not set" in done.stdout
    assert "prefect server start" in done.stdout


def test_serve_against_a_prefect_server_that_is_down_says_so_in_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("BRIEFCAST_DATA", raising=False)
    room = write_newsroom(tmp_path, subscribers=())
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    done = briefcast_serve(room.config, tmp_path, PREFECT_API_URL=f"http://127.0.0.1:{port}/api")

    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stdout.startswith(
        f"error: no Prefect server answers at http://127.0.0.1:{port}/api"
    )
    assert "prefect server start" in done.stdout


def test_the_approval_form_says_whether_the_test_copy_went_out():
    from briefcast.flows.daily_brief import proofs_line

    ok = ChannelReport("outbox", delivered=1)
    failed = ChannelReport("smtp", failed=1, errors=["desk@gazette.example: 550 no such user"])

    assert proofs_line(["desk@gazette.example"], [ok]) == (
        "A [TEST] copy went to desk@gazette\\.example."
    )
    assert "**The [TEST] copy to desk@gazette\\.example failed**: " in proofs_line(
        ["desk@gazette.example"], [ok, failed]
    )
    assert "550 no such user" in proofs_line(["desk@gazette.example"], [failed])
    assert proofs_line([], []).startswith("No test copy was sent")
