"""The dispatcher: the one place where retries, provider waits and the ledger meet.

For one channel it plans the edition's deliveries, records them in the ledger,
skips what was already sent, and sends the rest in batches: claim, one attempt,
record. Provider waits (429) are honoured here, transient failures retried with
backoff, permanent ones recorded with the provider's reason. Every adapter gets
the same behaviour.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from briefcast.channels.base import Channel, Delivery, Receipt
from briefcast.channels.errors import (
    AuthError,
    ChannelError,
    DeliveryError,
    PermanentError,
    RateLimited,
    RecipientRejected,
    TransientError,
)
from briefcast.config import Dispatch
from briefcast.ledger import FAILED, IN_FLIGHT, PENDING, SENT, Ledger
from briefcast.models import RenderedEdition
from briefcast.reconcile import settle_from_provider

log = logging.getLogger("briefcast.dispatch")


@dataclass
class ChannelReport:
    channel: str
    planned: int = 0
    delivered: int = 0  # sent in this run
    skipped: int = 0  # sent by an earlier run
    failed: int = 0
    in_doubt: int = 0
    held: int = 0
    errors: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # targets refused for good (hard bounces)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.in_doubt == 0

    def as_row(self) -> dict[str, object]:
        return {
            "channel": self.channel,
            "delivered": self.delivered,
            "skipped": self.skipped,
            "failed": self.failed,
            "in doubt": self.in_doubt,
            "held back": self.held,
            "reasons": "; ".join(self.errors[:5]),
        }


Progress = Callable[[str, int, int], None]


def dispatch_channel(
    adapter: Channel,
    channel: str,
    edition: RenderedEdition,
    ledger: Ledger,
    policy: Dispatch,
    *,
    sleep: Callable[[float], None] = time.sleep,
    progress: Progress | None = None,
) -> ChannelReport:
    report = ChannelReport(channel)
    try:
        planned = adapter.plan(edition)
    except ChannelError as exc:
        report.failed = 1
        report.errors.append(f"edition refused before sending: {exc}")
        log.error("%s: edition refused before sending: %s", channel, exc)
        return report
    report.planned = len(planned)
    ledger.ensure(edition.edition_id, channel, [d.target for d in planned])
    ledger.reopen_retryable(edition.edition_id, channel)
    settle_from_provider(adapter, ledger, edition.edition_id, channel, planned)  # found: sent
    rows = ledger.rows(edition.edition_id, channel)
    receipts = {t: r.receipt for t, r in rows.items() if r.state == SENT and r.receipt}

    todo: list[Delivery] = []
    for delivery in planned:
        row = rows[delivery.target]
        if row.state == SENT:
            report.skipped += 1
        elif row.state == IN_FLIGHT:
            report.in_doubt += 1
            report.errors.append(f"{delivery.target}: in doubt (claimed by run {row.run_id})")
        elif row.state == FAILED:
            report.failed += 1
            report.errors.append(f"{delivery.target}: {row.error}")
        elif row.state == PENDING:
            todo.append(delivery)

    admit = getattr(adapter, "admit", None)
    if admit is not None and todo:
        allowed, reason = admit(todo)
        if allowed < len(todo):
            held = todo[allowed:]
            todo = todo[:allowed]
            ledger.mark_held([rows[d.target].id for d in held], reason)
            report.held += len(held)
            report.errors.append(f"{len(held)} held back: {reason}")
            log.warning("%s: %d held back: %s", channel, len(held), reason)

    total = len(planned)
    done = total - len(todo)  # sent before, in doubt, failed before or held back: settled
    if progress:
        progress(channel, done, total)
    size = max(1, getattr(adapter, "max_batch", 1))
    refused: AuthError | None = None  # the provider refused our own credentials
    not_attempted = 0
    validated: list[Receipt] = []  # accepted, not delivered (a provider's sandbox)
    for start in range(0, len(todo), size):
        batch = []
        for delivery in todo[start : start + size]:
            if delivery.after is not None:
                parent = receipts.get(delivery.after)
                if parent is None:
                    report.failed += 1
                    report.errors.append(
                        f"{delivery.target}: not sent, {delivery.after} did not go out"
                    )
                    continue
                delivery = replace(delivery, parent_receipt=parent)
            batch.append(delivery)
        if refused is not None:  # every later batch would be refused too: they stay pending
            not_attempted += len(batch)
            batch = []
        ids = {d.target: rows[d.target].id for d in batch}
        claimed = ledger.claim(ids.values())
        lost = [d for d in batch if ids[d.target] not in claimed]
        for delivery in lost:  # another run took it between our read and our claim
            report.in_doubt += 1
            report.errors.append(f"{delivery.target}: claimed by another run")
        batch = [d for d in batch if ids[d.target] in claimed]
        outcomes = _send_with_retries(adapter, channel, batch, policy, sleep)
        for delivery, outcome in zip(batch, outcomes, strict=True):
            row_id = ids[delivery.target]
            if isinstance(outcome, Receipt) and not outcome.delivered:
                ledger.release([row_id], outcome.detail or "accepted, not delivered")
                validated.append(outcome)
                report.held += 1
            elif isinstance(outcome, Receipt):
                ledger.mark_sent(row_id, outcome.provider_id)
                receipts[delivery.target] = outcome.provider_id
                report.delivered += 1
            elif outcome is None:  # unknown fate: leave in flight, reported as in doubt
                report.in_doubt += 1
                report.errors.append(f"{delivery.target}: in doubt, it may have gone out")
            else:
                # Refused credentials sent nothing: the next run, once they are fixed, retries.
                auth = isinstance(outcome, AuthError)
                ledger.mark_failed(row_id, str(outcome), retryable=outcome.retryable or auth)
                refused = outcome if auth else refused
                report.failed += 1
                report.errors.append(f"{delivery.target}: {outcome}")
                if isinstance(outcome, RecipientRejected):
                    report.rejected.append(delivery.target)
        done += len(todo[start : start + size])  # sent, failed or not sent
        if progress:
            progress(channel, done, total)
    if not_attempted:
        report.failed += not_attempted
        report.errors.append(f"{not_attempted} not attempted after: {refused}")
    if validated:
        reason = validated[0].detail or "accepted, not delivered"
        report.errors.append(f"{len(validated)} held back: {reason}")
    return report


def _send_with_retries(
    adapter: Channel,
    channel: str,
    batch: Sequence[Delivery],
    policy: Dispatch,
    sleep: Callable[[float], None],
) -> list[Receipt | DeliveryError | None]:
    """Send until every delivery has a final outcome; transient ones are retried."""
    outcomes: dict[str, Receipt | DeliveryError | None] = {}
    remaining = list(batch)
    attempt = 0
    while remaining:
        attempt += 1
        try:
            results = adapter.send(remaining)
        except DeliveryError as exc:
            results = [exc] * len(remaining)
        except ChannelError as exc:
            results = [PermanentError(str(exc), channel=channel)] * len(remaining)
        except Exception:  # a bug or an unmapped error: the provider may have sent it
            log.exception(
                "%s: unexpected error; %d deliveries left in flight", channel, len(remaining)
            )
            for delivery in remaining:
                outcomes[delivery.target] = None
            break
        retry: list[Delivery] = []
        wait = 0.0
        for delivery, result in zip(remaining, results, strict=True):
            if isinstance(result, TransientError) and attempt < policy.max_attempts:
                if isinstance(result, RateLimited) and result.retry_after > policy.max_wait_seconds:
                    outcomes[delivery.target] = result
                    continue
                retry.append(delivery)
                if isinstance(result, RateLimited):
                    wait = max(wait, result.retry_after)
                else:
                    wait = max(wait, policy.backoff_seconds * 2 ** (attempt - 1))
            else:
                outcomes[delivery.target] = result
        if retry:
            log.warning(
                "%s: %d deliveries hit a transient failure (attempt %d): %s; waiting %.1fs",
                channel,
                len(retry),
                attempt,
                next(r for d, r in zip(remaining, results, strict=True) if d in retry),
                wait,
            )
            sleep(wait)
        remaining = retry
    return [outcomes[d.target] for d in batch]
