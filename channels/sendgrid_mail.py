"""The SendGrid channel: v3 mail send through the official ``sendgrid`` SDK.

One request carries up to 1000 recipients, one personalization each. The HTML
and text are sent once; each personalization's substitutions fill in that
recipient's links and name. SendGrid substitutes literally, so the HTML gets
HTML-escaped values and the text part (renamed tokens, see ``_TEXT``) raw ones.
``List-Unsubscribe`` is per recipient, so it goes into each personalization's
headers. Every failure is mapped into the channel error tree in ``_map_error``.
"""

from __future__ import annotations

import http.client
import logging
import re
import time
import urllib.error
from collections.abc import Sequence
from html import escape as html_escape

from briefcast.channels.base import (
    BaseChannel,
    ChannelSettings,
    Delivery,
    Outcome,
    Receipt,
    Recipient,
)
from briefcast.channels.email_message import (
    ascii_address,
    list_unsubscribe,
    mailing_list,
    recipient_values,
    subject_for,
)
from briefcast.channels.errors import (
    AuthError,
    ContentError,
    DeliveryError,
    PermanentError,
    RateLimited,
    TransientError,
)
from pydantic import Field, field_validator
from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import (
    Asm,
    Category,
    Content,
    CustomArg,
    From,
    Header,
    Mail,
    MailSettings,
    Personalization,
    ReplyTo,
    SandBoxMode,
    Substitution,
    To,
)

from briefcast.config import Secret
from briefcast.models import RenderedEdition
from briefcast.render.placeholders import KNOWN, OPTIONAL, placeholders_in

log = logging.getLogger("briefcast.channels.sendgrid")

MAX_PERSONALIZATIONS = 1000
MAX_SUBSTITUTION_BYTES = 10_000
DEFAULT_RATE_LIMIT_WAIT = 5.0  # a 429 without X-RateLimit-Reset


class _RedactAuthorization(logging.Filter):
    """python_http_client logs request headers at DEBUG, the bearer key included."""

    _bearer = re.compile(r"Bearer\s+[^'\"\s,}]+")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "Bearer" in record.msg:
            record.msg = self._bearer.sub("Bearer [redacted]", record.msg)
        return True


logging.getLogger("python_http_client.client").addFilter(_RedactAuthorization())


class SendGridSettings(ChannelSettings):
    api_key: Secret
    base_url: str = "https://api.sendgrid.com"
    timeout_seconds: float = Field(
        30.0, gt=0, description="Per-request timeout (the SDK has none)."
    )
    sandbox_mode: bool = Field(
        False,
        description="SendGrid validates but delivers nothing: reported as held back, "
        "so a later live run still sends it.",
    )
    categories: list[str] = Field(default_factory=lambda: ["daily-brief"])
    unsubscribe_mailto: str = Field("", description="Also offer a mailto: in List-Unsubscribe.")
    asm_group_id: int | None = Field(None, description="Unsubscribe group (SendGrid ASM).")
    from_email: str = Field("", description="Default: publication.sender_email.")
    from_name: str | None = Field(None, description="Default: publication.sender_name.")
    reply_to: str = Field("", description="Default: publication.reply_to.")

    @field_validator("categories")
    @classmethod
    def _categories(cls, value: list[str]) -> list[str]:
        if len(value) > 10:
            raise ValueError("at most 10 categories")
        if len(set(value)) != len(value):
            raise ValueError("categories must be unique")
        if any(not c or len(c) > 255 for c in value):
            raise ValueError("each category is 1 to 255 characters")
        return value


def _text_token(name: str) -> str:
    return f"%%{name}.text%%"


def _for_text(text: str) -> str:
    """Rename the text part's placeholders so they get unescaped values."""
    for name in placeholders_in(text):
        text = text.replace(f"%%{name}%%", _text_token(name))
    return text


def _substitutions(recipient: Recipient, names: set[str]) -> dict[str, str]:
    values = recipient_values(recipient)
    subs: dict[str, str] = {}
    for name in names:
        value = values.get(name, "")
        subs[f"%%{name}%%"] = html_escape(value, quote=True)
        subs[_text_token(name)] = value
    return subs


def _error_message(exc: HTTPError) -> str:
    """SendGrid's own words from an error body: ``errors[].message`` (and field)."""
    try:
        errors = exc.to_dict.get("errors") or []
        parts = []
        for error in errors:
            message = str(error.get("message") or "").strip()
            if error.get("field"):
                message = f"{error['field']}: {message}"
            if message:
                parts.append(message)
        if parts:
            return "; ".join(parts)
    except (ValueError, AttributeError, TypeError):
        pass
    return str(getattr(exc, "reason", "") or "no error message")


def _reset_wait(exc: HTTPError) -> float:
    headers = getattr(exc, "headers", None)
    reset = headers.get("X-RateLimit-Reset") if headers is not None else None
    try:
        return max(0.0, float(reset) - time.time())
    except (TypeError, ValueError):
        return DEFAULT_RATE_LIMIT_WAIT


def _map_error(exc: Exception, timeout: float) -> DeliveryError:
    """The one boundary between SendGrid's failures and the channel error tree."""
    kw = {"channel": "sendgrid"}
    if isinstance(exc, HTTPError):
        status = exc.status_code
        message = f"SendGrid {status}: {_error_message(exc)}"
        if status == 429:
            return RateLimited(message, retry_after=_reset_wait(exc), status=status, **kw)
        if status in (401, 403):
            return AuthError(message, status=status, **kw)
        if status >= 500 or status == 408:
            return TransientError(message, status=status, **kw)
        return PermanentError(message, status=status, **kw)
    if isinstance(exc, TimeoutError):
        return TransientError(f"SendGrid did not answer within {timeout:g}s", **kw)
    if isinstance(exc, urllib.error.URLError):
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            return TransientError(f"SendGrid did not answer within {timeout:g}s", **kw)
        return TransientError(f"cannot reach SendGrid: {reason}", **kw)
    # refused, reset, dropped before the answer, a garbled answer
    return TransientError(f"connection to SendGrid failed: {type(exc).__name__}: {exc}", **kw)


class SendGridChannel(BaseChannel):
    name = "sendgrid"
    sends_email = True  # takes the [TEST] copy of a test send
    Settings = SendGridSettings
    max_batch = MAX_PERSONALIZATIONS

    def __init__(self, settings: SendGridSettings, context) -> None:
        super().__init__(settings, context)
        self.edition: RenderedEdition | None = None
        self.names: set[str] = set()  # the placeholders this edition uses
        self.client = SendGridAPIClient(
            settings.api_key.get_secret_value(), host=settings.base_url.rstrip("/")
        )
        self.client.client.timeout = settings.timeout_seconds

    def plan(self, edition: RenderedEdition) -> list[Delivery]:
        """One delivery per distinct address; ContentError if any recipient cannot be filled."""
        variant = edition.email
        names = placeholders_in(variant.html) | placeholders_in(variant.text)
        names |= placeholders_in(variant.subject)
        required = (names & KNOWN) - OPTIONAL
        plan: list[Delivery] = []
        for recipient in mailing_list(self.context, self.name):
            values = recipient_values(recipient)
            missing = sorted(n for n in required if not values.get(n))
            if missing:
                raise ContentError(f"{recipient.email}: no value for {', '.join(missing)}")
            subs = _substitutions(recipient, names)
            size = sum(len(k.encode()) + len(v.encode()) for k, v in subs.items())
            if size > MAX_SUBSTITUTION_BYTES:
                raise ContentError(f"{recipient.email}: substitutions exceed 10,000 bytes")
            plan.append(Delivery(recipient.email.lower(), recipient))
        self.edition = edition
        self.names = names
        return plan

    def build_mail(self, batch: Sequence[Delivery]) -> Mail:
        edition = self.edition
        if edition is None:
            raise RuntimeError("plan() the edition before sending it")
        publication = self.context.publication
        settings = self.settings
        mail = Mail(
            from_email=From(
                settings.from_email or publication.sender_email,
                publication.sender_name if settings.from_name is None else settings.from_name,
            ),
            subject=_for_text(subject_for(edition, self.context.test_send)),
        )
        mail.add_content(Content("text/plain", _for_text(edition.email.text)))
        mail.add_content(Content("text/html", edition.email.html))
        reply_to = settings.reply_to or publication.reply_to
        if reply_to:
            mail.reply_to = ReplyTo(reply_to)
        for position, delivery in enumerate(batch):
            recipient: Recipient = delivery.payload
            personalization = Personalization()
            personalization.add_to(To(ascii_address(recipient.email), recipient.name or None))
            for key, value in _substitutions(recipient, self.names).items():
                personalization.add_substitution(Substitution(key, value))
            unsubscribe = list_unsubscribe(recipient, settings.unsubscribe_mailto or None)
            if "List-Unsubscribe" in unsubscribe:
                personalization.add_header(
                    Header("List-Unsubscribe", unsubscribe["List-Unsubscribe"])
                )
            mail.add_personalization(personalization, index=position)
        if any(d.payload.unsubscribe_url for d in batch):
            mail.add_header(Header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
        for category in reversed(settings.categories):  # the SDK prepends each one
            mail.add_category(Category(category))
        mail.add_custom_arg(CustomArg("edition_id", edition.edition_id))
        if self.context.test_send:
            mail.add_custom_arg(CustomArg("test_send", "true"))
        if settings.asm_group_id is not None:
            mail.asm = Asm(settings.asm_group_id)
        if settings.sandbox_mode:
            mail.mail_settings = MailSettings(sandbox_mode=SandBoxMode(True))
        return mail

    def send(self, batch: Sequence[Delivery]) -> list[Outcome]:
        """One request for the whole batch: every recipient shares its fate."""
        mail = self.build_mail(batch)
        try:
            response = self.client.send(mail)
        except (HTTPError, OSError, http.client.HTTPException) as exc:
            raise _map_error(exc, self.settings.timeout_seconds) from exc
        message_id = response.headers.get("X-Message-Id") or ""
        if response.status_code not in (200, 202):
            raise PermanentError(
                f"SendGrid answered {response.status_code}",
                channel=self.name,
                status=response.status_code,
            )
        if not message_id:  # sandbox mode: validated, nothing sent
            message_id = f"sandbox-{response.status_code}"
        if self.settings.sandbox_mode:
            detail = "sandbox mode: SendGrid validated the mail and sent nothing"
            return [Receipt(message_id, detail, delivered=False) for _ in batch]
        return [Receipt(provider_id=message_id) for _ in batch]
