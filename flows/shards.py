"""A big channel sent by a Prefect work pool's workers: the ``dispatch-shard`` deployment.

With ``[dispatch] shards = { sendgrid = 4 }`` the daily-brief run creates the
channel's ledger rows once, starts four runs of the ``dispatch-shard/shards``
deployment (on the ``[dispatch] shard_pool`` work pool, so on its workers) with
``run_deployment``, waits for them and reads the channel's report back from the
ledger. A shard run gets the config path, the edition id, the channel and its
index (never a list of recipients); it reads the edition as the daily-brief run
kept it in the ledger and streams the subscribers itself. How shards share the
rows: ``briefcast.shards``. A shard that fails, crashes or leaves rows in doubt
fails the daily-brief run.

Without a Prefect API whose pool has an online worker, or with a SQLite ledger,
the channel is sent by the daily-brief run itself, with a warning.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from uuid import UUID

from briefcast.channels.base import Recipient
from briefcast.channels.errors import ChannelError
from prefect import flow, get_client, get_run_logger
from prefect.client.schemas.objects import WorkerStatus
from prefect.deployments import run_deployment
from prefect.deployments.runner import EntrypointType
from prefect.exceptions import ObjectNotFound
from prefect.runtime import flow_run
from prefect.states import Cancelled, Cancelling, Completed, Failed, State

from briefcast import pipeline, stopping
from briefcast import shards as sharding
from briefcast.config import Settings, load_settings
from briefcast.dispatch import ChannelReport
from briefcast.ledger import FAILED, IN_FLIGHT, SENT
from briefcast.models import RenderedEdition

FLOW_NAME = "dispatch-shard"
DEPLOYMENT = "shards"
POLL_SECONDS = 1.0  # how often the daily-brief run looks at its shard runs
START_TIMEOUT_SECONDS = 900.0  # a shard run no worker started by then is cancelled


@flow(
    name=FLOW_NAME,
    description="Send one shard of one channel of an edition the daily-brief run recorded.",
    log_prints=True,
)
def dispatch_shard(
    config_path: str, edition_id: str, channel: str, shard: int, shards: int
) -> dict | State:
    """One shard of a channel.

    Args:
        config_path: The briefcast config file, as the worker's machine sees it.
        edition_id: The edition the daily-brief run kept in the ledger.
        channel: The configured channel to send.
        shard: This shard's index, from 0.
        shards: How many shards send the channel.
    """
    settings = load_settings(config_path or None)
    run_id = str(flow_run.get_id())
    with stopping.graceful_sigterm():
        report = sharding.deliver_shard(settings, edition_id, channel, shard, shards, run_id)
    # The shard's own outcome: rows another shard left in doubt are counted in its report
    # too (as any run counts them), but they fail that shard and the daily-brief run, not this.
    own = sharding.own_rows(settings, edition_id, channel, run_id)
    doubtful, failed = own.get(IN_FLIGHT, 0), own.get(FAILED, 0)
    if not report.planned:
        failed += report.failed  # the channel could not start or refused the edition
    summary = (
        f"shard {shard + 1} of {shards} of {channel}: {own.get(SENT, 0)} delivered, "
        f"{failed} failed, {doubtful} in doubt"
    )
    logger = get_run_logger()
    logger.info(summary)
    for error in report.errors[:20]:
        logger.warning("%s: %s", channel, error)
    result = {"shard": shard, "delivered": own.get(SENT, 0), "failed": failed, "in doubt": doubtful}
    if failed or doubtful or report.stopped:
        reasons = "; ".join(report.errors[:3])
        return Failed(message=f"{summary}: {reasons}", data=result)
    return Completed(message=summary, data=result)


def deployment_name() -> str:
    return f"{FLOW_NAME}/{DEPLOYMENT}"


def ensure_deployment(pool: str) -> UUID:
    """Create or update the shard deployment on ``pool`` (idempotent)."""
    deployment = dispatch_shard.to_deployment(
        name=DEPLOYMENT,
        work_pool_name=pool,
        tags=["briefcast"],
        description="Shards of a big channel, started by the daily-brief run.",
        entrypoint_type=EntrypointType.MODULE_PATH,  # importable wherever briefcast is installed
    )
    return deployment.apply()


def pool_problem(pool: str) -> str | None:
    """Why ``pool`` cannot run shards now (no API, no such pool, paused, no worker online)."""
    try:
        with get_client(sync_client=True) as client:
            paused = client.read_work_pool(pool).is_paused
            workers = client.read_workers_for_work_pool(pool)
    except ObjectNotFound:
        return f"the Prefect API has no work pool {pool!r}"
    except Exception as exc:  # no API (embedded mode) or it did not answer
        return f"the Prefect API could not be asked about work pool {pool!r}: {exc}"
    if paused:
        return f"work pool {pool!r} is paused"
    if not any(worker.status == WorkerStatus.ONLINE for worker in workers):
        return f"work pool {pool!r} has no worker online"
    return None


def sharded(settings: Settings, channel: str, *, test_send: bool) -> bool:
    return not test_send and sharding.shard_count(settings, channel) > 1


def deliver(
    settings: Settings,
    edition: RenderedEdition,
    channel: str,
    recipients: Iterable[Recipient],
    *,
    run_id: str,
    test_send: bool,
) -> ChannelReport:
    """``pipeline.deliver``, or the channel in shards when the config asks and workers can."""
    if sharded(settings, channel, test_send=test_send):
        report = dispatch_in_shards(settings, edition, channel, run_id)
        if report is not None:
            return report
    return pipeline.deliver(
        settings, edition, channel, recipients, run_id=run_id, test_send=test_send
    )


def dispatch_in_shards(
    settings: Settings, edition: RenderedEdition, channel: str, run_id: str
) -> ChannelReport | None:
    """The channel sent by its shards on the pool's workers; None to send it here instead."""
    count = sharding.shard_count(settings, channel)
    pool = settings.dispatch.shard_pool
    logger = get_run_logger()
    problem = sharding.shareable_database(settings) or pool_problem(pool)
    if problem:
        logger.warning("%s: not sharded (%s); this run sends it alone", channel, problem)
        return None
    started = time.monotonic()
    try:
        planned = sharding.create_rows(settings, edition, channel)
    except ChannelError as exc:
        return sharding.refused(channel, exc)
    except sharding.ShardError as exc:
        logger.warning("%s: not sharded (%s); this run sends it alone", channel, exc)
        return None
    if settings.web.secret is None:
        logger.warning(
            "%s: [web] secret is not set: each machine signs unsubscribe links with the key "
            "in its own data folder, which briefcast web accepts only from this machine; set "
            "[web] secret when workers run on other machines",
            channel,
        )
    ensure_deployment(pool)
    config_path = str(settings.source_file) if settings.source_file else ""
    runs = [
        run_deployment(
            deployment_name(),
            parameters={
                "config_path": config_path,
                "edition_id": edition.edition_id,
                "channel": channel,
                "shard": index,
                "shards": count,
            },
            flow_run_name=f"{edition.edition_id}-{channel}-{index + 1}-of-{count}",
            idempotency_key=f"{run_id}:{edition.edition_id}:{channel}:{index}/{count}",
            timeout=0,
        )
        for index in range(count)
    ]
    logger.info(
        "%s: %d deliveries (ledger rows made in %.1f s) in %d shards on work pool %s: %s",
        channel,
        planned,
        time.monotonic() - started,
        count,
        pool,
        ", ".join(run.name for run in runs),
    )
    ended = wait_for_shards([run.id for run in runs])
    problems = [
        f"shard {index + 1} of {count} (flow run {run.name}) ended {state.name}: "
        f"{state.message or 'no message'}"
        for index, (run, state) in enumerate(zip(runs, ended, strict=True))
        if not state.is_completed()
    ]
    return sharding.report_of(
        settings, edition.edition_id, channel, [str(run.id) for run in runs], problems
    )


def wait_for_shards(ids: list[UUID]) -> list[State]:
    """The shard runs' final states.

    A stop (SIGTERM, a cancel) of this run cancels them. A shard that no worker started
    within START_TIMEOUT_SECONDS (the workers went away) is cancelled: the other shards
    take its rows, or the report counts them as not sent and a rerun sends them.
    """
    cancelled: set[UUID] = set()
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    with get_client(sync_client=True) as client:
        while True:
            states = [client.read_flow_run(run_id).state for run_id in ids]
            if all(state is not None and state.is_final() for state in states):
                return states
            stop = stopping.STOP.is_set()
            late = time.monotonic() > deadline
            for run_id, state in zip(ids, states, strict=True):
                if state is None or state.is_final() or run_id in cancelled:
                    continue
                if stop or (late and state.is_scheduled()):
                    why = "the daily-brief run was stopped" if stop else "no worker started it"
                    # Not started: cancelled at once; running: its worker stops it (SIGTERM).
                    end = Cancelled if state.is_scheduled() else Cancelling
                    client.set_flow_run_state(run_id, end(message=why), force=True)
                    cancelled.add(run_id)
            time.sleep(POLL_SECONDS)
