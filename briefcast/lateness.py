"""The staleness guard: a scheduled run that starts too late sends nothing.

After an outage (the server down overnight, a worker that was stopped) Prefect
starts the runs it missed as soon as it can. A morning brief that goes out at
five in the afternoon, or yesterday's brief today, is worse than none. An
edition is *due* at its schedule's cron time on the day it is published: the
edition day plus ``schedule.days_ago`` (06:00 on the 21st for the 20th's brief,
with the defaults). A run is late by the time since it was due, or since Prefect
meant to start it, whichever is earlier; beyond ``schedule.max_lateness_hours``
it is refused.

Only runs that pick their day from the clock are held: the scheduled ones and
those started from a deployment without an edition date. A run for an explicit
date (``briefcast run --date``, or the run form's Edition date) is an operator's
choice and is never held.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from cronsim import CronSim, CronSimError

from briefcast.config import Settings

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def due_at(settings: Settings, edition_date: date) -> datetime:
    """When the schedule sends an edition: its first cron time on the publishing day."""
    zone = settings.publication.zone
    day = edition_date + timedelta(days=settings.schedule.days_ago)
    start = datetime.combine(day, time.min, tzinfo=zone)
    cron = settings.schedule.cron.strip()
    try:
        # CronSim yields times strictly after the one given: a minute before midnight
        # lets a 00:00 cron time count for the day itself.
        return next(CronSim(ALIASES.get(cron, cron), start - timedelta(minutes=1)))
    except (CronSimError, StopIteration):
        return start


def lateness(
    settings: Settings, edition_date: date, now: datetime, scheduled_start: datetime | None
) -> timedelta:
    """How late a run that started ``now`` is for the edition (negative: early)."""
    reference = due_at(settings, edition_date)
    if scheduled_start is not None and scheduled_start < reference:
        reference = scheduled_start  # a run Prefect meant for an earlier slot (a catch-up)
    return now - reference


def too_late(
    settings: Settings, edition_date: date, now: datetime, scheduled_start: datetime | None
) -> str | None:
    """Why the run must not send the edition, or None when it is in time."""
    late = lateness(settings, edition_date, now, scheduled_start)
    limit = settings.schedule.max_lateness_hours
    if late <= timedelta(hours=limit):
        return None
    zone = settings.publication.zone
    due = due_at(settings, edition_date).astimezone(zone)
    day = edition_date.isoformat()
    return (
        f"Edition {day} was not sent: this run started {late.total_seconds() / 3600:.1f} h "
        f"after it was due ({due:%Y-%m-%d %H:%M} {settings.publication.timezone}), more than "
        f"schedule.max_lateness_hours ({limit:g}). To send it anyway, run it for its date: "
        f"`briefcast run --date {day}`, or a custom run with Edition date {day}."
    )
