"""The stages of a daily brief, free of Prefect so the CLI, the flow and tests share them."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path

from briefcast.channels.base import ChannelContext, Recipient
from briefcast.channels.errors import ChannelError
from briefcast.channels.registry import load_adapter
from briefcast.config import Settings, channel_settings
from briefcast.db import get_engine
from briefcast.dispatch import ChannelReport, dispatch_channel
from briefcast.ledger import Ledger
from briefcast.models import Gathered, RenderedEdition, SourceProblem
from briefcast.shard_plan import ShardOf
from briefcast.test_copy import proof_recipient

log = logging.getLogger("briefcast")
progress_log = logging.getLogger("briefcast.progress")


def today_in(settings: Settings) -> date:
    return datetime.now(settings.publication.zone).date()


def no_articles_message(settings: Settings, edition_date: date) -> str:
    """Why an edition has nothing to publish, in the operator's terms."""
    day = edition_date.isoformat()
    hours = settings.edition.lookback_hours
    when = f"on {day}" if hours == 24 else f"in the {hours} hours up to the end of {day}"
    count = len(settings.sources)
    sources = f"the {count} sources have" if count != 1 else "the one source has"
    return (
        f"No articles for {day}: {sources} no new story published {when} "
        f"({settings.publication.timezone}). Nothing was rendered or sent."
    )


def ledger_for(settings: Settings, run_id: str | None = None) -> Ledger:
    return Ledger(get_engine(settings.database_url), run_id=run_id)


def gather_day(settings: Settings, edition_date: date, *, use_ledger: bool = True) -> Gathered:
    from briefcast.gather import gather

    sent_before = None
    if use_ledger:
        ledger = ledger_for(settings)

        def sent_before(keys: list[str]) -> set[str]:
            return ledger.stories_sent_before(edition_date, keys)

    gathered = gather(settings, edition_date, sent_before=sent_before)
    for problem in gathered.problems:
        entry = f" ({problem.entry})" if problem.entry else ""
        log.warning("source %s skipped%s: %s", problem.source, entry, problem.reason)
    return gathered


def as_first_sent(
    settings: Settings, edition: RenderedEdition, gathered: Gathered
) -> tuple[RenderedEdition, Gathered]:
    """The edition as it went out if any of it did, and the stories a fresh render added.

    Deliveries are known by position ("post-3", "msg-2"): sending a re-render of sources
    that changed since (a story published in between) would post one story twice and
    another never. So a rerun sends exactly what the first run sent.
    """
    kept = ledger_for(settings).kept_content(edition.edition_id)
    if kept is None:
        return edition, gathered
    sent = RenderedEdition.model_validate_json(kept)
    keys = {a.key for a in sent.articles}
    late = [
        SourceProblem(
            source=a.source,
            entry=a.title,
            reason=f"not in edition {sent.edition_id}: it had already gone out without it",
        )
        for a in edition.articles
        if a.key not in keys
    ]
    return sent, gathered.model_copy(update={"problems": [*gathered.problems, *late]})


def keep_edition(settings: Settings, edition: RenderedEdition) -> None:
    """Record the edition about to be sent, so reruns send the same (see as_first_sent)."""
    ledger_for(settings).keep_content(edition.edition_id, edition.model_dump_json())


def render_day(settings: Settings, gathered: Gathered, edition_id: str | None = None):
    from briefcast.render import render_edition

    return render_edition(settings, gathered, edition_id=edition_id)


TEST_MARK = "-test-"  # in the ledger id of a test send, before its time stamp


def for_test_send(edition: RenderedEdition, stamp: datetime) -> RenderedEdition:
    """A test send is an email-only edition with its own ledger id."""
    return edition.model_copy(
        update={
            "edition_id": f"{edition.edition_id}{TEST_MARK}{stamp:%Y%m%dT%H%M%S}",
            "x_posts": [],
            "telegram_photo": None,
            "telegram_messages": [],
            "bluesky_posts": [],
            "mastodon_posts": [],
        }
    )


def recipients(
    settings: Settings, edition: RenderedEdition, test_to: list[str]
) -> Iterable[Recipient]:
    """The test recipients (a short list), else every active subscriber, streamed.

    The stream reads the subscriber table page by page when iterated; ``len()``
    counts with one query. It is never a Prefect parameter: each dispatch task
    opens its own from the settings and the edition.
    """
    from briefcast import subscribers

    if test_to:  # the [TEST] copy: links to the real edition; unsubscribes nobody
        real = edition.edition_id.split(TEST_MARK, 1)[0]
        return [proof_recipient(settings, address, real) for address in test_to]
    engine = get_engine(settings.database_url)
    return subscribers.ActiveRecipients(engine, settings, edition.edition_id)


def write_archive(settings: Settings, edition: RenderedEdition) -> Path:
    """The web version behind the view-in-browser link, served by ``briefcast web``."""
    path = settings.data_dir / "archive" / f"{edition.edition_id}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(edition.email.html, encoding="utf-8")
    return path


def write_review_copy(settings: Settings, edition: RenderedEdition) -> str:
    """An edition awaiting approval, kept out of the public archive; return the reviewer's
    unguessable link to it (``/review/{token}`` on ``briefcast web``)."""
    from briefcast import subscribers
    from briefcast.web import links

    path = settings.data_dir / "review" / f"{edition.edition_id}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(edition.email.html, encoding="utf-8")
    return links.review_url(settings, subscribers.link_secret(settings), edition.edition_id)


def open_channel(
    settings: Settings,
    channel: str,
    recipients_: Iterable[Recipient],
    *,
    test_send: bool = False,
):
    """The configured channel's adapter, ready to plan and send; raises if it cannot start."""
    adapter_type = load_adapter(settings.channels[channel].get("type", channel))
    adapter_settings = channel_settings(settings, channel, adapter_type.Settings)
    context = ChannelContext(
        publication=settings.publication,
        data_dir=settings.data_dir,
        recipients=recipients_,
        test_send=test_send,
        extra={"channel": channel},
    )
    return adapter_type(adapter_settings, context)


def channel_problem(
    settings: Settings, channel: str, edition: RenderedEdition, recipients_: Iterable[Recipient]
) -> str | None:
    """Why a channel would refuse this edition (cannot start, content over its limits), or None.

    The same checks the real run makes before its first send, made without sending.
    """
    try:
        adapter = open_channel(settings, channel, recipients_)
    except Exception as exc:  # the same failures deliver() reports as "cannot start"
        return f"cannot start: {exc}"
    try:
        adapter.plan(edition)
    except ChannelError as exc:
        return f"would refuse the edition: {exc}"
    finally:
        adapter.close()
    return None


def deliver(
    settings: Settings,
    edition: RenderedEdition,
    channel: str,
    recipients_: Iterable[Recipient] | None = None,
    *,
    run_id: str | None = None,
    test_send: bool = False,
    shard: tuple[int, int] | None = None,
) -> ChannelReport:
    """Dispatch one edition to one configured channel, recording it in the ledger.

    ``recipients_`` defaults to every active subscriber, streamed from the table.
    ``shard``: (index, count) sends as one of several shards (``briefcast.shards``).
    """
    ledger = ledger_for(settings, run_id)
    if recipients_ is None:
        recipients_ = recipients(settings, edition, [])
    try:
        adapter = open_channel(settings, channel, recipients_, test_send=test_send)
    except Exception as exc:  # config or plugin problem: report it, other channels go on
        log.error("channel %s cannot start: %s", channel, exc)
        return ChannelReport(channel, failed=1, errors=[f"cannot start: {exc}"])
    if shard is not None:
        edition_id = edition.edition_id
        adapter = ShardOf(adapter, *shard, pending=lambda: ledger.has_pending(edition_id, channel))

    def progress(name: str, done: int, total: int) -> None:
        progress_log.info(
            "%s %d/%d", name, done, total, extra={"channel": name, "done": done, "total": total}
        )

    def bounced(addresses: list[str]) -> None:
        if not test_send:
            suppress_hard_bounces(settings, channel, addresses)
            record_bounces(settings, edition.edition_id, channel, addresses)

    try:
        report = dispatch_channel(
            adapter,
            channel,
            edition,
            ledger,
            settings.dispatch,
            progress=progress,
            on_rejected=bounced,
        )
    finally:
        adapter.close()
    if not test_send:
        record_events(settings, edition.edition_id, channel, getattr(adapter, "post_links", {}))
    return report


def record_events(settings: Settings, edition_id: str, channel: str, links: dict) -> None:
    """The social posts' links (receipt -> web address), for the edition report."""
    from briefcast import events

    if links:
        events.record_posts(get_engine(settings.database_url), edition_id, channel, links)


def record_bounces(settings: Settings, edition_id: str, channel: str, addresses: list[str]) -> None:
    """Hard bounces the mail server gave while sending, for the edition report."""
    from briefcast import events

    events.record_bounces(get_engine(settings.database_url), edition_id, channel, addresses)


def suppress_hard_bounces(settings: Settings, channel: str, addresses: list[str]) -> None:
    """Mark subscribers whose address the mail server refused for good as bounced."""
    from briefcast import subscribers

    engine = get_engine(settings.database_url)
    for address in addresses:
        if subscribers.get(engine, address) is not None:
            subscribers.set_status(engine, address, "bounced", f"refused by {channel}")
            log.warning("%s: %s refused for good; marked bounced", channel, address)
