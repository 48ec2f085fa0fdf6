"""The ``daily-brief`` Prefect flow: gather → render → dispatch → report.

One task per stage and one dispatch task per channel (never one per
recipient): per-recipient state lives in the delivery ledger, which is what
makes reruns safe. Prefect task retries cover crashes of a whole stage; the
dispatcher handles provider waits and transient failures itself.
"""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from briefcast import pipeline
from briefcast.config import Settings, load_settings
from briefcast.dispatch import ChannelReport
from briefcast.models import Gathered, RenderedEdition
from briefcast.params import BriefParameters
from channels.base import Recipient


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
    recipients: list[Recipient],
    run_id: str,
    test_send: bool,
) -> ChannelReport:
    report = pipeline.deliver(
        settings, edition, channel, recipients, run_id=run_id, test_send=test_send
    )
    logger = get_run_logger()
    logger.info(
        "%s: %d delivered, %d skipped, %d failed, %d in doubt, %d held back",
        channel,
        report.delivered,
        report.skipped,
        report.failed,
        report.in_doubt,
        report.held,
    )
    for error in report.errors[:20]:
        logger.warning("%s: %s", channel, error)
    return report


@flow(
    name="daily-brief",
    description="Gather the day's articles, render email, X and Telegram variants, deliver them.",
    task_runner=ThreadPoolTaskRunner(max_workers=4),
    log_prints=True,
)
def daily_brief(params: BriefParameters | None = None) -> dict:
    params = params or BriefParameters()
    settings = load_settings(params.config_path or None)
    edition_date = params.edition_date or pipeline.today_in(settings)
    run_id = str(flow_run.get_id() or datetime.now(UTC).timestamp())

    gathered = gather_task(settings, edition_date)
    edition = render_task(settings, gathered, edition_date.isoformat())
    result = {
        "edition_id": edition.edition_id,
        "edition_date": edition_date.isoformat(),
        "articles": len(edition.articles),
        "problems": [p.model_dump() for p in gathered.problems],
        "channels": [],
        "dry_run": params.dry_run,
    }
    if params.dry_run:
        return result

    channels = params.channels or settings.enabled_channels
    unknown = sorted(set(channels) - set(settings.channels))
    if unknown:
        raise ValueError(f"unknown channels {unknown}; configured: {sorted(settings.channels)}")

    test_send = bool(params.test_to)
    if test_send:
        edition = pipeline.for_test_send(edition, datetime.now(UTC))
    else:
        pipeline.ledger_for(settings).record_edition(
            edition.edition_id, edition_date, [a.key for a in edition.articles]
        )
        pipeline.write_archive(settings, edition)
    recipients = pipeline.recipients(settings, edition, params.test_to)

    futures = [
        dispatch_task.submit(settings, edition, name, recipients, run_id, test_send)
        for name in channels
    ]
    reports = [future.result() for future in futures]
    result["edition_id"] = edition.edition_id
    result["channels"] = [report.as_row() for report in reports]
    result["ok"] = all(report.ok for report in reports)
    return result
