"""The staleness guard: a scheduled run that starts too late sends nothing and says why."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flow_fixtures import (  # noqa: F401  (the *_fixture names are fixtures)
    client_of,
    prefect_server_fixture,
    served_fixture,
    wait_for,
)

from briefcast.config import ConfigFileError, Settings, load_settings
from briefcast.lateness import due_at, too_late

LISBON = ZoneInfo("Europe/Lisbon")


def settings(zone: str = "Europe/Lisbon", **schedule) -> Settings:
    return Settings.model_validate(
        {
            "publication": {
                "name": "The Test Gazette",
                "site_url": "https://gazette.example",
                "postal_address": "1 Main St",
                "sender_email": "brief@gazette.example",
                "timezone": zone,
            },
            "schedule": schedule,
        }
    )


def test_an_edition_is_due_at_the_cron_time_of_the_day_it_is_published():
    assert due_at(settings(), date(2026, 11, 20)) == datetime(2026, 11, 21, 6, tzinfo=LISBON)
    evening = settings(cron="30 18 * * *", days_ago=0)
    assert due_at(evening, date(2026, 11, 20)) == datetime(2026, 11, 20, 18, 30, tzinfo=LISBON)
    # The morning after the clocks went forward: still 06:00 local, 10:00 UTC.
    new_york = settings("America/New_York")
    assert due_at(new_york, date(2026, 3, 7)) == datetime(2026, 3, 8, 10, tzinfo=UTC)
    # A weekday brief: Saturday's edition is due on Monday morning.
    weekdays = settings(cron="0 6 * * 1-5")
    assert due_at(weekdays, date(2026, 11, 20)).date() == date(2026, 11, 23)
    assert due_at(settings(cron="@daily"), date(2026, 11, 20)) == datetime(
        2026, 11, 21, tzinfo=LISBON
    )


def test_a_run_within_the_lateness_goes_and_one_beyond_it_is_refused_with_the_way_out():
    day = date(2026, 11, 20)
    due = datetime(2026, 11, 21, 6, tzinfo=LISBON)

    assert too_late(settings(), day, due + timedelta(hours=5, minutes=59), due) is None
    message = too_late(settings(), day, due + timedelta(hours=11), due)

    assert message == (
        "Edition 2026-11-20 was not sent: this run started 11.0 h after it was due "
        "(2026-11-21 06:00 Europe/Lisbon), more than schedule.max_lateness_hours (6). "
        "To send it anyway, run it for its date: `briefcast run --date 2026-11-20`, or a "
        "custom run with Edition date 2026-11-20."
    )
    assert too_late(settings(max_lateness_hours=12), day, due + timedelta(hours=11), due) is None


def test_a_catch_up_run_for_yesterdays_slot_is_late_even_before_todays_slot():
    # The server was down from Friday 05:00 to Saturday 01:00. Prefect starts Friday's
    # 06:00 run at 01:00 on Saturday: by the clock it would publish Friday, due at 06:00
    # Saturday, but it is the run meant for Friday 06:00, 19 hours ago.
    friday_slot = datetime(2026, 11, 20, 6, tzinfo=LISBON)
    now = datetime(2026, 11, 21, 1, tzinfo=LISBON)

    message = too_late(settings(), date(2026, 11, 20), now, friday_slot)

    assert message is not None and "started 19.0 h after it was due" in message


def test_a_lateness_of_zero_is_refused_with_the_key_named(tmp_path):
    config = tmp_path / "briefcast.toml"
    config.write_text("[schedule]\nmax_lateness_hours = 0\n")

    with pytest.raises(ConfigFileError) as refused:
        load_settings(config)

    assert "schedule.max_lateness_hours: Input should be greater than 0" in str(refused.value)


@pytest.mark.server
def test_a_scheduled_run_that_starts_two_days_late_ends_too_late_and_sends_nothing(served):
    from prefect.states import Scheduled

    room = served.newsroom
    slot = datetime.now(UTC) - timedelta(days=2)
    with client_of(served.server) as client:
        run = client.create_flow_run_from_deployment(
            served.deployment_id, state=Scheduled(scheduled_time=slot)
        )

    def ended():
        with client_of(served.server) as client:
            state = client.read_flow_run(run.id).state
        return state if state.is_final() else None

    state = wait_for(ended, timeout=120, what="the late run to end", every=0.5)

    assert (state.name, state.type.value) == ("Too late", "FAILED"), state.message
    assert "was not sent: this run started" in state.message
    assert "schedule.max_lateness_hours (6)" in state.message
    assert not (room.data / "outbox").exists() or not any((room.data / "outbox").iterdir())
    assert not (room.data / "preview").exists() or not any((room.data / "preview").iterdir())
