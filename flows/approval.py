"""The approval gate: pause the run until an operator approves or rejects it in the UI."""

from __future__ import annotations

from dataclasses import dataclass

from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import Field


class ApprovalInput(RunInput):
    approve: bool = Field(
        False,
        title="Approve",
        description="On: deliver the edition to every subscriber and follower now. "
        "Off: reject it; nothing is sent.",
    )
    note: str = Field(
        "",
        title="Note",
        description="Why you approve or reject (kept in the run's logs and final state).",
    )


@dataclass(frozen=True)
class Decision:
    approved: bool
    note: str = ""
    timed_out: bool = False

    @property
    def reason(self) -> str:
        note = f": {self.note}" if self.note else ""
        if self.timed_out:
            return f"no decision in time{note}"
        return f"{'approved' if self.approved else 'rejected'} by an operator{note}"


def wait_for_approval(description: str, timeout_seconds: int, poll_seconds: int) -> Decision:
    """Pause the current flow run until the operator answers the form, or the time is up.

    ``description`` is Markdown shown above the approve/reject form in the UI.
    """
    form = ApprovalInput.with_initial_data(description=description)
    try:
        answer = pause_flow_run(
            wait_for_input=form,
            timeout=timeout_seconds,
            poll_interval=min(poll_seconds, timeout_seconds),
        )
    except FlowPauseTimeout:
        minutes = timeout_seconds / 60
        return Decision(False, f"nobody answered within {minutes:g} minutes", timed_out=True)
    return Decision(answer.approve, answer.note.strip())
