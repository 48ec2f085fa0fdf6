"""The SendGrid Event Webhook, ``POST /webhooks/sendgrid``.

Bounces, drops, spam reports and unsubscribes turn into subscriber statuses so
later editions skip those addresses. A "blocked" bounce is a soft, often
temporary refusal and suppresses nothing.

Safe by default: every batch must carry a valid Signed Event Webhook signature
(ECDSA P-256 with SHA-256 over the timestamp header followed by the raw body, base64
DER in the signature header) made within ``[web] webhook_max_age_seconds`` (25 h:
SendGrid retries a failed POST for up to 24 h). Without a verification key the
endpoint refuses everything (401), unless the operator sets
``allow_unsigned_webhook = true``, which the app warns about at start-up. A replay
inside the window changes nothing new: a status only ever gets more severe.

The answer is the same whichever addresses the batch named (``{"received": N}``),
so it cannot be used to find out who is subscribed.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from briefcast import events as provider_events
from briefcast.reconcile import settle_sendgrid_events
from briefcast.web import subscriptions
from briefcast.web.context import WebContext, web_context

log = logging.getLogger("briefcast.web")

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"

_DROPPED_REASONS = {
    "bounced address": subscriptions.BOUNCED,
    "unsubscribed address": subscriptions.UNSUBSCRIBED,
    "spam reporting address": subscriptions.COMPLAINED,
}


def load_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """Parse the key SendGrid shows (base64 DER), or the same key as PEM; ValueError if neither."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error, TypeError) as exc:
        raise ValueError("not a base64 DER or PEM public key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("not an elliptic-curve (ECDSA) public key")
    return key


FUTURE_SKEW_SECONDS = 300
_SECONDS = re.compile(r"[0-9]{1,12}")


def timestamp_fresh(timestamp: str | None, now: float, max_age_seconds: float) -> bool:
    """Unix seconds, digits only, no older than ``max_age_seconds`` nor from the future."""
    if not timestamp or not _SECONDS.fullmatch(timestamp):
        return False
    age = now - int(timestamp)
    return -FUTURE_SKEW_SECONDS <= age <= max_age_seconds


def signature_valid(
    key: ec.EllipticCurvePublicKey, signature: str | None, timestamp: str | None, body: bytes
) -> bool:
    if not signature or not timestamp:
        return False
    try:
        der = base64.b64decode(signature, validate=True)
        key.verify(der, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


def status_for(event: dict[str, Any]) -> str | None:
    """The subscriber status an event calls for, or None when it changes nothing."""
    kind = event.get("event")
    if kind == "bounce":
        return None if event.get("type") == "blocked" else subscriptions.BOUNCED
    if kind == "dropped":
        return _DROPPED_REASONS.get(str(event.get("reason", "")).strip().lower())
    if kind == "spamreport":
        return subscriptions.COMPLAINED
    if kind in ("unsubscribe", "group_unsubscribe"):
        return subscriptions.UNSUBSCRIBED
    return None


def _reason(event: dict[str, Any]) -> str:
    parts = [f"sendgrid {event.get('event')}"]
    for key in ("type", "reason", "status"):
        if event.get(key):
            parts.append(str(event[key]))
    return ": ".join(parts)[:500]


def apply_events(engine, events: list[Any]) -> dict[str, int]:
    """Update subscribers from a batch of events; count what changed and what was ignored."""
    counts = {"updated": 0, "ignored": 0}
    for event in events:
        status = status_for(event) if isinstance(event, dict) else None
        address = event.get("email") if isinstance(event, dict) else None
        if (
            status
            and isinstance(address, str)
            and subscriptions.suppress(engine, address, status, _reason(event))
        ):
            counts["updated"] += 1
        else:
            counts["ignored"] += 1
    return counts


router = APIRouter()


def _refused(reason: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=401)


def _authentic(ctx: WebContext, request: Request, body: bytes) -> str | None:
    """Why this batch may not be believed, or None when it may."""
    if ctx.webhook_key is None:
        if ctx.settings.web.allow_unsigned_webhook:
            return None
        return "this endpoint takes signed events only; no verification key is configured"
    timestamp = request.headers.get(TIMESTAMP_HEADER)
    if not timestamp_fresh(timestamp, ctx.clock(), ctx.settings.web.webhook_max_age_seconds):
        return "timestamp missing, not Unix seconds, or outside the accepted window"
    if not signature_valid(ctx.webhook_key, request.headers.get(SIGNATURE_HEADER), timestamp, body):
        return "signature verification failed"
    return None


def _parse(body: bytes) -> list[Any] | JSONResponse:
    try:
        events = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return JSONResponse({"error": "body is not JSON"}, status_code=400)
    if not isinstance(events, list):
        return JSONResponse({"error": "expected a JSON array of events"}, status_code=400)
    return events


@router.post("/webhooks/sendgrid")
async def sendgrid_events(request: Request):
    ctx = web_context(request)
    body = await request.body()  # at most [web.limits] max_body_bytes (BodyCap)
    problem = _authentic(ctx, request, body)
    if problem:
        return _refused(problem)
    events = _parse(body)
    if isinstance(events, JSONResponse):
        return events

    # Verified events from here on.
    counts = await run_in_threadpool(apply_events, ctx.engine, events)
    await run_in_threadpool(settle_sendgrid_events, ctx.settings, ctx.engine, events)
    await run_in_threadpool(provider_events.record_sendgrid, ctx.engine, events)
    log.info("sendgrid webhook: %d events, %d changed a subscriber", len(events), counts["updated"])
    return JSONResponse({"received": len(events)})
