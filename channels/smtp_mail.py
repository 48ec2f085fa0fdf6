"""The SMTP channel: one MIME message per subscriber through any mail server or relay.

The edition's message is rendered once (channels/mime_template.py) and each
recipient's copy filled in at send time. Up to ``connections`` SMTP sessions
(STARTTLS, implicit TLS or plain; AUTH when a username is set) are opened and
kept across batches, also when several threads send at once; a ``send`` shares
its batch among them, each session sending message after message. Replies are
judged per recipient: 4xx is transient, 5xx permanent for that recipient only.

Each message is claimed on its own (``claims_each``): after the server took the
recipient and the message text, and before the final "." that commits it, the
adapter asks the dispatcher's handover to claim it, and reports its outcome
before the session goes on to the next one. A kill therefore leaves in doubt
only the messages whose DATA was under way, at most one per connection. A
message whose claim is refused (another run took it, or the run is stopping) is
abandoned by dropping the connection before the ".", so the server discards it.

When a connection dies, what it already handed over stays delivered and what it
had not started is returned as transient, for the dispatcher to retry. The one
message whose final "." had gone out is *in doubt* (the server may have queued
it before the line went dead): the ledger keeps it in flight for the operator
rather than sending it twice. A line lost before the "." loses nothing: the
server discards a message it did not see end.
"""

from __future__ import annotations

import logging
import queue
import smtplib
import socket
import ssl
import threading
from collections.abc import Iterator, Sequence
from typing import Literal

from briefcast.channels.base import (
    BaseChannel,
    ChannelSettings,
    Delivery,
    Handover,
    InDoubt,
    Outcome,
    Planned,
    Receipt,
    Recipient,
    TakeAll,
    size_of,
)
from briefcast.channels.email_message import ascii_address, mailing_list
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
from briefcast.channels.mime_template import MimeTemplate
from pydantic import Field, model_validator

from briefcast.config import Secret
from briefcast.models import RenderedEdition

log = logging.getLogger("briefcast.channels.smtp")

DEFAULT_PORTS = {"starttls": 587, "tls": 465, "plain": 25}


class SmtpSettings(ChannelSettings):
    host: str
    port: int | None = Field(None, ge=1, le=65535, description="Default: 587, 465 or 25.")
    security: Literal["starttls", "tls", "plain"] = "starttls"
    username: str = ""
    password: Secret | None = None
    timeout_seconds: float = Field(30.0, gt=0)
    connections: int = Field(2, ge=1, le=20, description="SMTP sessions used in parallel.")
    claims: Literal["each", "batch"] = Field(
        "each",
        description='"each": a message is claimed just before its final "." (a crash leaves '
        'at most one per connection in doubt); "batch": max_batch at once, faster on a slow '
        "disk, but a crash leaves the whole batch in doubt.",
    )
    max_batch: int = Field(
        50,
        ge=1,
        le=1000,
        description="Recipients handed to the sessions together (each message is still "
        "claimed and recorded on its own).",
    )
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

    ``outcome`` is the current delivery's; ``error`` is what the
    deliveries nobody tried get. ``abandoned``: its claim was refused, so it was
    never sent and there is nothing to report.
    """

    def __init__(
        self, outcome: Outcome | None, error: DeliveryError, abandoned: bool = False
    ) -> None:
        self.outcome = outcome
        self.error = error
        self.abandoned = abandoned


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
    claims_each = True

    def __init__(self, settings: SmtpSettings, context) -> None:
        super().__init__(settings, context)
        self.max_batch = settings.max_batch
        self.claims_each = settings.claims == "each"
        if not self.claims_each:
            log.warning(
                'smtp: claims = "batch": a crash leaves up to %d messages in doubt',
                self.max_batch,
            )
        self.edition: RenderedEdition | None = None
        self.template: MimeTemplate | None = None
        self.sessions = _Sessions(self._connect, settings.connections)

    @property
    def port(self) -> int:
        return self.settings.port or DEFAULT_PORTS[self.settings.security]

    @property
    def sender(self) -> str:
        return self.settings.from_email or self.context.publication.sender_email

    def plan(self, edition: RenderedEdition) -> Planned:
        """One delivery per distinct address, streamed; the edition's message is rendered
        once, here. A recipient the message cannot be filled in for is that delivery's
        problem, not the edition's."""
        try:
            template = self._template(edition)
        except (ValueError, TypeError) as exc:
            raise ContentError(f"edition {edition.edition_id}: {exc}") from exc
        self.edition = edition
        self.template = template
        return Planned(self._deliveries(template), size_of(self.context.recipients))

    def _deliveries(self, template) -> Iterator[Delivery]:
        for recipient, problem in mailing_list(
            self.context.recipients, self.name, test_send=self.context.test_send
        ):
            if problem is None:
                try:
                    template.check(recipient)
                except (ValueError, TypeError) as exc:
                    problem = str(exc)
            yield Delivery(recipient.email.lower(), recipient, problem=problem)

    def _template(self, edition: RenderedEdition) -> MimeTemplate:
        return MimeTemplate(
            edition,
            self.context.publication,
            test=self.context.test_send,
            unsubscribe_mailto=self.settings.unsubscribe_mailto or None,
            sender=self.sender,
            sender_name=self.settings.from_name,
            dot_stuffed=True,  # ready for DATA
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
            # The final "." goes in a small write after the claim; without this, Nagle holds
            # it until the server's delayed ACK (~40 ms a message).
            smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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

    def _deliver(
        self, smtp: smtplib.SMTP, delivery: Delivery, handover: Handover
    ) -> Outcome | None:
        """Hand one message over; raise _Broken when the session cannot continue."""
        recipient: Recipient = delivery.payload
        address = ascii_address(recipient.email)
        international = not (address.isascii() and self.sender.isascii())
        options = ["SMTPUTF8", "BODY=8BITMIME"] if international else []
        if international and not smtp.has_extn("smtputf8"):
            return PermanentError(
                "the server does not accept international addresses (no SMTPUTF8)",
                channel="smtp",
            )
        message_id, data = self.template.render(recipient, international)  # dot-stuffed
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
            # Claimed once on the wire (its recipient taken), not before: a kill leaves in
            # doubt only messages the server may have; the flush overlaps DATA and the text.
            handover.reserve(delivery)
            code, reply = smtp.docmd("DATA")
            if code != 354:  # DATA itself refused: nothing was sent
                return self._refused(smtp, code, reply, recipient, stage)
            stage = "message"
            smtp.send(data)
            if not handover.claim(delivery):
                smtp.close()  # before the final ".": the server discards the message
                error = TransientError("not sent: a claim was refused", channel="smtp")
                raise _Broken(None, error, abandoned=True)
            stage = "end of DATA"
            smtp.send(b".\r\n")
            code, reply = smtp.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            error = TransientError(
                f"{recipient.email}: connection lost at {stage}: {exc}", channel="smtp"
            )
            if stage == "end of DATA":  # the server may have queued it
                what = "no answer" if isinstance(exc, TimeoutError) else f"connection lost ({exc})"
                raise _broken(smtp, InDoubt(f"{what} after the end of DATA"), error) from exc
            raise _broken(smtp, error, error) from exc
        if code != 250:
            return self._refused(smtp, code, reply, recipient, "message")
        return Receipt(provider_id=message_id, detail=f"{code} {reply.decode()}")

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
    def send(
        self, batch: Sequence[Delivery], handover: Handover | None = None
    ) -> list[Outcome | None]:
        """Share the batch among up to ``connections`` sessions, kept open across batches.

        Safe to call from several threads at once: they share the same sessions.
        """
        handover = handover or TakeAll()
        if self.template is None:
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
                smtp = self.sessions.take()
            except ChannelError as exc:
                with lock:
                    failures.append(exc)
                return
            alive = False  # until the batch is done: a session in an unknown state is dropped
            try:
                while True:
                    try:
                        index = pending.get_nowait()
                    except queue.Empty:
                        alive = True
                        return
                    delivery = batch[index]
                    try:
                        outcomes[index] = self._deliver(smtp, delivery, handover)
                    except _Broken as broken:  # the session was closed by _broken()
                        outcomes[index] = broken.outcome
                        if not broken.abandoned:
                            handover.done(delivery, broken.outcome)
                        with lock:
                            failures.append(broken.error)
                        return
                    handover.done(delivery, outcomes[index])
            finally:
                self.sessions.give_back(smtp, alive)

        helpers = [
            threading.Thread(target=work, name=f"smtp-{n}", daemon=True)
            for n in range(1, min(self.settings.connections, len(batch)))
        ]
        for helper in helpers:
            helper.start()
        work()  # this thread is one of the senders
        for helper in helpers:
            helper.join()

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

    def close(self) -> None:
        self.sessions.close()


class _Sessions:
    """Open SMTP sessions shared by the senders: at most ``size`` in use at once.

    A session goes back to the pool after a batch and is reused by the next one
    (checked with a NOOP first: servers drop idle clients); a broken one is
    dropped, so the next take opens a new connection.
    """

    def __init__(self, connect, size: int) -> None:
        self._connect = connect
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[smtplib.SMTP] = []
        self._lock = threading.Lock()
        self._closed = False

    def take(self) -> smtplib.SMTP:
        self._slots.acquire()
        try:
            while True:
                with self._lock:
                    smtp = self._idle.pop() if self._idle else None
                if smtp is None:
                    return self._connect()
                if _usable(smtp):
                    return smtp
                _quit(smtp)
        except BaseException:
            self._slots.release()
            raise

    def give_back(self, smtp: smtplib.SMTP, alive: bool) -> None:
        with self._lock:
            keep = alive and not self._closed
            if keep:
                self._idle.append(smtp)
        if alive and not keep:
            _quit(smtp)
        self._slots.release()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for smtp in idle:
            _quit(smtp)


def _usable(smtp: smtplib.SMTP) -> bool:
    try:
        return smtp.noop()[0] == 250
    except (smtplib.SMTPException, OSError):
        return False


def _broken(smtp: smtplib.SMTP, outcome: Outcome | None, cause: DeliveryError) -> _Broken:
    _quit(smtp)
    return _Broken(outcome, TransientError(f"SMTP session ended: {cause.message}", channel="smtp"))


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()
