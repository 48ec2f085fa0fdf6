"""What the web app does to the subscriber list, apart from HTTP.

- A subscribe request makes a new address ``pending``; a pending or unsubscribed
  one just gets a fresh confirmation mail. Active, bounced and complained
  addresses get nothing, and the visitor sees the same page either way.
- Confirming activates a pending address, or an unsubscribed one when the link
  was issued after the unsubscribe. Bounced and complained stay suppressed,
  unless the operator sets ``[web] resubscribe_suppressed = true``: then they
  are treated like unsubscribed ones (a fresh mail, and a link issued after the
  bounce or complaint brings them back).
- A pending row nobody confirmed is deleted after ``[web.limits] pending_days``:
  we keep no address whose owner never said yes. (A confirmation link still
  valid after that simply creates the row again.)
- Unsubscribing works for any address we signed a link for, even one not on
  the list (a test send): it is recorded so no import brings it back.
- Provider events only ever make a status more severe.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, delete

from briefcast import subscribers
from briefcast.subscribers import ACTIVE, BOUNCED, COMPLAINED, PENDING, UNSUBSCRIBED

_SEVERITY = {PENDING: 0, ACTIVE: 0, UNSUBSCRIBED: 1, BOUNCED: 2, COMPLAINED: 3}

__all__ = ["ACTIVE", "BOUNCED", "COMPLAINED", "PENDING", "UNSUBSCRIBED"]


_SUPPRESSION_STAMP = {
    UNSUBSCRIBED: "unsubscribed_at",
    BOUNCED: "bounced_at",
    COMPLAINED: "complained_at",
}


def _may_come_back(status: str, readmit_suppressed: bool) -> bool:
    return status == UNSUBSCRIBED or (readmit_suppressed and status in (BOUNCED, COMPLAINED))


def request_subscription(
    engine: Engine, address: str, name: str = "", *, readmit_suppressed: bool = False
) -> bool:
    """Record the request; True when a confirmation mail should go out."""
    current = subscribers.get(engine, address)
    if current is None:
        subscribers.add(engine, address, name=name, source="web", status=PENDING)
        return True
    return current.status == PENDING or _may_come_back(current.status, readmit_suppressed)


def _issued_after(issued_at: int, moment: datetime | None) -> bool:
    # Tokens carry whole seconds: a re-subscribe within the unsubscribe's second still counts.
    return moment is None or issued_at >= int(moment.timestamp())


def confirm(
    engine: Engine, address: str, issued_at: int, *, readmit_suppressed: bool = False
) -> bool:
    """Activate the address behind a valid confirmation link; False when it may not be."""
    current = subscribers.get(engine, address)
    if current is None:
        subscribers.add(engine, address, source="web", status=ACTIVE)
        return True
    if current.status == ACTIVE:
        return True
    if current.status == PENDING or (
        _may_come_back(current.status, readmit_suppressed)
        and _issued_after(issued_at, getattr(current, _SUPPRESSION_STAMP[current.status]))
    ):
        subscribers.set_status(engine, address, ACTIVE, "confirmed on the web")
        return True
    return False


def unsubscribe(engine: Engine, address: str, reason: str) -> None:
    current = subscribers.get(engine, address)
    if current is None:
        subscribers.remove(engine, address, reason)
    elif current.status in (ACTIVE, PENDING):
        subscribers.set_status(engine, address, UNSUBSCRIBED, reason)


def status_of(engine: Engine, address: str) -> str | None:
    current = subscribers.get(engine, address)
    return current.status if current else None


def suppress(engine: Engine, address: str, status: str, reason: str) -> bool:
    """Apply a provider's verdict to a known address; True when its status changed."""
    current = subscribers.get(engine, address)
    if current is None or _SEVERITY[status] <= _SEVERITY[current.status]:
        return False
    subscribers.set_status(engine, address, status, reason)
    return True


def expire_pending(engine: Engine, older_than: datetime) -> int:
    """Delete the sign-ups still pending since before ``older_than``; how many."""
    table = subscribers.subscribers
    with engine.begin() as conn:
        result = conn.execute(
            delete(table).where(table.c.status == PENDING, table.c.updated_at < older_than)
        )
    return result.rowcount
