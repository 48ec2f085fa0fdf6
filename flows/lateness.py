"""The staleness guard in the flow: a run started too late ends "Too late" and sends nothing.

The rule is in :mod:`briefcast.lateness`; this reads what Prefect knows about the run
(started from a deployment? when was it meant to start?) and names the final state.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from prefect import get_run_logger
from prefect.runtime import deployment, flow_run
from prefect.states import Failed, State

from briefcast.config import Settings
from briefcast.lateness import too_late
from briefcast.params import BriefParameters


class TooLate(RuntimeError):
    """The edition is older than the schedule's lateness allows; nothing was sent."""


def refuse_if_late(settings: Settings, brief: BriefParameters, edition_date: date) -> State | None:
    """A Failed "Too late" state for a deployment run that started too late, else None.

    Runs for an explicit date, dry runs and runs outside a deployment (``briefcast run``)
    are never held: each is an operator's choice.
    """
    if brief.edition_date is not None or brief.dry_run or not deployment.id:
        return None
    scheduled = flow_run.scheduled_start_time
    message = too_late(
        settings,
        edition_date,
        datetime.now(UTC),
        scheduled if isinstance(scheduled, datetime) else None,
    )
    if message is None:
        return None
    get_run_logger().error(message)
    return Failed(name="Too late", message=message, data=TooLate(message))
