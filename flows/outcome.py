"""How a run and its dispatch tasks end in Prefect: what the CLI knows, the UI shows.

A run with any failed or in-doubt delivery ends Failed, its message naming the channels
and counts, so the dashboard counts it and an automation on failure fires. Deliveries held
back (a daily budget, a provider's sandbox) are not failures: the run completes and says so.
"""

from __future__ import annotations

from collections.abc import Sequence

from prefect.states import Cancelled, Completed, Failed, State

from briefcast.dispatch import ChannelReport

NOT_IN_TEST_SEND = "not part of a test send (the [TEST] copy is email only)"


class RunOutcome(Exception):  # noqa: N818 - an outcome, not always an error
    """The data of a run that did not complete: its message, and the run's result.

    Prefect turns a Failed or Cancelled run's data into the exception it raises (and a
    served run logs it as "Engine execution exited with unexpected exception"), so the
    data is an exception that says what happened; the CLI reads ``result`` from it.
    """

    def __init__(self, message: str, result: dict) -> None:
        super().__init__(message)
        self.result = result


class DeliveryFailed(RunOutcome):
    """Some deliveries failed or are in doubt (or a dry run found a channel would fail)."""


class EditionRejected(RunOutcome):
    """An operator rejected the edition: nothing was sent."""


def result_of(state: State) -> dict:
    """The run's result dict, whichever way it ended; an unexpected exception is raised."""
    value = state.result(raise_on_failure=False)
    if isinstance(value, RunOutcome):
        return value.result
    if isinstance(value, BaseException):
        raise value
    return value


def _counts(report: ChannelReport) -> str:
    parts = [
        f"{count} {what}"
        for count, what in (
            (report.failed, "failed"),
            (report.in_doubt, "in doubt"),
            (report.held, "held back"),
        )
        if count
    ]
    return ", ".join(parts)


def problems_line(reports: Sequence[ChannelReport]) -> str:
    """``sendgrid: 7 failed; telegram: 1 in doubt`` for the channels that did not all go out."""
    return "; ".join(f"{r.channel}: {_counts(r)}" for r in reports if not r.ok)


def held_line(reports: Sequence[ChannelReport]) -> str:
    return "; ".join(f"{r.channel}: {r.held} held back" for r in reports if r.held)


def _first_reason(report: ChannelReport) -> str:
    return f" ({report.errors[0]})" if report.errors else ""


class Reported:
    """A dispatch task's report as its state's data, with a short repr: Prefect logs the
    state of a failed task, and a report lists every failed delivery."""

    def __init__(self, report: ChannelReport) -> None:
        self.report = report

    def __repr__(self) -> str:
        return f"report of {self.report.channel}"


def report_of(result: object) -> ChannelReport:
    """The report a dispatch task returned (see channel_state); exceptions are raised."""
    if isinstance(result, BaseException):
        raise result
    return result.report if isinstance(result, Reported) else result  # type: ignore[return-value]


def channel_state(report: ChannelReport, *, test_send: bool) -> State:
    """The dispatch task's final state; its data is the report either way."""
    what = "[TEST] copy" if test_send else "delivery"
    if not report.ok:
        message = f"{report.channel} {what}: {_counts(report)}{_first_reason(report)}"
        return Failed(message=message, data=Reported(report))
    summary = f"{report.channel} {what}: {report.delivered} delivered, {report.skipped} skipped"
    if report.held:
        summary += f", {report.held} held back{_first_reason(report)}"
    return Completed(message=summary, data=Reported(report))


def delivery_state(
    edition_id: str, reports: Sequence[ChannelReport], result: dict, *, test_send: bool
) -> State:
    """The run's final state after sending: Failed naming the channels unless all went out."""
    what = f"The [TEST] copy of edition {edition_id}" if test_send else f"Edition {edition_id}"
    decision = f" ({result['decision']})" if result.get("decision") else ""
    failing = problems_line(reports)
    if failing:
        hint = "" if test_send else " `briefcast ledger status` lists them."
        message = f"{what}: not every delivery went out: {failing}.{hint}"
        return Failed(message=message, data=DeliveryFailed(message, result))
    delivered = sum(r.delivered for r in reports)
    skipped = sum(r.skipped for r in reports)
    message = f"{what}: {delivered} delivered, {skipped} already sent before{decision}."
    held = held_line(reports)
    if held:
        message += f" Held back, to go out on a later run: {held}."
    return Completed(message=message, data=result)


def dry_run_state(edition_id: str, result: dict) -> State:
    problems = result.get("channel_problems") or {}
    if problems:
        named = "; ".join(f"{name} {problem}" for name, problem in problems.items())
        message = f"Dry run of edition {edition_id}: a real run would fail: {named}"
        return Failed(message=message, data=DeliveryFailed(message, result))
    return Completed(message=f"Dry run of edition {edition_id}: nothing sent.", data=result)


def rejected_state(edition_id: str, reason: str, result: dict) -> State:
    """A rejection is a decision, not an error: Cancelled (not counted as a failure, no
    notification on failure) and named "Rejected", which the UI's run lists show."""
    message = f"Edition {edition_id} was not delivered: {reason}."
    return Cancelled(name="Rejected", message=message, data=EditionRejected(message, result))
