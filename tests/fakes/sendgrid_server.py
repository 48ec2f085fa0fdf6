"""A fake SendGrid v3 ``POST /v3/mail/send`` on 127.0.0.1 for tests.

It enforces the documented contract (shared/docs/providers.md §1): bearer auth
(401 with SendGrid's body), JSON schema basics, 1–1000 personalizations, at
most 1000 recipients in all, each address once (400 naming the duplicate), at
most 10 unique categories, substitutions ≤ 10,000 bytes per personalization,
reserved headers refused, 202 with ``X-Message-Id`` (200 and nothing sent in
sandbox mode). Each accepted personalization becomes one :class:`Delivered`
with the substitutions applied, so a test reads each recipient's own mail.

After a 429 it keeps answering 429 until ``X-RateLimit-Reset`` passes, as a
real rate limit does, so a client that retries early shows up. Faults are
scripted for the next calls::

    fake.fail_next(2, 503)
    fake.rate_limit_next(1, reset_in=2)
    fake.delay_next(1, seconds=3)      # longer than the client's timeout
    fake.drop_next(1)                  # close the connection without answering
    fake.ghost_next(1)                 # send the mail, then close without answering
    fake.close_idle_next(1)            # answer, then close the idle connection

``fake.fault_mix = FaultMix(...)`` draws a random fault or ghost for every
request instead (tests/fakes/fault_mix.py).

``latency`` delays every answer (after the mail is accepted), like a distant
API; ``peak_in_flight`` is the most requests it ever held at once. With
``keep_bodies=False`` each recipient's record leaves out the message's text,
so a send to 100,000 fits in memory.
"""

from __future__ import annotations

import contextlib
import json
import math
import secrets
import socket
import ssl
import threading
import time
import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .fault_mix import FaultMix, answered, unanswered

MAX_BODY = 30 * 1024 * 1024
RESERVED_HEADERS = {
    h.lower()
    for h in (
        "x-sg-id",
        "x-sg-eid",
        "received",
        "dkim-signature",
        "Content-Type",
        "Content-Transfer-Encoding",
        "To",
        "From",
        "Subject",
        "Reply-To",
        "CC",
        "BCC",
    )
}


def error_body(message: str, field_name: str | None = None) -> dict:
    return {"errors": [{"message": message, "field": field_name, "help": None}]}


class Invalid(Exception):
    def __init__(self, message: str, field_name: str | None = None, status: int = 400):
        super().__init__(message)
        self.body = error_body(message, field_name)
        self.status = status


@dataclass(frozen=True)
class Fault:
    kind: str  # "status", "rate_limit", "delay", "drop", "ghost", "garble"
    status: int = 0
    body: dict | None = None
    reset_in: float = 0.0
    seconds: float = 0.0


@dataclass
class Delivered:
    """One recipient's message as SendGrid would send it (substitutions applied)."""

    to: str
    name: str | None
    subject: str
    text: str
    html: str
    headers: dict[str, str]
    categories: list[str]
    custom_args: dict[str, str]
    message_id: str
    from_email: str
    asm_group_id: int | None = None


@dataclass
class Call:
    """Every request that reached the server, and what it answered."""

    status: int
    recipients: int
    authorization: str | None
    at: float = field(default_factory=time.time)  # when it arrived


@dataclass
class _State:
    faults: deque = field(default_factory=deque)
    blocked_until: float = 0.0
    calls: list[Call] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)  # accepted bodies
    delivered: list[Delivered] = field(default_factory=list)
    sandboxed: list[dict] = field(default_factory=list)


def _substitute(text: str, subs: dict[str, str]) -> str:
    for key, value in subs.items():
        text = text.replace(key, value)
    return text


def _check_str_map(value, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise Invalid(f"The {where} must be an object of string keys and string values.", where)
    return value


def validate(body, *, keep_bodies: bool = True) -> list[Delivered]:
    """Check a mail/send body against the contract; the messages it would send.

    ``keep_bodies=False``: the messages carry no subject, text or HTML (a big send's record).
    """
    if not isinstance(body, dict):
        raise Invalid("Invalid type. Expected: object, given: " + type(body).__name__)
    sender = body.get("from")
    if not isinstance(sender, dict) or not isinstance(sender.get("email"), str):
        raise Invalid("The from object must be provided for every email send.", "from")
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        raise Invalid(
            "The personalizations field is required and must have at least one personalization.",
            "personalizations",
        )
    if len(personalizations) > 1000:
        raise Invalid(
            "The personalizations field may not have more than 1000 items.", "personalizations"
        )
    if "reply_to" in body and "reply_to_list" in body:
        raise Invalid("reply_to and reply_to_list are mutually exclusive.", "reply_to")
    contents = body.get("content")
    template = body.get("template_id")
    if not template:
        if not isinstance(contents, list) or not contents:
            raise Invalid(
                "Unless a valid template_id is provided, the content parameter is required.",
                "content",
            )
        types = [c.get("type") for c in contents if isinstance(c, dict)]
        if len(types) != len(contents) or any(
            not isinstance(c.get("value"), str) or not c["value"] for c in contents
        ):
            raise Invalid("Each content item needs a type and a non-empty value.", "content")
        if "text/plain" in types and types[0] != "text/plain":
            raise Invalid("If present, text/plain must be first.", "content")
    categories = body.get("categories", [])
    if not isinstance(categories, list) or len(categories) > 10:
        raise Invalid("You may not have more than 10 categories per request.", "categories")
    if len(set(categories)) != len(categories) or any(
        not isinstance(c, str) or len(c) > 255 for c in categories
    ):
        raise Invalid("Categories must be unique strings of at most 255 characters.", "categories")
    top_headers = _check_str_map(body.get("headers", {}), "headers")
    top_args = _check_str_map(body.get("custom_args", {}), "custom_args")
    mail_settings = body.get("mail_settings", {})
    sandbox = (mail_settings.get("sandbox_mode") or {}).get("enable", False)
    if not isinstance(sandbox, bool):
        raise Invalid("sandbox_mode.enable must be a boolean.", "mail_settings.sandbox_mode.enable")
    asm = body.get("asm")
    if asm is not None and not isinstance(asm.get("group_id"), int):
        raise Invalid("The asm.group_id must be an integer.", "asm.group_id")

    texts = {c["type"]: c["value"] for c in contents or []}
    seen: dict[str, str] = {}
    total = 0
    out: list[Delivered] = []
    for n, p in enumerate(personalizations):
        where = f"personalizations.{n}"
        if not isinstance(p, dict) or not isinstance(p.get("to"), list) or not p["to"]:
            raise Invalid("The to array is required for all personalization objects.", where)
        subs = _check_str_map(p.get("substitutions", {}), f"{where}.substitutions")
        if len(json.dumps(subs).encode()) > 10_000:
            raise Invalid("Substitutions may not exceed 10,000 bytes per personalization.", where)
        headers = {**top_headers, **_check_str_map(p.get("headers", {}), f"{where}.headers")}
        for name in headers:
            if name.lower() in RESERVED_HEADERS:
                raise Invalid(f"The header {name} is reserved and may not be set.", "headers")
        subject = p.get("subject", body.get("subject"))
        if not isinstance(subject, str) or not subject:
            raise Invalid(
                "The subject is required. You can get around this requirement if you use a "
                "template with a subject defined or if every personalization has a subject "
                "defined.",
                "subject",
            )
        for kind in ("to", "cc", "bcc"):
            for address in p.get(kind, []):
                email = address.get("email") if isinstance(address, dict) else None
                if not isinstance(email, str) or "@" not in email:
                    raise Invalid("Does not contain a valid address.", f"{where}.{kind}")
                total += 1
                if email.lower() in seen:
                    raise Invalid(
                        "Each email address in the personalization block should be unique "
                        "between to, cc, and bcc. We found the first duplicate instance of "
                        f"[{email}] in the {where}.{kind} field.",
                        f"{where}.{kind}",
                    )
                seen[email.lower()] = where
        args = {**top_args, **_check_str_map(p.get("custom_args", {}), f"{where}.custom_args")}
        for address in p["to"]:
            out.append(
                Delivered(
                    to=address["email"],
                    name=address.get("name"),
                    subject=_substitute(subject, subs) if keep_bodies else "",
                    text=_substitute(texts.get("text/plain", ""), subs) if keep_bodies else "",
                    html=_substitute(texts.get("text/html", ""), subs) if keep_bodies else "",
                    headers=headers,
                    categories=list(categories),
                    custom_args=args,
                    message_id="",
                    from_email=sender["email"],
                    asm_group_id=(asm or {}).get("group_id"),
                )
            )
    if total > 1000:
        raise Invalid(
            "The total number of recipients (to, cc and bcc) may not exceed 1000.",
            "personalizations",
        )
    return out


class FakeSendGrid:
    """Run with ``with FakeSendGrid(api_key) as fake:``; point the SDK at ``fake.url``."""

    def __init__(
        self,
        api_key: str = "SG.test-key",
        latency: float = 0.0,
        *,
        keep_bodies: bool = True,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.api_key = api_key
        self.latency = latency
        self.keep_bodies = keep_bodies  # False: record who got what, not each message's text
        self.in_flight = 0
        self.peak_in_flight = 0
        self.connections = 0  # TCP connections accepted
        self.idle_closed = threading.Event()  # see close_idle_next
        self._close_idle = 0
        self.state = _State()
        self.fault_mix: FaultMix | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._answering = threading.Event()
        self._answering.set()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.scheme = "http"
        if tls is not None:  # HTTPS, as the real API: tls is the server's context
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{self.scheme}://{host}:{port}"

    def __enter__(self) -> FakeSendGrid:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    # -- what happened -------------------------------------------------------
    @property
    def delivered(self) -> list[Delivered]:
        return list(self.state.delivered)

    @property
    def calls(self) -> list[Call]:
        return list(self.state.calls)

    @property
    def requests(self) -> list[dict]:
        return list(self.state.requests)

    @property
    def sandboxed(self) -> list[dict]:
        return list(self.state.sandboxed)

    def events(self, kind: str = "processed") -> list[dict]:
        """Event Webhook events for every message accepted, as SendGrid posts them.

        Custom args appear as top-level keys; ``sg_message_id`` is the request's
        X-Message-Id followed by a dot and SendGrid's own suffix.
        """
        out = []
        for n, message in enumerate(self.delivered):
            event = {
                **message.custom_args,
                "email": message.to,
                "timestamp": int(time.time()),
                "event": kind,
                "smtp-id": f"<{message.message_id}.{n}@ismtpd-fake>",
                "sg_event_id": secrets.token_urlsafe(16),
                "sg_message_id": f"{message.message_id}.filterdrecv-fake-{n}.0",
                "category": message.categories,
            }
            if kind == "delivered":
                event["response"] = "250 2.0.0 OK"
            out.append(event)
        return out

    # -- scripted faults -----------------------------------------------------
    def fail_next(self, n: int, status: int, message: str | None = None) -> None:
        defaults = {
            400: "invalid request",
            401: "authorization required",
            403: "access forbidden",
            413: "content too large",
            500: "internal server error",
            502: "bad gateway",
            503: "service unavailable",
            504: "gateway timeout",
        }
        body = error_body(message or defaults.get(status, "error"))
        self._script(n, Fault("status", status=status, body=body))

    def rate_limit_next(self, n: int, reset_in: float) -> None:
        self._script(n, Fault("rate_limit", reset_in=reset_in))

    def let_time_pass(self, seconds: float) -> None:
        """For the rate limit, as if ``seconds`` went by: a test's injected sleep calls this
        instead of sleeping, and a retry before the reset still gets a 429."""
        with self._lock:
            self.state.blocked_until -= seconds

    def delay_next(self, n: int, seconds: float) -> None:
        """Answer nothing for ``seconds``, then 503: the request was not processed."""
        self._script(n, Fault("delay", seconds=seconds))

    def drop_next(self, n: int) -> None:
        """Read the request, then close the connection without an answer (not processed)."""
        self._script(n, Fault("drop"))

    def pass_next(self, n: int) -> None:
        """The next ``n`` calls are answered normally (to script a fault for a later one)."""
        self._script(n, Fault("pass"))

    def ghost_next(self, n: int, *, garble: bool = False) -> None:
        """Accept and record the mail (it goes out), then drop the connection before the
        answer, or with ``garble`` answer bytes that are not HTTP: the client cannot know."""
        self._script(n, Fault("garble" if garble else "ghost"))

    def close_idle_next(self, n: int) -> None:
        """Answer the next ``n`` requests as usual, then close their connection (it sets
        ``idle_closed``), as a server does with a connection idle past its keep-alive."""
        with self._lock:
            self._close_idle += n

    def hold_answers(self) -> None:
        """Accept mail as usual but answer nothing until ``release_answers()``: every
        sender ends up waiting with its requests on the wire."""
        self._answering.clear()

    def release_answers(self) -> None:
        self._answering.set()

    def _script(self, n: int, fault: Fault) -> None:
        with self._lock:
            self.state.faults.extend([fault] * n)

    # -- the server ----------------------------------------------------------
    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # connections kept alive, as the real API's are

            def log_message(self, *args) -> None:  # keep test output quiet
                return

            def setup(self) -> None:
                super().setup()
                with fake._lock:
                    fake.connections += 1

            def finish(self) -> None:
                answered(self)
                super().finish()

            def do_POST(self) -> None:
                mix = fake.fault_mix
                with fake._lock:
                    fake.in_flight += 1
                    fake.peak_in_flight = max(fake.peak_in_flight, fake.in_flight)
                try:
                    with mix.wire(self) if mix else contextlib.nullcontext() as self.wire:
                        fake._handle(self)
                finally:
                    with fake._lock:
                        fake.in_flight -= 1
                        close_idle = fake._close_idle > 0
                        fake._close_idle -= close_idle
                if close_idle:  # as a server whose keep-alive timeout ran out
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.wfile.flush()
                        self.connection.shutdown(socket.SHUT_RDWR)
                    fake.idle_closed.set()

            def do_GET(self) -> None:
                self.close_connection = True
                fake._answer(self, 405, error_body("method not allowed"))

        return Handler

    def _answer(self, handler, status: int, body: dict | None, headers: dict | None = None):
        if self.latency:
            self._stopping.wait(self.latency)
        while not self._answering.wait(0.05) and not self._stopping.is_set():
            pass
        data = json.dumps(body).encode() if body is not None else b""
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        if data:
            handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        try:
            handler.end_headers()
            handler.wfile.write(data)
        except OSError:  # the client timed out and went away
            unanswered(handler)

    def _rate_limited(self, handler, until: float, recipients: int, auth: str | None) -> None:
        with self._lock:
            self.state.calls.append(Call(429, recipients, auth))
        headers = {
            "X-RateLimit-Limit": "600",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(math.ceil(until)),
        }
        self._answer(handler, 429, error_body("too many requests"), headers)

    def _handle(self, handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            handler.close_connection = True  # the body is left unread
            self._answer(handler, 413, error_body("content too large"))
            return
        raw = handler.rfile.read(length)
        auth = handler.headers.get("Authorization")
        try:
            body = json.loads(raw)
            count = sum(len(p.get("to", [])) for p in body.get("personalizations", []))
        except (ValueError, AttributeError, TypeError):
            body, count = None, 0
        if getattr(handler, "wire", None) is not None:
            handler.wire.carry(count)
        with self._lock:
            fault = self.state.faults.popleft() if self.state.faults else None
            blocked_until = self.state.blocked_until
        passed = fault is not None and fault.kind == "pass"
        if passed:
            fault = None
        mixed = self.fault_mix.draw(count) if self.fault_mix and not passed and not fault else None
        if mixed not in (None, "ghost"):
            fault = self._mixed_fault(mixed)
        if mixed == "ghost":
            fault = Fault("ghost")
        if fault is not None and fault.kind not in ("ghost", "garble"):
            self._fault(handler, fault, count, auth)
            return
        if time.time() < blocked_until:
            self._rate_limited(handler, blocked_until, count, auth)
            return
        # absolute-form (a request sent through a proxy) names the same path
        if urllib.parse.urlsplit(handler.path).path != "/v3/mail/send":
            self._record_call(404, count, auth)
            self._answer(handler, 404, error_body("not found"))
            return
        if auth != f"Bearer {self.api_key}":
            self._record_call(401, count, auth)
            self._answer(handler, 401, error_body("authorization required"))
            return
        if not (handler.headers.get("Content-Type") or "").startswith("application/json"):
            self._record_call(415, count, auth)
            self._answer(handler, 415, error_body("Content-Type must be application/json"))
            return
        if body is None:
            self._record_call(400, count, auth)
            self._answer(handler, 400, error_body("Bad Request", None))
            return
        try:
            messages = validate(body, keep_bodies=self.keep_bodies)
        except Invalid as exc:
            self._record_call(exc.status, count, auth)
            self._answer(handler, exc.status, exc.body)
            return
        message_id = secrets.token_urlsafe(16)
        sandbox = (body.get("mail_settings", {}).get("sandbox_mode") or {}).get("enable") is True
        with self._lock:
            answer = 0 if fault is not None else 200 if sandbox else 202  # 0: no answer
            self.state.calls.append(Call(answer, count, auth))
            if sandbox:
                self.state.sandboxed.append(body)
            else:
                self.state.requests.append(body)
                for message in messages:
                    message.message_id = message_id
                    self.state.delivered.append(message)
        if fault is not None:  # a ghost: it went out, the answer never arrives whole
            handler.close_connection = True
            with contextlib.suppress(OSError):
                if fault.kind == "garble":
                    handler.wfile.write(b"\x00\x17garbled\r\n\r\n")
                    handler.wfile.flush()
                handler.connection.shutdown(socket.SHUT_RDWR)
        elif sandbox:
            self._answer(handler, 200, None)
        else:
            self._answer(handler, 202, None, {"X-Message-Id": message_id})

    def _record_call(self, status: int, recipients: int, auth: str | None) -> None:
        with self._lock:
            self.state.calls.append(Call(status, recipients, auth))

    def _mixed_fault(self, kind: str) -> Fault:
        mix = self.fault_mix
        if kind == "429":
            return Fault("rate_limit", reset_in=mix.rate_limit_seconds)
        if kind == "stall":
            return Fault("delay", seconds=mix.stall_seconds)
        if kind == "reset":
            return Fault("drop")
        return Fault("status", status=int(kind), body=error_body("internal server error"))

    def _fault(self, handler, fault: Fault, count: int, auth: str | None) -> None:
        if fault.kind == "status":
            self._record_call(fault.status, count, auth)
            self._answer(handler, fault.status, fault.body)
        elif fault.kind == "rate_limit":
            until = time.time() + fault.reset_in
            with self._lock:
                self.state.blocked_until = until
            self._rate_limited(handler, until, count, auth)
        elif fault.kind == "delay":
            self._record_call(0, count, auth)
            self._stopping.wait(fault.seconds)
            with contextlib.suppress(OSError):  # the client gave up first, as intended
                self._answer(handler, 503, error_body("service unavailable"))
        elif fault.kind == "drop":
            self._record_call(0, count, auth)
            handler.close_connection = True
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
