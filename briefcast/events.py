"""What happened to an edition after it was sent: provider events, per edition and channel.

One row per event: SendGrid's delivered, open, click (with the URL), bounce,
dropped, spamreport and unsubscribe from the Event Webhook; SMTP hard bounces;
one-click and page unsubscribes from the web app; the links of social posts.
SendGrid retries webhook batches, so an event it sends twice (same
``sg_event_id``) is kept once. The edition report (``briefcast.report``) counts
these rows; nothing here changes who gets the next edition (the webhook and the
web app do that).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from briefcast.ledger import SENT
from briefcast.tables import deliveries, events

log = logging.getLogger("briefcast.events")

# Event kinds (SendGrid's own names where they come from SendGrid).
DELIVERED, OPEN, CLICK, BOUNCE, DROPPED = "delivered", "open", "click", "bounce", "dropped"
SPAMREPORT, UNSUBSCRIBE, POSTED = "spamreport", "unsubscribe", "posted"
SENDGRID_KINDS = {
    "processed",
    "deferred",
    DELIVERED,
    OPEN,
    CLICK,
    BOUNCE,
    DROPPED,
    SPAMREPORT,
    UNSUBSCRIBE,
    "group_unsubscribe",
    "group_resubscribe",
}
EMAIL_TYPES = ("sendgrid", "smtp")


def now() -> datetime:
    return datetime.now(UTC)


def _store(engine: Engine, rows: list[dict[str, Any]]) -> int:
    """Insert rows, skipping any whose (channel, provider_event_id) is already stored."""
    if not rows:
        return 0
    try:
        with engine.begin() as conn:
            conn.execute(insert(events), rows)
        return len(rows)
    except IntegrityError:  # a batch SendGrid sent again: keep the events not seen yet
        stored = 0
        for row in rows:
            try:
                with engine.begin() as conn:
                    conn.execute(insert(events), [row])
                stored += 1
            except IntegrityError:
                continue
        return stored


def _row(edition_id, channel, kind, *, recipient=None, url=None, detail=None, event_id=None, at):
    return {
        "edition_id": edition_id,
        "channel": channel,
        "kind": kind,
        "recipient": recipient.strip().lower() if isinstance(recipient, str) else None,
        "url": url,
        "detail": detail,
        "provider_event_id": event_id,
        "occurred_at": at,
        "recorded_at": now(),
    }


def _timestamp(value: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return now()


def sendgrid_row(event: Any) -> dict[str, Any] | None:
    """The row for one SendGrid webhook event, or None for something that is not one."""
    if not isinstance(event, dict) or event.get("event") not in SENDGRID_KINDS:
        return None
    kind = event["event"]
    kind = UNSUBSCRIBE if kind == "group_unsubscribe" else kind
    detail = ": ".join(str(event[k]) for k in ("type", "reason", "status") if event.get(k))
    edition = event.get("edition_id")
    event_id = event.get("sg_event_id")
    return _row(
        str(edition)[:100] if edition else None,
        "sendgrid",
        kind,
        recipient=event.get("email"),
        url=str(event["url"])[:2000] if kind == CLICK and event.get("url") else None,
        detail=detail[:500] or None,
        event_id=str(event_id)[:200] if event_id else None,
        at=_timestamp(event.get("timestamp")),
    )


def record_sendgrid(engine: Engine, batch: Iterable[Any]) -> int:
    """Keep a verified Event Webhook batch; the number of events new to us."""
    rows = [row for row in map(sendgrid_row, batch) if row is not None]
    return _store(engine, rows)


def record_bounces(engine: Engine, edition_id: str, channel: str, addresses: list[str]) -> int:
    """Hard bounces an SMTP server gave at RCPT TO while sending ``edition_id``."""
    at = now()
    rows = [
        _row(
            edition_id,
            channel,
            BOUNCE,
            recipient=address,
            detail="refused at RCPT TO",
            event_id=f"{edition_id}:bounce:{address.lower()}",
            at=at,
        )
        for address in addresses
    ]
    return _store(engine, rows)


def last_edition_for(engine: Engine, address: str) -> tuple[str, str] | None:
    """(edition, channel) of the latest email this address was sent, or None."""
    with engine.connect() as conn:
        found = conn.execute(
            select(deliveries.c.edition_id, deliveries.c.channel)
            .where(deliveries.c.target == address.strip().lower(), deliveries.c.state == SENT)
            .order_by(deliveries.c.updated_at.desc(), deliveries.c.id.desc())
            .limit(1)
        ).first()
    return (found.edition_id, found.channel) if found else None


def record_unsubscribe(engine: Engine, address: str, how: str) -> None:
    """An unsubscribe in the web app, counted against the last edition the address got."""
    last = last_edition_for(engine, address)
    edition_id, channel = last if last else (None, "web")
    row = _row(edition_id, channel, UNSUBSCRIBE, recipient=address, detail=how, at=now())
    _store(engine, [row])


def record_posts(engine: Engine, edition_id: str, channel: str, links: dict[str, str]) -> int:
    """The links of posts a social channel made for ``edition_id`` (receipt -> link)."""
    at = now()
    rows = [
        _row(edition_id, channel, POSTED, url=link, event_id=receipt[:200], at=at)
        for receipt, link in links.items()
    ]
    return _store(engine, rows)
