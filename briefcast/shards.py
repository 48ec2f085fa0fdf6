"""One channel of an edition sent by several processes (shards) sharing its ledger rows.

The run that starts the shards creates the channel's ledger rows once
(:func:`create_rows`). Each shard then runs the ordinary dispatcher over a
reordered plan (:class:`ShardOf`): first its own pages (page ``n`` belongs to
shard ``n % count``), then every other shard's. Claims decide who sends what:
a claim takes only pending rows (on PostgreSQL skipping rows another shard is
claiming), so two shards never send the same row, and a shard that is done
with its own pages takes whatever the others have not claimed yet. A shard
whose process died leaves only its in-flight rows in doubt; a live one finishes
the rest. The channel's report is read back from the ledger (:func:`report_of`).

Prefect-free: ``flows/shards.py`` runs the shards on a work pool's workers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import func, select

from briefcast import pipeline
from briefcast.channels.errors import ChannelError
from briefcast.config import Settings
from briefcast.dispatch import PAGE_SIZE, ChannelReport
from briefcast.ledger import FAILED, HELD, IN_FLIGHT, PENDING, SENT
from briefcast.models import RenderedEdition
from briefcast.shard_plan import pages
from briefcast.tables import deliveries, edition_contents

log = logging.getLogger("briefcast.shards")

REASONS_READ = 20  # failed and in-doubt rows named in the channel's report


class ShardError(RuntimeError):
    """A shard cannot start: the message says why."""


def shard_count(settings: Settings, channel: str) -> int:
    return settings.dispatch.shards.get(channel, 1)


def shareable_database(settings: Settings) -> str | None:
    """Why the workers could not share this ledger, or None when they can."""
    if settings.database_url.startswith("sqlite"):
        return (
            "the ledger is a SQLite file, which workers on other machines cannot share; "
            "set [database] url to a PostgreSQL server every worker reaches"
        )
    return None


def create_rows(settings: Settings, edition: RenderedEdition, channel: str) -> int:
    """The channel's ledger rows for every subscriber, a page per statement; how many planned.

    Raises ChannelError when the channel refuses the edition, ShardError when its
    deliveries depend on each other (nothing is created either way).
    """
    ledger = pipeline.ledger_for(settings)
    adapter = pipeline.open_channel(settings, channel, pipeline.recipients(settings, edition, []))
    try:
        planned = adapter.plan(edition)
        seq = 0
        for page in pages(planned, PAGE_SIZE):
            if any(d.after is not None for d in page):
                raise ShardError(
                    f"{channel}'s deliveries depend on each other (a thread or a chat in "
                    "order); only a mailing list is sent in shards"
                )
            ledger.add(
                edition.edition_id, channel, [(d.target, seq + n) for n, d in enumerate(page)]
            )
            seq += len(page)
    finally:
        adapter.close()
    ledger.reopen_retryable(edition.edition_id, channel)
    return seq


def kept_edition(settings: Settings, edition_id: str) -> RenderedEdition:
    """The edition as the starting run kept it in the ledger (shards never render)."""
    engine = pipeline.ledger_for(settings).engine
    with engine.connect() as conn:
        content = conn.scalar(
            select(edition_contents.c.content).where(edition_contents.c.edition_id == edition_id)
        )
    if content is None:
        raise ShardError(
            f"edition {edition_id} is not kept in the ledger at {engine.url!r}: a shard sends "
            "only an edition its daily-brief run recorded; does this worker reach the same "
            "database?"
        )
    return RenderedEdition.model_validate_json(content)


def deliver_shard(
    settings: Settings, edition_id: str, channel: str, index: int, count: int, run_id: str
) -> ChannelReport:
    """Send shard ``index`` of ``count`` of one channel; the report counts its own sends."""
    problem = shareable_database(settings)
    if problem:
        raise ShardError(problem)
    if channel not in settings.channels:
        raise ShardError(f"channel {channel!r} is not configured")
    edition = kept_edition(settings, edition_id)
    return pipeline.deliver(settings, edition, channel, run_id=run_id, shard=(index, count))


def own_rows(settings: Settings, edition_id: str, channel: str, run_id: str) -> dict[str, int]:
    """How many of the channel's rows this run holds, by state (what it sent, failed, left)."""
    engine = pipeline.ledger_for(settings).engine
    with engine.connect() as conn:
        return dict(
            conn.execute(
                select(deliveries.c.state, func.count())
                .where(
                    deliveries.c.edition_id == edition_id,
                    deliveries.c.channel == channel,
                    deliveries.c.run_id == run_id,
                )
                .group_by(deliveries.c.state)
            ).all()
        )


def report_of(
    settings: Settings,
    edition_id: str,
    channel: str,
    run_ids: Sequence[str],
    problems: Sequence[str] = (),
) -> ChannelReport:
    """The channel's report once its shards have ended, read from the ledger.

    ``run_ids``: the shards' run ids (what they sent is "delivered", the rest of
    what is sent "skipped"); ``problems``: shards that did not complete, which
    fail the report whatever the rows say.
    """
    engine = pipeline.ledger_for(settings).engine
    mine = (deliveries.c.edition_id == edition_id, deliveries.c.channel == channel)
    with engine.connect() as conn:
        counts = dict(
            conn.execute(
                select(deliveries.c.state, func.count()).where(*mine).group_by(deliveries.c.state)
            ).all()
        )
        delivered = conn.scalar(
            select(func.count()).where(
                *mine, deliveries.c.state == SENT, deliveries.c.run_id.in_(list(run_ids))
            )
        )
        failed = conn.execute(
            select(deliveries.c.target, deliveries.c.error)
            .where(*mine, deliveries.c.state == FAILED)
            .order_by(deliveries.c.seq)
            .limit(REASONS_READ)
        ).all()
        doubtful = conn.execute(
            select(deliveries.c.target, deliveries.c.run_id, deliveries.c.error)
            .where(*mine, deliveries.c.state == IN_FLIGHT)
            .order_by(deliveries.c.seq)
            .limit(REASONS_READ)
        ).all()
    report = ChannelReport(
        channel,
        planned=sum(counts.values()),
        delivered=delivered,
        skipped=counts.get(SENT, 0) - delivered,
        failed=counts.get(FAILED, 0),
        in_doubt=counts.get(IN_FLIGHT, 0),
        held=counts.get(HELD, 0) + counts.get(PENDING, 0),
    )
    for problem in problems:
        report.note(problem, always=True)
    report.stopped = bool(problems)
    for target, error in failed:
        report.note(f"{target}: {error}")
    for target, run_id, error in doubtful:
        report.note(
            f"{target}: in doubt, it may have gone out ({error or 'no outcome'}; "
            f"claimed by run {run_id})"
        )
    report.more_errors += max(0, report.failed - len(failed))
    report.more_errors += max(0, report.in_doubt - len(doubtful))
    if counts.get(PENDING):
        report.note(f"{counts[PENDING]} not sent (pending): the next run sends them", always=True)
    return report


def refused(channel: str, exc: ChannelError) -> ChannelReport:
    log.error("%s: edition refused before sending: %s", channel, exc)
    return ChannelReport(channel, failed=1, errors=[f"edition refused before sending: {exc}"])
