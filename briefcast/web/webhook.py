"""The SendGrid Event Webhook, ``POST /webhooks/sendgrid``.

Bounces, drops, spam reports and unsubscribes turn into subscriber statuses so
later editions skip those addresses. A "blocked" bounce is a soft, often
temporary refusal and suppresses nothing. When a verification key is configured
the Signed Event Webhook signature is required: ECDSA P-256 with SHA-256 over
the timestamp header followed by the raw body, base64 DER in the signature header.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from briefcast import events as provider_events
from briefcast.web import subscriptions
from briefcast.web.context import web_context

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


@router.post("/webhooks/sendgrid")
async def sendgrid_events(request: Request):
    ctx = web_context(request)
    body = await request.body()
    if ctx.webhook_key is not None and not signature_valid(
        ctx.webhook_key,
        request.headers.get(SIGNATURE_HEADER),
        request.headers.get(TIMESTAMP_HEADER),
        body,
    ):
        return JSONResponse({"error": "signature verification failed"}, status_code=403)
    try:
        events = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return JSONResponse({"error": "body is not JSON"}, status_code=400)
    if not isinstance(events, list):
        return JSONResponse({"error": "expected a JSON array of events"}, status_code=400)
    counts = await run_in_threadpool(apply_events, ctx.engine, events)
    await run_in_threadpool(provider_events.record_sendgrid, ctx.engine, events)
    return JSONResponse(counts)
