"""Lean provider stand-ins for the benchmark: SendGrid's mail/send and an SMTP sink.

Unlike the test fakes (tests/fakes), they keep no message bodies by default: they
check the contract that matters for counting (at most 1000 personalizations and
1000 recipients per request, each address once, 202 + ``X-Message-Id``) and count
what they accepted per address, so a million recipients fit in a few MiB.
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
from aiosmtpd.controller import Controller


class SendGridStandIn:
    """``POST /v3/mail/send`` on 127.0.0.1 answering 202 after ``latency`` seconds.

    Records, per accepted request, the recipients; counts requests, refused
    requests, the most requests in flight at once and when the first arrived.
    """

    def __init__(self, latency: float = 0.05) -> None:
        self.latency = latency
        self.lock = threading.Lock()
        self.received: Counter[str] = Counter()
        self.requests = 0
        self.refused: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.first_request: float | None = None
        self.last_answer: float | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._server.request_queue_size = 128
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> SendGridStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def check(self, body) -> list[str]:
        """The addresses of one valid request; raise ValueError naming what is wrong."""
        personalizations = body.get("personalizations") if isinstance(body, dict) else None
        if not isinstance(personalizations, list) or not 1 <= len(personalizations) <= 1000:
            raise ValueError("personalizations must hold 1 to 1000 items")
        addresses: list[str] = []
        for p in personalizations:
            for kind in ("to", "cc", "bcc"):
                addresses.extend(a["email"] for a in p.get(kind, []))
        if len(addresses) > 1000:
            raise ValueError(f"{len(addresses)} recipients in one request (at most 1000)")
        if len({a.lower() for a in addresses}) != len(addresses):
            raise ValueError("an address appears twice in one request")
        if not body.get("from", {}).get("email"):
            raise ValueError("no from address")
        return addresses

    def _handler(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the real API offers

            def log_message(self, *args) -> None:
                return

            def do_POST(self) -> None:
                standin._handle(self)

        return Handler

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if self.first_request is None:
                self.first_request = time.monotonic()
        try:
            raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
            try:
                if handler.path != "/v3/mail/send":
                    raise ValueError(f"unknown path {handler.path}")
                addresses = self.check(orjson.loads(raw))  # json.loads: 10 times the CPU
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                with self.lock:
                    self.refused.append(str(exc))
                _answer(handler, 400, json.dumps({"errors": [{"message": str(exc)}]}).encode())
                return
            time.sleep(self.latency)
            with self.lock:
                self.requests += 1
                self.received.update(a.lower() for a in addresses)
                self.last_answer = time.monotonic()
            _answer(handler, 202, b"", {"X-Message-Id": secrets.token_urlsafe(16)})
        finally:
            with self.lock:
                self.in_flight -= 1


def _answer(handler, status: int, body: bytes, headers: dict | None = None) -> None:
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def free_port() -> int:
    """A free port on 127.0.0.1 (aiosmtpd checks its own port, so port 0 does not work)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _SinkHandler:
    def __init__(self, sink: SmtpSinkStandIn) -> None:
        self.sink = sink

    async def handle_DATA(self, server, session, envelope):
        self.sink.accept(envelope.rcpt_tos, envelope.original_content or envelope.content)
        return "250 2.0.0 OK queued"


class SmtpSinkStandIn:
    """An aiosmtpd server that counts messages per recipient and when they came.

    With ``keep=True`` it also keeps each message's bytes (to replay the same
    messages with a raw smtplib loop).
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.lock = threading.Lock()
        self.keep = False
        self.kept: list[tuple[str, bytes]] = []
        self.received: Counter[str] = Counter()
        self.messages = 0
        self.bytes = 0
        self.first: float | None = None
        self.last: float | None = None
        self.controller = Controller(
            _SinkHandler(self),
            hostname="127.0.0.1",
            port=self.port,
            enable_SMTPUTF8=True,
            decode_data=False,
            data_size_limit=0,
        )

    def accept(self, rcpt_tos: list[str], data: bytes) -> None:
        now = time.monotonic()
        with self.lock:
            self.messages += 1
            self.bytes += len(data)
            self.received.update(r.lower() for r in rcpt_tos)
            self.first = self.first or now
            self.last = now
            if self.keep:
                self.kept.append((rcpt_tos[0], data))

    def reset(self) -> None:
        with self.lock:
            self.received.clear()
            self.messages = self.bytes = 0
            self.first = self.last = None

    def __enter__(self) -> SmtpSinkStandIn:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()
