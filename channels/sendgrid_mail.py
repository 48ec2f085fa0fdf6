"""The SendGrid channel: v3 mail send through the official ``sendgrid`` SDK.

One request carries up to 1000 recipients, one personalization each. The HTML
and text are sent once; each personalization's substitutions fill in that
recipient's links and name. SendGrid substitutes literally, so the HTML gets
HTML-escaped values and the text part (renamed tokens, see ``_TEXT``) raw ones.
``List-Unsubscribe`` is per recipient, so it goes into each personalization's
headers. Every failure is mapped into the channel error tree in ``_map_error``.

The request body is built as the plain dict the v3 API takes (what the SDK's
``Mail`` helper produces, without building a helper object per recipient),
serialized with orjson and posted with the SDK client's own headers and error
types (``_post``) through one httpx client, whose pool keeps each sender's
connection from one request to the next. The parts shared by every request are
built once per edition; ``send`` keeps no other state on the adapter, so the
dispatcher may call it from several threads at once.

A request whose fate is unknown (no answer in time, the connection dropped or
reset after the request went out, a garbled answer) leaves its deliveries in
doubt: SendGrid may have taken it, and a retry could mail 1000 people twice.
Only a failure before the request was complete (a refused connection, a name
that does not resolve) is retried.
"""

from __future__ import annotations

import functools
import io
import logging
import re
import time
import urllib.error
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from html import escape as html_escape

import httpx
import orjson
from briefcast.channels.base import (
    BaseChannel,
    ChannelSettings,
    Delivery,
    InDoubt,
    Outcome,
    Planned,
    Receipt,
    Recipient,
    size_of,
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
    DeliveryError,
    PermanentError,
    RateLimited,
    TransientError,
)
from pydantic import Field, field_validator
from python_http_client.exceptions import HTTPError, handle_error
from sendgrid import SendGridAPIClient

from briefcast.config import Secret
from briefcast.models import RenderedEdition
from briefcast.plan_process import in_second_process
from briefcast.render.placeholders import KNOWN, OPTIONAL, placeholders_in

log = logging.getLogger("briefcast.channels.sendgrid")

MAX_PERSONALIZATIONS = 1000
MAX_SUBSTITUTION_BYTES = 10_000
# A list this long is planned in a second process; a shorter one is done before it started.
SECOND_PROCESS_FROM = 50_000
DEFAULT_RATE_LIMIT_WAIT = 5.0  # a 429 without X-RateLimit-Reset
# A request's end when a personalization has a List-Unsubscribe header: RFC 8058's pair.
_ONE_CLICK_END = b'],"headers":{"List-Unsubscribe-Post":"List-Unsubscribe=One-Click"}}'


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

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        parts = urllib.parse.urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL, such as https://api.sendgrid.com")
        return value

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


def _escaped(value: str) -> str:
    """HTML-escaped; most values (links, plain names) have nothing to escape."""
    if "&" in value or "<" in value or ">" in value or '"' in value or "'" in value:
        return html_escape(value, quote=True)
    return value


def _substitution_bytes(personalization: dict, token_chars: int) -> int:
    """The UTF-8 size of the substitutions, encoding only when characters cannot tell.

    ``token_chars``: the length of the tokens (the same in every personalization).
    """
    subs = personalization.get("substitutions")
    if not subs:
        return 0
    chars = token_chars + sum(map(len, subs.values()))
    if chars > MAX_SUBSTITUTION_BYTES or chars * 4 <= MAX_SUBSTITUTION_BYTES:
        return chars  # over even as ASCII, or under even at 4 bytes a character
    return sum(len(k.encode()) + len(v.encode()) for k, v in subs.items())


@dataclass(frozen=True)
class Personalizer:
    """Each recipient's personalization, from what the plan works out once per edition.

    Plain data, so a second process can run ``rows`` for a long list.
    """

    tokens: tuple[tuple[str, str, str], ...]  # (name, HTML token, text token)
    list_unsubscribe: tuple[str, str]  # the header's text before and after the link
    required: frozenset[str]  # placeholders a recipient must have a value for

    def rows(
        self, recipients: Iterable[Recipient], channel: str, *, test_send: bool
    ) -> Iterator[tuple[str, bytes | None, str | None]]:
        """(target, personalization as JSON, problem): plain tuples, quick to pickle."""
        token_chars = sum(len(html) + len(text) for _, html, text in self.tokens)
        required = self.required
        for recipient, problem in mailing_list(recipients, channel, test_send=test_send):
            target = recipient.email.lower()
            if problem is not None:
                yield target, None, problem
                continue
            values = recipient_values(recipient)
            missing = [n for n in required if not values.get(n)] if required else None
            if missing:
                yield target, None, f"no value for {', '.join(sorted(missing))}"
                continue
            personalization = self.personalization(recipient, values)
            if _substitution_bytes(personalization, token_chars) > MAX_SUBSTITUTION_BYTES:
                yield target, None, "substitutions exceed 10,000 bytes"
                continue
            yield target, orjson.dumps(personalization), None

    def encoded(self, recipient: Recipient) -> bytes:
        return orjson.dumps(self.personalization(recipient))

    def personalization(self, recipient: Recipient, values: dict | None = None) -> dict:
        email = ascii_address(recipient.email)
        to = {"name": recipient.name, "email": email} if recipient.name else {"email": email}
        personalization: dict = {"to": [to]}
        if recipient.unsubscribe_url:
            before, after = self.list_unsubscribe
            unsubscribe = f"{before}{recipient.unsubscribe_url}{after}"
            personalization["headers"] = {"List-Unsubscribe": unsubscribe}
        if self.tokens:
            values = values if values is not None else recipient_values(recipient)
            subs: dict[str, str] = {}
            for name, html_token, text_token in self.tokens:
                value = values.get(name, "")
                subs[html_token] = _escaped(value)
                subs[text_token] = value
            personalization["substitutions"] = subs
        return personalization


def _deliveries(rows: Iterable[tuple[str, bytes | None, str | None]]) -> Iterator[Delivery]:
    for target, personalization, problem in rows:
        yield Delivery(target, personalization, problem=problem)


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


def _map_error(exc: Exception, timeout: float) -> DeliveryError | InDoubt:
    """The one boundary between SendGrid's failures and the channel error tree.

    A failure while connecting or writing the request means it never arrived whole:
    SendGrid cannot have acted on it, so it is retried. Anything after that (no answer,
    a reset or dropped connection, a garbled answer) is in doubt.
    """
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
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return TransientError(f"could not reach SendGrid within {timeout:g}s", **kw)
    if isinstance(exc, _NEVER_ARRIVED):
        return TransientError(f"cannot reach SendGrid: {exc}", **kw)
    if isinstance(exc, httpx.TimeoutException):
        return InDoubt(f"SendGrid did not answer within {timeout:g}s after the request went out")
    return InDoubt(
        f"the connection to SendGrid failed after the request went out "
        f"({type(exc).__name__}: {exc})".replace(" ()", "")
    )


# Raised before the request was whole on the wire (connecting, the proxy, writing it).
_NEVER_ARRIVED = (
    httpx.ConnectError,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
    httpx.WriteError,
    httpx.WriteTimeout,
)


class SendGridChannel(BaseChannel):
    name = "sendgrid"
    Settings = SendGridSettings
    max_batch = MAX_PERSONALIZATIONS
    concurrency = 8  # requests in flight; a crash leaves at most these in doubt
    sends_email = True  # takes the [TEST] copy of a test send

    def __init__(self, settings: SendGridSettings, context) -> None:
        super().__init__(settings, context)
        self.edition: RenderedEdition | None = None
        self._personalizer: Personalizer | None = None
        self._shared: bytes | None = None  # a request's JSON up to its personalizations
        self.client = SendGridAPIClient(
            settings.api_key.get_secret_value(), host=settings.base_url.rstrip("/")
        )
        self.client.client.timeout = settings.timeout_seconds
        # Set once here: the SDK would set it on its shared headers at the first request.
        self.client.client.request_headers.setdefault("Content-Type", "application/json")
        self.send_url = f"{settings.base_url.rstrip('/')}/v3/mail/send"
        # Connections kept between requests (httpcore drops one the server closed while
        # idle before reusing it); proxies and SSL_CERT_FILE from the environment.
        self._http = httpx.Client(
            timeout=settings.timeout_seconds,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
        )

    def plan(self, edition: RenderedEdition) -> Planned:
        """One delivery per distinct address, streamed; a recipient whose placeholders
        cannot be filled is that delivery's problem.

        A long mailing list that can be reopened elsewhere (the subscriber table's
        stream) is planned in a second process: see ``briefcast.plan_process``.
        """
        variant = edition.email
        names = placeholders_in(variant.html) | placeholders_in(variant.text)
        names |= placeholders_in(variant.subject)
        self.edition = edition
        # list_unsubscribe's header around each recipient's link, made once
        mailto = self.settings.unsubscribe_mailto or None
        header = list_unsubscribe(Recipient("", unsubscribe_url="\0"), mailto)
        self._personalizer = Personalizer(
            tokens=tuple((n, f"%%{n}%%", _text_token(n)) for n in sorted(names)),
            list_unsubscribe=tuple(header["List-Unsubscribe"].split("\0", 1)),
            required=frozenset((names & KNOWN) - OPTIONAL),
        )
        shared = orjson.dumps(self._shared_body(edition))
        self._shared = shared[:-1] + b',"personalizations":['  # a request's opening bytes
        recipients = self.context.recipients
        size = size_of(recipients)
        rows = functools.partial(
            self._personalizer.rows, recipients, self.name, test_send=self.context.test_send
        )
        if getattr(recipients, "portable", False) and (size or 0) >= SECOND_PROCESS_FROM:
            return Planned(_deliveries(in_second_process(rows)), size)
        return Planned(_deliveries(rows()), size)

    def _shared_body(self, edition: RenderedEdition) -> dict:
        publication = self.context.publication
        settings = self.settings
        sender = {"email": settings.from_email or publication.sender_email}
        sender_name = publication.sender_name if settings.from_name is None else settings.from_name
        if sender_name:
            sender = {"name": sender_name, **sender}
        body: dict = {
            "from": sender,
            "subject": _for_text(subject_for(edition, self.context.test_send)),
            "content": [
                {"type": "text/plain", "value": _for_text(edition.email.text)},
                {"type": "text/html", "value": edition.email.html},
            ],
        }
        if settings.categories:
            body["categories"] = list(settings.categories)
        custom_args = {"edition_id": edition.edition_id}
        if self.context.test_send:
            custom_args["test_send"] = "true"
        body["custom_args"] = custom_args
        if settings.asm_group_id is not None:
            body["asm"] = {"group_id": settings.asm_group_id}
        if settings.sandbox_mode:
            body["mail_settings"] = {"sandbox_mode": {"enable": True}}
        reply_to = settings.reply_to or publication.reply_to
        if reply_to:
            body["reply_to"] = {"email": reply_to}
        return body

    def request_body(self, batch: Sequence[Delivery]) -> bytes:
        """The v3 mail/send body for a batch, as JSON: the edition's shared parts and each
        delivery's personalization, both encoded once (safe from several threads)."""
        if self._shared is None or self._personalizer is None:
            raise RuntimeError("plan() the edition before sending it")
        encoded = self._personalizer.encoded
        personalizations = b",".join(
            d.payload if isinstance(d.payload, bytes) else encoded(d.payload) for d in batch
        )
        # Only a key can read "headers":{ (quotes inside a JSON string are escaped).
        if b'"headers":{' in personalizations:
            return b"".join((self._shared, personalizations, _ONE_CLICK_END))
        return b"".join((self._shared, personalizations, b"]}"))

    def send(self, batch: Sequence[Delivery]) -> list[Outcome]:
        """One request for the whole batch: every recipient shares its fate."""
        body = self.request_body(batch)
        try:
            status, headers = self._post(body)
        except (HTTPError, httpx.RequestError) as exc:
            outcome = _map_error(exc, self.settings.timeout_seconds)
            if isinstance(outcome, InDoubt):
                log.warning("sendgrid: %d recipients in doubt: %s", len(batch), outcome.reason)
                return [outcome] * len(batch)
            raise outcome from exc
        message_id = headers.get("X-Message-Id") or ""
        if status not in (200, 202):
            raise PermanentError(f"SendGrid answered {status}", channel=self.name, status=status)
        if not message_id:  # sandbox mode: validated, nothing sent
            message_id = f"sandbox-{status}"
        if self.settings.sandbox_mode:
            detail = "sandbox mode: SendGrid validated the mail and sent nothing"
            return [Receipt(message_id, detail, delivered=False)] * len(batch)
        return [Receipt(provider_id=message_id)] * len(batch)  # one request, one receipt

    def _post(self, body: bytes) -> tuple[int, httpx.Headers]:
        """POST the body with the SDK's client's headers; an error answer raises the SDK's
        HTTPError, as its client does.

        Not through ``client.mail.send.post``: that one json.dumps the body itself and
        formats all of it into a debug message whatever the log level, about 8 ms of one
        core per request of 1000 (orjson makes the body in under 2). Nor through its
        urllib, which opens a new connection (and TLS session) for every request.
        """
        headers = self.client.client.request_headers
        answer = self._http.post(self.send_url, content=body, headers=headers)
        if answer.status_code >= 400:
            error = urllib.error.HTTPError(
                self.send_url,
                answer.status_code,
                answer.reason_phrase,
                answer.headers,
                io.BytesIO(answer.content),
            )
            raise handle_error(error) from None
        return answer.status_code, answer.headers

    def close(self) -> None:
        self._http.close()
