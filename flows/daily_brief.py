"""The ``daily-brief`` Prefect flow: gather → render → preview → (approve) → dispatch → report.

One task per stage and one dispatch task per channel (never one per
recipient): per-recipient state lives in the delivery ledger, which is what
makes reruns safe. Prefect task retries cover crashes of a whole stage; the
dispatcher handles provider waits and transient failures itself.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from briefcast.flows import artifacts, outcome, shards
from briefcast.flows.approval import Decision, duration, wait_for_approval
from briefcast.flows.lateness import refuse_if_late
from briefcast.flows.preview_server import preview_url
from briefcast.flows.report_artifact import publish_edition_report
from briefcast.flows.run_logs import forward_to_runs, progress_artifact
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.states import Completed, Failed, State
from prefect.task_runners import ThreadPoolTaskRunner

from briefcast import pipeline, stopping
from briefcast.config import Settings, load_settings
from briefcast.dispatch import ChannelReport
from briefcast.models import Gathered, RenderedEdition
from briefcast.params import BriefParameters
from briefcast.preview import public_samples, write_preview
from briefcast.test_copy import sends_email


@task(name="gather", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5)
def gather_task(settings: Settings, edition_date) -> Gathered:
    gathered = pipeline.gather_day(settings, edition_date)
    get_run_logger().info(
        "gathered %d articles (%d problems)", len(gathered.articles), len(gathered.problems)
    )
    return gathered


@task(name="render", cache_policy=NO_CACHE)
def render_task(settings: Settings, gathered: Gathered, edition_id: str) -> RenderedEdition:
    return pipeline.render_day(settings, gathered, edition_id)


@task(name="dispatch", cache_policy=NO_CACHE, task_run_name="dispatch-{channel}")
def dispatch_task(
    settings: Settings,
    edition: RenderedEdition,
    channel: str,
    test_to: list[str],
    run_id: str,
    test_send: bool,
) -> State:
    """Ends Failed when any delivery failed or is in doubt; the report is its data either way.

    The recipients are loaded here, streamed from the subscriber table: never a parameter.
    """
    recipients = pipeline.recipients(settings, edition, test_to)
    logger = get_run_logger()
    if test_send:
        logger.info("%s: sending the [TEST] copy of edition %s", channel, edition.edition_id)
    with progress_artifact(channel, test_send=test_send):
        # pipeline.deliver, or a big channel in shards on a work pool's workers (flows/shards.py)
        report = shards.deliver(
            settings, edition, channel, recipients, run_id=run_id, test_send=test_send
        )
    logger.info(
        "%s%s: %d delivered, %d skipped, %d failed, %d in doubt, %d held back",
        "[TEST] copy on " if test_send else "",
        channel,
        report.delivered,
        report.skipped,
        report.failed,
        report.in_doubt,
        report.held,
    )
    for error in report.errors[:20]:
        logger.warning("%s: %s", channel, error)
    return outcome.channel_state(report, test_send=test_send)


def chosen_channels(settings: Settings, requested: list[str]) -> list[str]:
    """The requested channels (default: every enabled one); ValueError naming unknown ones."""
    channels = list(dict.fromkeys(requested)) or settings.enabled_channels
    unknown = sorted(set(channels) - set(settings.channels))
    if unknown:
        raise ValueError(f"unknown channels {unknown}; configured: {sorted(settings.channels)}")
    return channels


def send_to(
    settings: Settings,
    edition: RenderedEdition,
    channels: list[str],
    test_to: list[str],
    run_id: str,
    *,
    test_send: bool,
) -> list[ChannelReport]:
    """One dispatch task per channel, run side by side; the report lands as an artifact.

    ``test_to``: the test recipients; empty, every active subscriber.
    """
    with stopping.graceful_sigterm():  # SIGTERM: finish what is on the wire, then stop
        futures = [
            dispatch_task.submit(settings, edition, name, test_to, run_id, test_send)
            for name in channels
        ]
        # A Failed task still has its report.
        reports = [outcome.report_of(future.result(raise_on_failure=False)) for future in futures]
    artifacts.publish_report(reports, test_send=test_send, edition_id=edition.edition_id)
    return reports


def send_proofs(
    settings: Settings,
    edition: RenderedEdition,
    channels: list[str],
    addresses: list[str],
    run_id: str,
) -> tuple[str, list[ChannelReport]]:
    """The [TEST] copy, email only, under its own ledger id; links point at the real edition.

    Channels that do not send email (X, Telegram) are reported as skipped, not failed.
    """
    proof = pipeline.for_test_send(edition, datetime.now(UTC))
    email = [name for name in channels if sends_email(settings, name)]
    skipped = [name for name in channels if name not in email]
    logger = get_run_logger()
    logger.info(
        "sending the [TEST] copy of edition %s to %s on %s%s",
        edition.edition_id,
        ", ".join(addresses),
        ", ".join(email) or "no email channel",
        f"; skipped (a test copy is email only): {', '.join(skipped)}" if skipped else "",
    )
    reports = send_to(settings, proof, email, addresses, run_id, test_send=True) if email else []
    reports += [ChannelReport(name, errors=[outcome.NOT_IN_TEST_SEND]) for name in skipped]
    return proof.edition_id, reports


def preview_folder(settings: Settings, edition_id: str) -> Path:
    return settings.data_dir / "preview" / edition_id


def show_email_html(
    settings: Settings, edition: RenderedEdition, *, archive: bool, review: bool = False
) -> str:
    """Write the preview files (and the archive page if the edition goes out now, or the
    reviewer's unlisted copy if it awaits approval); return a link."""
    samples = public_samples(settings.publication.web_base_url, edition.edition_id)
    folder = write_preview(edition, preview_folder(settings, edition.edition_id), samples)
    html_file = folder / "email.html"
    served = preview_url(settings, edition.edition_id)
    if archive:
        pipeline.write_archive(settings, edition)
        base = settings.publication.web_base_url.rstrip("/")
        url = f"{base}/archive/{edition.edition_id}"
    elif review:
        url = pipeline.write_review_copy(settings, edition)
    else:
        url = html_file.resolve().as_uri()
    url = served or url  # `briefcast serve` serves the preview itself: no other server needed
    artifacts.publish_email_html(edition, url, html_file)
    return url


def withdraw_archive(settings: Settings, edition: RenderedEdition) -> None:
    """Take a refused edition's page out of the public archive, unless it already went out."""
    sent = pipeline.ledger_for(settings).summary(edition.edition_id)
    if any(counts.get("sent") or counts.get("in_flight") for counts in sent.values()):
        return
    path = settings.data_dir / "archive" / f"{edition.edition_id}.html"
    path.unlink(missing_ok=True)


def proofs_line(proofs_to: list[str], reports: list[ChannelReport]) -> str:
    esc = artifacts.escape_markdown
    if not proofs_to:
        return "No test copy was sent (no test recipients given or configured)."
    if reports and all(report.ok for report in reports):
        return f"A [TEST] copy went to {esc(', '.join(proofs_to))}."
    reasons = "; ".join(error for report in reports for error in report.errors[:3])
    return f"**The [TEST] copy to {esc(', '.join(proofs_to))} failed**: {esc(reasons)}."


def approval_request(
    edition: RenderedEdition,
    channels: list[str],
    html_link: str,
    proofs: str,
    subscribers: int,
) -> str:
    """The Markdown above the approve/reject form."""
    esc = artifacts.escape_markdown
    return (
        f"**Edition {esc(edition.edition_id)}** of {esc(edition.publication)}: "
        f"{len(edition.articles)} articles, subject “{esc(edition.email.subject)}”.\n\n"
        f"{proofs} The full preview is in this run's Artifacts; "
        f"{artifacts.link('open the email as it will look', html_link)}.\n\n"
        f"Approve to deliver on {esc(', '.join(channels))} to {subscribers} subscribers and "
        f"followers now. Reject and nothing is sent."
    )


def ask_for_approval(
    settings: Settings,
    brief: BriefParameters,
    edition: RenderedEdition,
    channels: list[str],
    html_link: str,
    run_id: str,
) -> Decision:
    """Send the test copy, then pause until an operator answers or the time is up."""
    proofs_to = brief.test_to or settings.schedule.test_to
    reports = send_proofs(settings, edition, channels, proofs_to, run_id)[1] if proofs_to else []
    subscribers = len(pipeline.recipients(settings, edition, []))
    timeout = settings.schedule.approval_timeout_seconds
    proof = "no [TEST] copy went out"
    if proofs_to:
        went = all(report.ok for report in reports)
        proof = f"the [TEST] copy {'went' if went else 'FAILED to go'} to {', '.join(proofs_to)}"
    get_run_logger().info(
        "waiting for approval of edition %s (up to %s); %s. Resume the run to approve or reject.",
        edition.edition_id,
        duration(timeout),
        proof,
    )
    decision = wait_for_approval(
        approval_request(
            edition, channels, html_link, proofs_line(proofs_to, reports), subscribers
        ),
        settings.schedule.approval_timeout_seconds,
        settings.schedule.approval_poll_seconds,
    )
    log = get_run_logger().warning if decision.timed_out else get_run_logger().info
    log("edition %s: %s", edition.edition_id, decision.reason)
    return decision


def refused(decision: Decision, edition_id: str, result: dict) -> State:
    """The final state of a run that sent nothing to subscribers, named for the UI.

    A rejection is a decision, not an error: Cancelled, named "Rejected". After a timeout
    the server replaces any state with its own Failed one, its message built from our
    state's name: "The flow was not approved and never resumed."
    """
    message = f"Edition {edition_id} was not delivered: {decision.reason}."
    if decision.timed_out:
        return Failed(name="Not approved", message=message)
    return outcome.rejected_state(edition_id, decision.reason, result)


def nothing_to_publish(settings: Settings, gathered: Gathered, brief: BriefParameters) -> State:
    """A day without articles ends here: nothing to render, approve or send; named for the UI."""
    message = pipeline.no_articles_message(settings, gathered.edition_date)
    get_run_logger().warning(message)
    result = {
        "edition_id": gathered.edition_date.isoformat(),
        "edition_date": gathered.edition_date.isoformat(),
        "articles": 0,
        "problems": [p.model_dump() for p in gathered.problems],
        "channels": [],
        "dry_run": brief.dry_run,
        "nothing_to_publish": message,
        "ok": True,
    }
    return Completed(name="No articles", message=message, data=result)


DEFAULT_BRIEF = BriefParameters()
forward_to_runs()  # the dispatcher's retries, waits and warnings reach the run's logs


@flow(
    name="daily-brief",
    description="Gather the day's articles, render email, X and Telegram variants, preview "
    "them, wait for approval if asked, and deliver them.",
    task_runner=ThreadPoolTaskRunner(max_workers=4),
    log_prints=True,
)
def daily_brief(brief: BriefParameters = DEFAULT_BRIEF) -> dict | State:
    """Publish one edition of the daily brief.

    Args:
        brief: What to publish and how: the day, the channels, a dry run or a test send, and
            whether an operator approves the edition before it goes out.
    """
    settings = load_settings(brief.config_path or None)
    logger = get_run_logger()
    edition_date = brief.edition_date or pipeline.today_in(settings) - timedelta(
        days=brief.days_ago
    )
    run_id = str(flow_run.get_id() or uuid.uuid4().hex)
    channels = chosen_channels(settings, brief.channels)
    if (late := refuse_if_late(settings, brief, edition_date)) is not None:
        return late  # a scheduled run started long after the edition was due: nothing sent

    gathered = gather_task(settings, edition_date)
    if not gathered.articles:
        return nothing_to_publish(settings, gathered, brief)
    publish_edition_report(settings, until=edition_date)  # how the last edition did
    edition = render_task(settings, gathered, edition_date.isoformat())
    edition, gathered = pipeline.as_first_sent(settings, edition, gathered)
    test_only = bool(brief.test_to) and not brief.require_approval
    goes_out = not brief.dry_run and not test_only
    awaits_approval = goes_out and brief.require_approval
    html_link = show_email_html(
        settings, edition, archive=goes_out and not awaits_approval, review=awaits_approval
    )
    samples = public_samples(settings.publication.web_base_url, edition.edition_id)
    artifacts.publish_preview(edition, gathered, html_link, {**samples, "view_url": html_link})
    result: dict = {
        "edition_id": edition.edition_id,
        "edition_date": edition_date.isoformat(),
        "articles": len(edition.articles),
        "problems": [p.model_dump() for p in gathered.problems],
        "channels": [],
        "dry_run": brief.dry_run,
        "preview": str(preview_folder(settings, edition.edition_id)),
    }
    if brief.dry_run:
        logger.info("dry run: edition %s rendered, nothing sent", edition.edition_id)
        # What the real run would refuse at its first send, found now.
        recipients = pipeline.recipients(settings, edition, [])
        problems = {
            name: pipeline.channel_problem(settings, name, edition, recipients) for name in channels
        }
        result["channel_problems"] = {k: v for k, v in problems.items() if v}
        for name, problem in result["channel_problems"].items():
            logger.warning("channel %s %s", name, problem)
        result["ok"] = not result["channel_problems"]
        return outcome.dry_run_state(edition.edition_id, result)

    if test_only:
        result["edition_id"], reports = send_proofs(
            settings, edition, channels, brief.test_to, run_id
        )
        result["channels"] = [report.as_row() for report in reports]
        result["ok"] = all(report.ok for report in reports)
        return outcome.delivery_state(edition.edition_id, reports, result, test_send=True)

    if brief.require_approval:
        decision = ask_for_approval(settings, brief, edition, channels, html_link, run_id)
        result["decision"] = decision.reason
        if not decision.approved:
            withdraw_archive(settings, edition)
            return refused(decision, edition.edition_id, result)

    pipeline.write_archive(settings, edition)  # again: a rejected run of it may have withdrawn it
    pipeline.ledger_for(settings).record_edition(
        edition.edition_id, edition_date, [a.key for a in edition.articles]
    )
    pipeline.keep_edition(settings, edition)
    reports = send_to(settings, edition, channels, [], run_id, test_send=False)
    result["channels"] = [report.as_row() for report in reports]
    result["ok"] = all(report.ok for report in reports)
    return outcome.delivery_state(edition.edition_id, reports, result, test_send=False)
