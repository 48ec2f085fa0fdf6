"""The Mastodon adapter: the edition's statuses through ``Mastodon.py`` (instance URL + token).

In thread mode status N replies to status N-1 (``in_reply_to_id`` from the
ledger, so a rerun continues the same thread). The limit is the instance's own
(``configuration.statuses.max_characters`` of ``/api/v2/instance``, 500 when it
does not say), checked before the first status goes out.

Every status carries an ``Idempotency-Key`` made from the edition, channel and
target: Mastodon keeps it for an hour and answers a repeat with the first
status, so a request whose answer was lost is simply retried. Past that hour a
repeat could post twice, so such a status is left in doubt instead.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import requests
from briefcast.channels.base import BaseChannel, ChannelContext, ChannelSettings, Delivery, Receipt
from briefcast.channels.errors import (
    AuthError,
    ContentError,
    DeliveryError,
    PermanentError,
    RateLimited,
    TransientError,
)
from mastodon import (
    Mastodon,
    MastodonAPIError,
    MastodonError,
    MastodonNetworkError,
    MastodonNotFoundError,
    MastodonRatelimitError,
    MastodonServerError,
    MastodonUnauthorizedError,
)
from pydantic import Field, field_validator

from briefcast.config import Secret
from briefcast.models import RenderedEdition
from briefcast.render.social_text import mastodon_length

log = logging.getLogger("briefcast.channels.mastodon")

NAME = "mastodon"
DEFAULT_LIMIT = 500
DEFAULT_URL_WEIGHT = 23
DEFAULT_RATE_LIMIT_WAIT = 60.0
IDEMPOTENCY_WINDOW = 50 * 60.0  # Mastodon keeps a key for an hour; keep a margin


class MastodonSettings(ChannelSettings):
    instance_url: str = Field(description="The instance, e.g. https://mastodon.social.")
    access_token: Secret
    visibility: Literal["public", "unlisted", "private", "direct"] = "public"
    language: str | None = Field(None, description="ISO 639 code; default: publication.language.")
    max_characters: int | None = Field(
        None, ge=1, description="Status limit; default: the instance's (500 if it is silent)."
    )
    timeout_seconds: float = Field(15.0, gt=0, le=300)

    @field_validator("instance_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// or http://")
        return value.rstrip("/")


@dataclass(frozen=True)
class StatusPayload:
    text: str
    idempotency_key: str


# -- the one error boundary -------------------------------------------------
def _detail(exc: MastodonAPIError) -> str:
    args = [a for a in exc.args[1:] if a not in (None, "")]
    return " ".join(str(a) for a in args) or str(exc)


def map_error(
    exc: Exception, *, reset: float | None = None, now: Callable[[], float] = time.time
) -> DeliveryError:
    """Translate a Mastodon.py failure into the channel error tree (``reset``: epoch seconds)."""
    if isinstance(exc, MastodonRatelimitError):
        wait = reset - now() if reset and reset > now() else DEFAULT_RATE_LIMIT_WAIT
        message = "Mastodon rate limit reached"
        return RateLimited(message, retry_after=wait, channel=NAME, status=429)
    if isinstance(exc, MastodonNetworkError):
        cause = exc.__context__
        if isinstance(cause, requests.Timeout):
            return TransientError("Mastodon did not answer in time", channel=NAME, code="timeout")
        return TransientError("connection to Mastodon failed", channel=NAME, code="connection")
    if isinstance(exc, MastodonAPIError):
        status = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else None
        detail = _detail(exc)
        if isinstance(exc, MastodonUnauthorizedError) or status == 403:
            return AuthError(f"Mastodon refused our token: {detail}", channel=NAME, status=status)
        if isinstance(exc, MastodonServerError) or status == 408:
            return TransientError(f"Mastodon server error: {detail}", channel=NAME, status=status)
        if isinstance(exc, MastodonNotFoundError):
            return PermanentError(
                f"Mastodon: not found (the status replied to?): {detail}",
                channel=NAME,
                status=status,
            )
        message = f"Mastodon rejected the status: {detail}"
        return PermanentError(message, channel=NAME, status=status)
    if isinstance(exc, MastodonError):
        return PermanentError(f"Mastodon client error: {exc}", channel=NAME)
    raise TypeError(f"not a Mastodon client error: {type(exc).__name__}")


def idempotency_key(edition_id: str, channel: str, target: str) -> str:
    return hashlib.sha256(f"briefcast\0{edition_id}\0{channel}\0{target}".encode()).hexdigest()


def check_statuses(texts: list[str], limit: int, url_weight: int) -> list[str]:
    problems = []
    for n, text in enumerate(texts, 1):
        length = mastodon_length(text, url_weight)
        if not text.strip():
            problems.append(f"status-{n} is empty")
        elif length > limit:
            problems.append(
                f"status-{n} is {length} characters (this instance allows {limit}): {text[:40]!r}…"
            )
    return problems


# -- the adapter --------------------------------------------------------------
class MastodonChannel(BaseChannel):
    name = NAME
    Settings = MastodonSettings
    max_batch = 1

    def __init__(self, settings: MastodonSettings, context: ChannelContext) -> None:
        super().__init__(settings, context)
        self.settings: MastodonSettings = settings
        self._channel: str = context.extra.get("channel", NAME)
        self._api = Mastodon(
            access_token=settings.access_token.get_secret_value(),
            api_base_url=settings.instance_url,
            ratelimit_method="throw",  # the dispatcher owns waits
            request_timeout=settings.timeout_seconds,
            version_check_mode="none",
        )
        self._first_unanswered: dict[str, float] = {}  # target -> when an attempt got no answer
        self.post_links: dict[str, str] = {}  # status id -> its web address, for the report
        publication_language = getattr(context.publication, "language", None)
        self._language = settings.language or publication_language

    def limits(self) -> tuple[int, int]:
        """(status length limit, characters a URL counts) as the instance configures them."""
        if self.settings.max_characters is not None:
            return self.settings.max_characters, DEFAULT_URL_WEIGHT
        try:
            statuses = self._api.instance_v2()["configuration"]["statuses"]
            return (
                int(statuses.get("max_characters") or DEFAULT_LIMIT),
                int(statuses.get("characters_reserved_per_url") or DEFAULT_URL_WEIGHT),
            )
        except (MastodonError, KeyError, TypeError, ValueError) as exc:
            log.warning("mastodon: instance limits unknown (%s); assuming %d", exc, DEFAULT_LIMIT)
            return DEFAULT_LIMIT, DEFAULT_URL_WEIGHT

    def plan(self, edition: RenderedEdition) -> list[Delivery]:
        texts = [post.text for post in edition.mastodon_posts]
        problems = check_statuses(texts, *self.limits())
        if problems:
            raise ContentError(f"{len(problems)} status(es) cannot go out: " + "; ".join(problems))
        plan = []
        for n, text in enumerate(texts, 1):
            target = f"status-{n}"
            key = idempotency_key(edition.edition_id, self._channel, target)
            after = f"status-{n - 1}" if edition.x_thread and n > 1 else None
            plan.append(Delivery(target, StatusPayload(text, key), after=after))
        return plan

    def send_one(self, delivery: Delivery) -> Receipt | None:
        payload: StatusPayload = delivery.payload
        reply_to = delivery.parent_receipt
        if delivery.after is not None and not reply_to:
            error = PermanentError(
                f"cannot reply to {delivery.after}: the ledger has no status id for it",
                channel=NAME,
            )
            error.retryable = True
            raise error
        first = self._first_unanswered.get(delivery.target)
        if first is not None and time.monotonic() - first > IDEMPOTENCY_WINDOW:
            log.warning(
                "mastodon: %s went unanswered over %d minutes ago; the instance may have "
                "forgotten its idempotency key, so it is left in doubt",
                delivery.target,
                IDEMPOTENCY_WINDOW // 60,
            )
            return None
        try:
            status = self._api.status_post(
                payload.text,
                in_reply_to_id=reply_to,
                visibility=self.settings.visibility,
                language=self._language,
                idempotency_key=payload.idempotency_key,
            )
        except MastodonError as exc:
            error = map_error(exc, reset=self._api.ratelimit_reset)
            if isinstance(exc, MastodonNetworkError) and first is None:
                self._first_unanswered[delivery.target] = time.monotonic()
            raise error from exc
        status_id = str(status["id"])
        link = str(status.get("url") or status.get("uri") or "")
        if link:
            self.post_links[status_id] = link
        log.info("mastodon: %s posted as %s", delivery.target, status_id)
        return Receipt(status_id, detail=link)

    def close(self) -> None:
        self._api.session.close()
