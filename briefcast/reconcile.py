"""Deliveries in doubt that settle themselves, where the provider lets us look.

A row is in doubt when its request went out and no answer came back (a timeout, a
dropped connection, a killed run). Resending blindly risks a duplicate, so before
anyone resends, the provider is asked:

- **SendGrid** tells us itself: its Event Webhook posts ``processed`` and
  ``delivered`` events carrying our ``edition_id`` custom arg and the address;
  :func:`settle_sendgrid_events` marks the matching rows sent (``briefcast web``
  calls it for every batch).
- **X** lets us read the account's own posts: an adapter with a ``find_sent``
  method is asked, before the dispatcher sends anything, whether posts it may
  already have made are on the account (:func:`settle_from_provider`); a match is
  marked sent with the post's id as receipt, so a thread replies to it.
- **Telegram** (the Bot API cannot read a chat's history) and **SMTP** (no
  standard way to ask a server what it accepted) are left to the operator:
  :data:`WHERE_TO_LOOK` says where.

``briefcast ledger reconcile`` runs the checks on demand (:func:`reconcile_edition`).
Adapters never touch the database: they answer ``{target: receipt}`` and this
module writes the ledger.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, or_, select, update

from briefcast.channels.base import Delivery
from briefcast.channels.errors import ChannelError
from briefcast.config import Settings
from briefcast.ledger import FAILED, IN_FLIGHT, PENDING, SENT, Ledger, deliveries
from briefcast.ledger import now as utc_now

log = logging.getLogger("briefcast.reconcile")

SENDGRID_ARRIVED = {"processed", "delivered"}  # SendGrid took the message for delivery
CLOCK_MARGIN = timedelta(minutes=10)  # our clock against the provider's, when looking back
CHUNK = 500

WHERE_TO_LOOK = {
    "sendgrid": "settles itself when SendGrid's Event Webhook reaches `briefcast web` "
    "(processed or delivered events); otherwise look the addresses up in SendGrid's "
    "Activity Feed",
    "smtp": "look the addresses up in the mail server's log (or its sent folder)",
    "telegram": "the Bot API cannot read a chat's history: open the chat and compare its "
    "last messages with the edition's preview (telegram.json)",
    "outbox": "look for the delivery's file in the outbox folder",
    "x": "look at the account's posts",
    "bluesky": "look at the account's posts (its bsky.app link settles it as sent)",
    "mastodon": "look at the account's posts; within an hour of the attempt `resend` is safe "
    "(the status's idempotency key makes the instance answer with the first one)",
}


def may_have_arrived():
    """Rows whose last attempt may have reached the provider.

    In doubt (in flight), or sent back by an operator or a failed attempt after going
    out at least once: a provider error such as X's 503 does not prove nothing was made.
    """
    attempted = and_(
        deliveries.c.attempts > 0,
        or_(
            deliveries.c.state == PENDING,
            and_(deliveries.c.state == FAILED, deliveries.c.retryable.is_(True)),
        ),
    )
    return or_(deliveries.c.state == IN_FLIGHT, attempted)


def mark_found(engine: Engine, edition_id: str, channel: str, found: dict[str, str]) -> list[str]:
    """Record what the provider showed as sent; the targets changed (one transaction a chunk)."""
    changed: list[str] = []
    items = list(found.items())
    for start in range(0, len(items), CHUNK):
        with engine.begin() as conn:
            for target, receipt in items[start : start + CHUNK]:
                done = conn.execute(
                    update(deliveries)
                    .where(
                        deliveries.c.edition_id == edition_id,
                        deliveries.c.channel == channel,
                        deliveries.c.target == target,
                        may_have_arrived(),
                    )
                    .values(state=SENT, receipt=receipt, error=None, updated_at=utc_now())
                ).rowcount
                if done:
                    changed.append(target)
    return changed


@dataclass
class Reconciled:
    """What the checks did for one channel of one edition."""

    channel: str
    in_doubt: int = 0  # rows in flight before the check
    settled: dict[str, str] = field(default_factory=dict)  # target: receipt
    left: int = 0  # still in doubt afterwards
    note: str = ""  # why nothing was looked up, or what went wrong

    def line(self) -> str:
        head = f"{self.channel}: {self.in_doubt} in doubt"
        if self.settled:
            shown = ", ".join(f"{t} ({r})" for t, r in list(self.settled.items())[:20])
            more = f" and {len(self.settled) - 20} more" if len(self.settled) > 20 else ""
            head += f", {len(self.settled)} found at the provider and marked sent: {shown}{more}"
        if self.left:
            head += f"; {self.left} still in doubt"
        return head + (f": {self.note}" if self.note else "")


# -- providers we can ask -----------------------------------------------------------
def look_up(
    adapter: Any, engine: Engine, edition_id: str, channel: str, planned: Sequence[Delivery]
) -> Reconciled | None:
    """Ask an adapter with ``find_sent`` about the planned deliveries that may have gone out.

    None when the adapter cannot look, or nothing may have gone out (no request is made).
    """
    find_sent = getattr(adapter, "find_sent", None)
    if find_sent is None:
        return None
    with engine.connect() as conn:
        rows = conn.execute(
            select(deliveries.c.target, deliveries.c.state, deliveries.c.created_at).where(
                deliveries.c.edition_id == edition_id,
                deliveries.c.channel == channel,
                may_have_arrived(),
            )
        ).all()
    if not rows:
        return None
    result = Reconciled(channel, in_doubt=sum(1 for r in rows if r.state == IN_FLIGHT))
    candidates = {r.target for r in rows}
    asked = [d for d in planned if d.target in candidates]
    since = min(_aware(r.created_at) for r in rows) - CLOCK_MARGIN
    try:
        found = find_sent(asked, since) if asked else {}
    except ChannelError as exc:
        result.note = f"could not look: {exc}"
        result.left = result.in_doubt
        log.warning("%s: could not look up deliveries that may have gone out: %s", channel, exc)
        return result
    changed = set(mark_found(engine, edition_id, channel, found))
    result.settled = {t: r for t, r in found.items() if t in changed}
    in_flight = {r.target for r in rows if r.state == IN_FLIGHT}
    result.left = len(in_flight - changed)
    for target, receipt in result.settled.items():
        log.warning(
            "%s: %s had gone out after all (found at the provider as %s); marked sent",
            channel,
            target,
            receipt,
        )
    return result


def _aware(stamp: datetime) -> datetime:
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=utc_now().tzinfo)  # SQLite drops it


def settle_from_provider(
    adapter: Any, ledger: Ledger, edition_id: str, channel: str, planned: Sequence[Delivery]
) -> Reconciled | None:
    """The dispatcher's check before sending: settle what the provider shows as sent."""
    return look_up(adapter, ledger.engine, edition_id, channel, planned)


# -- SendGrid's Event Webhook ---------------------------------------------------------
def sendgrid_channels(settings: Settings) -> list[str]:
    return [
        name for name, conf in settings.channels.items() if conf.get("type", name) == "sendgrid"
    ]


def settle_sendgrid_events(settings: Settings, engine: Engine, events: Iterable[Any]) -> int:
    """Mark sent the rows SendGrid's ``processed``/``delivered`` events prove went out.

    An event names the edition (our ``edition_id`` custom arg) and the address; the
    receipt is the X-Message-Id, the part of ``sg_message_id`` before its first dot.
    A row is settled only when exactly one SendGrid channel has it in doubt. Returns
    how many rows were settled.
    """
    channels = sendgrid_channels(settings)
    if not channels:
        return 0
    by_edition: dict[str, dict[str, str]] = {}
    for event in events:
        if not isinstance(event, dict) or event.get("event") not in SENDGRID_ARRIVED:
            continue
        edition_id, email = event.get("edition_id"), event.get("email")
        if not isinstance(edition_id, str) or not isinstance(email, str):
            continue
        receipt = str(event.get("sg_message_id") or "").split(".", 1)[0] or "sendgrid-event"
        by_edition.setdefault(edition_id, {})[email.strip().lower()] = receipt
    settled = 0
    for edition_id, receipts in by_edition.items():
        found: dict[str, dict[str, str]] = {}
        addresses = list(receipts)
        for start in range(0, len(addresses), CHUNK):
            with engine.connect() as conn:
                rows = conn.execute(
                    select(deliveries.c.channel, deliveries.c.target).where(
                        deliveries.c.edition_id == edition_id,
                        deliveries.c.channel.in_(channels),
                        deliveries.c.target.in_(addresses[start : start + CHUNK]),
                        may_have_arrived(),
                    )
                ).all()
            owners: dict[str, list[str]] = {}
            for row in rows:
                owners.setdefault(row.target, []).append(row.channel)
            for target, names in owners.items():
                if len(names) == 1:
                    found.setdefault(names[0], {})[target] = receipts[target]
        for channel, targets in found.items():
            changed = mark_found(engine, edition_id, channel, targets)
            settled += len(changed)
            if changed:
                log.info(
                    "%s: %d deliveries of %s in doubt confirmed by SendGrid's events",
                    channel,
                    len(changed),
                    edition_id,
                )
    return settled


# -- on demand: briefcast ledger reconcile -------------------------------------------
def in_doubt_counts(engine: Engine, edition_id: str) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(deliveries.c.channel, deliveries.c.target).where(
                deliveries.c.edition_id == edition_id, may_have_arrived()
            )
        ).all()
        in_flight = conn.execute(
            select(deliveries.c.channel).where(
                deliveries.c.edition_id == edition_id, deliveries.c.state == IN_FLIGHT
            )
        ).all()
    counts = dict.fromkeys((r.channel for r in rows), 0)
    for row in in_flight:
        counts[row.channel] += 1
    return counts


def reconcile_edition(
    settings: Settings, edition_id: str, channels: list[str] | None = None
) -> list[Reconciled]:
    """Run the checks for every channel of the edition with deliveries that may have gone out."""
    from briefcast import pipeline

    ledger = pipeline.ledger_for(settings)
    results = []
    for channel, in_doubt in sorted(in_doubt_counts(ledger.engine, edition_id).items()):
        if channels is not None and channel not in channels:
            continue
        result = _check_channel(settings, ledger, edition_id, channel)
        if result is None:
            conf = settings.channels.get(channel)
            kind = conf.get("type", channel) if conf is not None else ""
            where = WHERE_TO_LOOK.get(kind, "check with the provider")
            result = Reconciled(channel, in_doubt, left=in_doubt, note=where)
        if result.in_doubt or result.settled:
            results.append(result)
    return results


def _check_channel(
    settings: Settings, ledger: Ledger, edition_id: str, channel: str
) -> Reconciled | None:
    """Ask the channel's provider, if its adapter can look; None when it cannot."""
    from briefcast import pipeline
    from briefcast.channels.registry import load_adapter
    from briefcast.models import RenderedEdition

    conf = settings.channels.get(channel)
    if conf is None:
        return None
    kind = conf.get("type", channel)
    kept = ledger.kept_content(edition_id)
    try:
        can_look = hasattr(load_adapter(kind), "find_sent")
    except LookupError:  # an adapter that is not installed (or broken) cannot be asked
        return None
    if not can_look or kept is None:
        return None
    try:
        adapter = pipeline.open_channel(settings, channel, [])
    except Exception as exc:  # e.g. a secret that is not set here
        counts = in_doubt_counts(ledger.engine, edition_id)
        return Reconciled(
            channel, counts[channel], left=counts[channel], note=f"cannot start: {exc}"
        )
    try:
        planned = adapter.plan(RenderedEdition.model_validate_json(kept))
        result = look_up(adapter, ledger.engine, edition_id, channel, planned)
    except ChannelError as exc:
        counts = in_doubt_counts(ledger.engine, edition_id)
        return Reconciled(
            channel, counts[channel], left=counts[channel], note=f"could not look: {exc}"
        )
    finally:
        adapter.close()
    if result is not None and result.left and not result.note:
        result.note = "not on the account: " + WHERE_TO_LOOK.get(kind, "check by hand")
    return result
