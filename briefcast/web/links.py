"""The links the web app answers, besides ``/u/{token}`` (see ``briefcast.subscribers``).

- ``/confirm/{token}``: double opt-in, token purpose ``confirm``. The token also
  carries the time it was issued, so it expires, and a link issued before an
  unsubscribe cannot undo it.
- ``/archive/{edition_id}``: the edition's web version (the view-in-browser link).
- ``/review/{token}``: an edition awaiting approval, for the reviewer only. The token
  (purpose ``review``) signs the edition id, so the link cannot be guessed from the
  date, and the page is listed nowhere.
"""

from __future__ import annotations

import time
from urllib.parse import quote

from briefcast import tokens
from briefcast.config import Settings

CONFIRM = "confirm"
REVIEW = "review"
CONFIRM_MAX_AGE_SECONDS = 7 * 24 * 3600
CLOCK_SKEW_SECONDS = 300


def base_url(settings: Settings) -> str:
    return settings.publication.web_base_url.rstrip("/")


def subscribe_url(settings: Settings) -> str:
    return f"{base_url(settings)}/"


def view_url(settings: Settings, edition_id: str) -> str:
    return f"{base_url(settings)}/archive/{quote(edition_id, safe='')}"


def confirm_token(secret: str, address: str, issued_at: float | None = None) -> str:
    issued = int(time.time() if issued_at is None else issued_at)
    return tokens.sign(secret, CONFIRM, f"{address} {issued}")


def confirm_url(settings: Settings, secret: str, address: str) -> str:
    return f"{base_url(settings)}/confirm/{confirm_token(secret, address)}"


def read_confirm_token(secret: str, token: str, now: float | None = None) -> tuple[str, int]:
    """The address and issue time (Unix seconds); BadToken if forged, malformed or expired."""
    payload = tokens.verify(secret, CONFIRM, token)
    address, _, issued_text = payload.rpartition(" ")
    if not address or not issued_text.isdigit():
        raise tokens.BadToken("malformed confirmation token")
    issued = int(issued_text)
    age = (time.time() if now is None else now) - issued
    if age > CONFIRM_MAX_AGE_SECONDS or age < -CLOCK_SKEW_SECONDS:
        raise tokens.BadToken("confirmation link expired")
    return address, issued


def review_url(settings: Settings, secret: str, edition_id: str) -> str:
    return f"{base_url(settings)}/review/{tokens.sign(secret, REVIEW, edition_id)}"


def read_review_token(secret: str, token: str) -> str:
    """The edition id a review link was made for; BadToken if forged or malformed."""
    return tokens.verify(secret, REVIEW, token)
