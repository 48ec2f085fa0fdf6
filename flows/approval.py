"""The approval gate: pause the run until an operator approves or rejects it in the UI."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import Field


class Verdict(StrEnum):
    approve = "approve"
    reject = "reject"


class ApprovalInput(RunInput):
    # No default: the form cannot be submitted until the operator picks one.
    decision: Verdict = Field(
        title="Decision",
        description="approve: deliver the edition to every subscriber and follower now. "
        "reject: nothing is sent. There is no default: pick one.",
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
        if self.timed_out:
            return self.note
        note = f": {self.note}" if self.note else ""
        return f"{'approved' if self.approved else 'rejected'} by an operator{note}"


def duration(seconds: int) -> str:
    """``90`` → ``90 seconds``, ``10800`` → ``3 hours``."""
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.3g} {unit}s"
    return f"{seconds} second{'' if seconds == 1 else 's'}"


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
        return Decision(
            False, f"nobody approved it within {duration(timeout_seconds)}", timed_out=True
        )
    return Decision(answer.decision == Verdict.approve, answer.note.strip())
