"""The SMTP channel: one MIME message per subscriber through any mail server or relay.

A ``send`` opens up to ``connections`` SMTP sessions (STARTTLS, implicit TLS or
plain; AUTH when a username is set) and shares the batch among them, each
session sending message after message. Replies are judged per recipient: 4xx
is transient, 5xx permanent for that recipient only.

When a connection dies, what it already handed over stays delivered and what it
had not started is returned as transient, for the dispatcher to retry. The one
message whose DATA was under way is *in doubt* (the server may have queued it
before the line went dead); it is returned as ``None`` so the ledger keeps it in
flight for the operator rather than sending it twice.
"""

from __future__ import annotations

import queue
import smtplib
import ssl
import threading
from collections.abc import Sequence
from typing import Literal

from briefcast.channels.base import (
    BaseChannel,
    ChannelSettings,
    Delivery,
    Outcome,
    Receipt,
    Recipient,
)
from briefcast.channels.email_message import ascii_address, build_email, mailing_list
from briefcast.channels.errors import (
    AuthError,
    ChannelError,
    ConfigError,
    ContentError,
    DeliveryError,
    PermanentError,
    RecipientRejected,
    TransientError,
)
from pydantic import Field, model_validator

from briefcast.config import Secret
from briefcast.models import RenderedEdition

DEFAULT_PORTS = {"starttls": 587, "tls": 465, "plain": 25}


class SmtpSettings(ChannelSettings):
    host: str
    port: int | None = Field(None, ge=1, le=65535, description="Default: 587, 465 or 25.")
    security: Literal["starttls", "tls", "plain"] = "starttls"
    username: str = ""
    password: Secret | None = None
    timeout_seconds: float = Field(30.0, gt=0)
    connections: int = Field(2, ge=1, le=20, description="SMTP sessions used in parallel.")
    max_batch: int = Field(50, ge=1, le=1000)
    from_email: str = Field("", description="Default: publication.sender_email.")
    from_name: str | None = Field(None, description="Default: publication.sender_name.")
    unsubscribe_mailto: str = Field("", description="Also offer a mailto: in List-Unsubscribe.")
    ca_file: str = Field("", description="Trust this CA bundle (a private mail server).")
    local_hostname: str | None = Field(None, description="Name sent in EHLO.")

    @model_validator(mode="after")
    def _password_with_username(self) -> SmtpSettings:
        if self.username and self.password is None:
            raise ValueError("a username needs a password")
        return self


class _Broken(Exception):
    """The session cannot go on.

    ``outcome`` is the current delivery's (None: in doubt); ``error`` is what the
    deliveries nobody tried get.
    """

    def __init__(self, outcome: Outcome | None, error: DeliveryError) -> None:
        self.outcome = outcome
        self.error = error


def _reply_error(code: int, reply: bytes | str, where: str, stage: str) -> DeliveryError:
    """``where`` names the server for session errors; recipients are named by the ledger."""
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    message = f"{where + ': ' if where else ''}{stage} refused: {code} {text}".strip()
    kind = TransientError if 400 <= code < 500 else PermanentError
    return kind(message, channel="smtp", status=code)


class SmtpChannel(BaseChannel):
    name = "smtp"
    sends_email = True  # takes the [TEST] copy of a test send
    Settings = SmtpSettings
    max_batch = 50

    def __init__(self, settings: SmtpSettings, context) -> None:
        super().__init__(settings, context)
        self.max_batch = settings.max_batch
        self.edition: RenderedEdition | None = None

    @property
    def port(self) -> int:
        return self.settings.port or DEFAULT_PORTS[self.settings.security]

    @property
    def sender(self) -> str:
        return self.settings.from_email or self.context.publication.sender_email

    def plan(self, edition: RenderedEdition) -> list[Delivery]:
        """One delivery per distinct address; build each message once to catch bad content."""
        plan: list[Delivery] = []
        for recipient in mailing_list(self.context, self.name):
            try:
                self._message(edition, recipient)
            except (ValueError, TypeError) as exc:
                raise ContentError(f"{recipient.email}: {exc}") from exc
            plan.append(Delivery(recipient.email.lower(), recipient))
        self.edition = edition
        return plan

    def _message(self, edition: RenderedEdition, recipient: Recipient):
        return build_email(
            edition,
            recipient,
            self.context.publication,
            test=self.context.test_send,
            unsubscribe_mailto=self.settings.unsubscribe_mailto or None,
            sender=self.sender,
            sender_name=self.settings.from_name,
        )

    # -- sessions -------------------------------------------------------------
    def _tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.settings.ca_file or None)

    def _connect(self) -> smtplib.SMTP:
        """An SMTP session ready for MAIL FROM; raises a DeliveryError or ConfigError."""
        s = self.settings
        where = f"{s.host}:{self.port}"
        try:
            if s.security == "tls":
                smtp = smtplib.SMTP_SSL(
                    s.host,
                    self.port,
                    local_hostname=s.local_hostname,
                    timeout=s.timeout_seconds,
                    context=self._tls_context(),
                )
            else:
                smtp = smtplib.SMTP(
                    s.host, self.port, local_hostname=s.local_hostname, timeout=s.timeout_seconds
                )
        except smtplib.SMTPConnectError as exc:
            raise _reply_error(exc.smtp_code, exc.smtp_error, where, "connection") from exc
        except ssl.SSLError as exc:
            raise PermanentError(f"TLS with {where} failed: {exc}", channel="smtp") from exc
        except OSError as exc:
            raise TransientError(f"cannot connect to {where}: {exc}", channel="smtp") from exc
        try:
            smtp.ehlo()
            if s.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise ConfigError(f"{where} does not offer STARTTLS")
                smtp.starttls(context=self._tls_context())
                smtp.ehlo()
            if s.username:
                smtp.login(s.username, s.password.get_secret_value())
        except smtplib.SMTPAuthenticationError as exc:
            _quit(smtp)
            kind = TransientError if 400 <= exc.smtp_code < 500 else AuthError
            raise kind(
                f"{where} refused our login: {exc.smtp_code}", channel="smtp", status=exc.smtp_code
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            _quit(smtp)
            raise ConfigError(f"{where}: {exc}") from exc
        except ssl.SSLError as exc:
            _quit(smtp)
            raise PermanentError(f"TLS with {where} failed: {exc}", channel="smtp") from exc
        except smtplib.SMTPResponseException as exc:
            _quit(smtp)
            raise _reply_error(exc.smtp_code, exc.smtp_error, where, "session") from exc
        except (smtplib.SMTPException, OSError) as exc:
            _quit(smtp)
            raise TransientError(f"{where}: {exc}", channel="smtp") from exc
        except ChannelError:
            _quit(smtp)
            raise
        return smtp

    def _deliver(self, smtp: smtplib.SMTP, recipient: Recipient) -> Outcome | None:
        """Hand one message over; raise _Broken when the session cannot continue."""
        message = self._message(self.edition, recipient)
        address = ascii_address(recipient.email)
        international = not (address.isascii() and self.sender.isascii())
        options = ["SMTPUTF8", "BODY=8BITMIME"] if international else []
        if international and not smtp.has_extn("smtputf8"):
            return PermanentError(
                "the server does not accept international addresses (no SMTPUTF8)",
                channel="smtp",
            )
        policy = message.policy.clone(linesep="\r\n", utf8=international)
        data = message.as_bytes(policy=policy)
        stage = "MAIL FROM"
        try:
            code, reply = smtp.mail(self.sender, options)
            if code != 250:
                return self._refused(smtp, code, reply, recipient, stage)
            stage = "RCPT TO"
            code, reply = smtp.rcpt(address)
            if code not in (250, 251):
                return self._refused(smtp, code, reply, recipient, stage)
            stage = "DATA"
            code, reply = smtp.data(data)
        except smtplib.SMTPDataError as exc:  # DATA itself refused: nothing was sent
            return self._refused(smtp, exc.smtp_code, exc.smtp_error, recipient, stage)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            error = TransientError(
                f"{recipient.email}: connection lost at {stage}: {exc}", channel="smtp"
            )
            raise _broken(smtp, None if stage == "DATA" else error, error) from exc
        if code != 250:
            return self._refused(smtp, code, reply, recipient, "message")
        return Receipt(provider_id=message["Message-ID"], detail=f"{code} {reply.decode()}")

    def _refused(self, smtp, code, reply, recipient, stage) -> DeliveryError:
        error = _reply_error(code, reply, "", stage)
        if stage == "RCPT TO" and isinstance(error, PermanentError):
            error = RecipientRejected(error.message, channel="smtp", status=code)
        if code == 421:  # the server is closing this session
            raise _broken(smtp, error, error)
        try:
            smtp.rset()
        except (smtplib.SMTPException, OSError) as exc:
            raise _broken(smtp, error, error) from exc
        return error

    # -- sending --------------------------------------------------------------
    def send(self, batch: Sequence[Delivery]) -> list[Outcome | None]:
        if self.edition is None:
            raise RuntimeError("plan() the edition before sending it")
        pending: queue.SimpleQueue[int] = queue.SimpleQueue()
        for index in range(len(batch)):
            pending.put(index)
        untried = object()
        outcomes: list = [untried] * len(batch)
        failures: list[ChannelError] = []
        lock = threading.Lock()

        def work() -> None:
            try:
                smtp = self._connect()
            except ChannelError as exc:
                with lock:
                    failures.append(exc)
                return
            try:
                while True:
                    try:
                        index = pending.get_nowait()
                    except queue.Empty:
                        return
                    try:
                        outcomes[index] = self._deliver(smtp, batch[index].payload)
                    except _Broken as broken:
                        outcomes[index] = broken.outcome
                        with lock:
                            failures.append(broken.error)
                        return
            finally:
                _quit(smtp)

        workers = [
            threading.Thread(target=work, name=f"smtp-{n}", daemon=True)
            for n in range(min(self.settings.connections, len(batch)))
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

        left = [i for i, outcome in enumerate(outcomes) if outcome is untried]
        if left:
            error = next((f for f in failures if isinstance(f, DeliveryError)), None)
            if len(left) == len(batch):  # nothing went out: the whole batch failed
                raise failures[0] if failures else TransientError("not sent", channel="smtp")
            if error is None:
                error = TransientError(f"not sent: {failures[0]}", channel="smtp")
            for index in left:
                outcomes[index] = error
        return outcomes


def _broken(smtp: smtplib.SMTP, outcome: Outcome | None, cause: DeliveryError) -> _Broken:
    _quit(smtp)
    return _Broken(outcome, TransientError(f"SMTP session ended: {cause.message}", channel="smtp"))


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()
