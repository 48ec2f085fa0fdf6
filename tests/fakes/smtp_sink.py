"""An SMTP sink on 127.0.0.1 (aiosmtpd) that records messages and scripts replies.

    with SmtpSink() as sink:
        sink.reply("x@example.org", 450)          # first RCPT TO for x: 450, then accepted
        sink.reply("y@example.org", 550, 550)     # refused twice
        sink.reply("z@example.org", 451, at="data")
        sink.drop_at("w@example.org")             # the connection dies at RCPT TO for w, once
        sink.drop_at("v@example.org", at="data")  # queued, then dies before the 250 reply
        arrived, release = sink.hold("u@example.org")  # its DATA waits for release.set()

Optional STARTTLS (``tls_context``), implicit TLS (``ssl_context``) and AUTH
(``credentials=(user, password)``; login failures answer 535); ``smtputf8=False``
leaves SMTPUTF8 out of EHLO, as many relays do. ``sink.fault_mix = FaultMix(...)``
draws a random fault or ghost for every message (tests/fakes/fault_mix.py): 451 at
RCPT (rate limited), 451 after DATA, 421, no reply within the client's timeout, a
dropped connection, or a ghost (queued, then the connection drops before the 250).

A message counts as on the wire (``fault_mix.on_wire``) from its RCPT TO until the
client has had its answer, which the server learns when the client speaks again
on that connection (the next MAIL, RSET, NOOP or QUIT) or hangs up.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
from collections import defaultdict, deque
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from .fault_mix import FaultMix


def free_port() -> int:
    # aiosmtpd's Controller checks its own port, so port=0 does not work.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    session: int  # which connection carried it

    @property
    def message(self) -> EmailMessage:
        return BytesParser(policy=policy.default).parsebytes(self.raw)


def _off_wire(holder: list) -> None:
    """Count a message off the wire, once (``holder`` is ``[mix]`` until then)."""
    if holder:
        holder.pop().carry(-1)


def _answered(session) -> None:
    """The client spoke again or hung up: it has the answer to its last message."""
    _off_wire(getattr(session, "on_wire", []))


class _Server(SMTP):
    def connection_lost(self, error) -> None:
        if self.session is not None:
            _answered(self.session)
        super().connection_lost(error)


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _Server(self.handler, **self.SMTP_kwargs)


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink
        self.numbers = itertools.count(1)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        _answered(session)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RSET(self, server, session, envelope):
        _answered(session)
        return "250 OK"

    async def handle_NOOP(self, server, session, envelope, arg):
        _answered(session)
        return "250 OK"

    async def handle_QUIT(self, server, session, envelope):
        _answered(session)
        return "221 Bye"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        key = address.lower()
        sink = self.sink
        mix = sink.fault_mix
        if mix is not None and not envelope.rcpt_tos and not hasattr(envelope, "fate"):
            mix.carry(1)  # a message on the wire until the client has its answer
            session.on_wire = [mix]
            envelope.fate = mix.draw()
            if envelope.fate in ("429", "503", "reset"):  # refused before DATA: not sent
                _off_wire(session.on_wire)
            if envelope.fate == "429":
                return "451 4.7.1 too many messages, slow down"
            if envelope.fate == "503":
                return "421 4.3.2 service not available"
            if envelope.fate == "reset":
                server.transport.abort()
                return "421 gone"
        with sink.lock:
            sink.rcpt_attempts[key] += 1
            if key in sink.drops:
                sink.drops.discard(key)
                server.transport.abort()  # no reply at all: a dead connection
                return "421 gone"
            code = sink.rcpt_script[key].popleft() if sink.rcpt_script[key] else None
        if code is not None:
            text = "try again later" if code < 500 else "no such user here"
            return f"{code} {'4.2.1' if code < 500 else '5.1.1'} <{address}>: {text}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        sink = self.sink
        held = next(
            (sink.holds[r.lower()] for r in envelope.rcpt_tos if r.lower() in sink.holds), None
        )
        if held is not None:
            arrived, release = held
            arrived.set()
            await asyncio.to_thread(release.wait)
        fate = getattr(envelope, "fate", None)
        if fate == "stall":
            await asyncio.sleep(sink.fault_mix.stall_seconds)
            return "451 4.3.0 timed out, not queued"
        if fate == "500":
            return "451 4.3.0 local error, not queued"
        if fate == "ghost":
            with sink.lock:
                sink.received.append(
                    Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content, 0)
                )
            server.transport.abort()
            return "421 gone"
        with sink.lock:
            dropped = [r for r in envelope.rcpt_tos if r.lower() in sink.data_drops]
            if dropped:
                # Queued, then the line dies before the 250: the sender cannot know.
                sink.data_drops.discard(dropped[0].lower())
                sink.received.append(
                    Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content, 0)
                )
                server.transport.abort()
                return "421 gone"
            for rcpt in envelope.rcpt_tos:
                script = sink.data_script[rcpt.lower()]
                if script:
                    code = script.popleft()
                    return f"{code} message not accepted now"
            if not hasattr(session, "sink_number"):
                session.sink_number = next(self.numbers)
            sink.received.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    envelope.content,
                    session.sink_number,
                )
            )
        return "250 2.0.0 OK queued"


class SmtpSink:
    def __init__(
        self,
        *,
        tls_context=None,
        ssl_context=None,
        credentials: tuple[str, str] | None = None,
        smtputf8: bool = True,
    ) -> None:
        self.port = free_port()
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.rcpt_attempts: defaultdict[str, int] = defaultdict(int)
        self.rcpt_script: defaultdict[str, deque] = defaultdict(deque)
        self.data_script: defaultdict[str, deque] = defaultdict(deque)
        self.drops: set[str] = set()
        self.data_drops: set[str] = set()
        self.holds: dict[str, tuple[threading.Event, threading.Event]] = {}
        self.logins: list[str] = []
        self.fault_mix: FaultMix | None = None
        self.login_attempts = 0  # failed ones included
        kwargs = {"enable_SMTPUTF8": smtputf8}
        if tls_context is not None:
            kwargs.update(tls_context=tls_context, require_starttls=True)
        if credentials is not None:
            kwargs.update(
                authenticator=self._authenticator(credentials),
                auth_required=True,
                auth_require_tls=tls_context is not None or ssl_context is not None,
            )
        self.controller = _Controller(
            _Handler(self),
            hostname="127.0.0.1",
            port=self.port,
            ssl_context=ssl_context,
            **kwargs,
        )

    def _authenticator(self, credentials: tuple[str, str]):
        user, password = credentials

        def check(server, session, envelope, mechanism, auth_data):
            with self.lock:
                self.login_attempts += 1
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login.decode() == user
                and auth_data.password.decode() == password
            )
            if ok:
                with self.lock:
                    self.logins.append(user)
            return AuthResult(success=ok, handled=False)

        return check

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def reply(self, address: str, *codes: int, at: str = "rcpt") -> None:
        script = self.rcpt_script if at == "rcpt" else self.data_script
        with self.lock:
            script[address.lower()].extend(codes)

    def drop_at(self, address: str, at: str = "rcpt") -> None:
        """Kill the connection at RCPT TO for ``address`` (or after its DATA, once queued)."""
        with self.lock:
            (self.drops if at == "rcpt" else self.data_drops).add(address.lower())

    def hold(self, address: str) -> tuple[threading.Event, threading.Event]:
        """Hold the DATA of ``address``'s message: (set when it arrived, set it to answer)."""
        held = threading.Event(), threading.Event()
        with self.lock:
            self.holds[address.lower()] = held
        return held

    def __exit__(self, *exc) -> None:
        for _, release in list(self.holds.values()):
            release.set()
        self.controller.stop()

    def messages_to(self, address: str) -> list[Received]:
        return [r for r in self.received if address.lower() in (a.lower() for a in r.rcpt_tos)]

    @property
    def sessions(self) -> set[int]:
        return {r.session for r in self.received}
