"""A fake Mastodon instance on 127.0.0.1: ``GET /api/v2/instance``, ``POST /api/v1/statuses``.

It follows Mastodon's documented behaviour: a Bearer token; a status of at most
``max_characters`` (graphemes, every URL counting 23) or 422 "Validation failed";
``in_reply_to_id`` must name an existing status (404 otherwise); an
``Idempotency-Key`` seen before for this token returns the first status instead of
posting again; 429 carries ``X-RateLimit-Reset`` as an ISO 8601 time and the
instance keeps answering 429 until then.

Faults are scripted per POST /api/v1/statuses call number with the X fake's helpers.
"""

from __future__ import annotations

import itertools
import json
import math
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import regex

from fakes.http_fake import FakeHTTPServer, JsonHandler
from fakes.x_server import Fault

URL = regex.compile(r"https?://\S+")


def length(text: str, url_weight: int = 23) -> int:
    return len(regex.findall(r"\X", URL.sub("x" * url_weight, text)))


@dataclass
class Status:
    id: str
    text: str
    in_reply_to_id: str | None
    visibility: str
    language: str | None
    idempotency_key: str | None
    at: float


@dataclass
class FakeMastodon(FakeHTTPServer):
    token: str
    max_characters: int | None = 500  # None: the instance does not say
    host: str = "127.0.0.1"
    statuses: list[Status] = field(default_factory=list)
    calls: int = 0  # POST /api/v1/statuses requests, answered or not
    rejected: list[tuple[int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._faults: dict[int, Fault] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(113500000000000001)
        self._keys: dict[str, Status] = {}
        self._limited_until = 0.0
        self._release = threading.Event()
        self.holding = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    def thread_of(self, status_id: str) -> list[Status]:
        by_id = {s.id: s for s in self.statuses}
        chain = [by_id[status_id]]
        while chain[-1].in_reply_to_id:
            chain.append(by_id[chain[-1].in_reply_to_id])
        return chain[::-1]

    def start(self) -> FakeMastodon:
        return self._serve(_Handler)

    def instance(self) -> dict:
        statuses = {"max_media_attachments": 4, "characters_reserved_per_url": 23}
        if self.max_characters is not None:
            statuses["max_characters"] = self.max_characters
        return {
            "domain": "social.example",
            "title": "Social Example",
            "version": "4.3.0",
            "configuration": {"statuses": statuses},
        }

    def post(self, form: dict, key: str | None) -> tuple[int, dict]:
        text = form.get("status", "")
        limit = self.max_characters or 500
        with self._lock:
            if key and key in self._keys:
                return 200, self.render(self._keys[key])
            if not text.strip():
                return 422, {"error": "Validation failed: Text can't be blank"}
            if length(text) > limit:
                message = f"Validation failed: Text character limit of {limit} exceeded"
                return 422, {"error": message}
            reply_to = form.get("in_reply_to_id") or None
            if reply_to and reply_to not in {s.id for s in self.statuses}:
                return 404, {"error": "Record not found"}
            status = Status(
                str(next(self._ids)),
                text,
                reply_to,
                form.get("visibility", "public"),
                form.get("language"),
                key,
                time.time(),
            )
            self.statuses.append(status)
            if key:
                self._keys[key] = status
        return 200, self.render(status)

    def render(self, status: Status) -> dict:
        return {
            "id": status.id,
            "created_at": datetime.fromtimestamp(status.at, UTC).isoformat(),
            "in_reply_to_id": status.in_reply_to_id,
            "visibility": status.visibility,
            "language": status.language,
            "uri": f"https://social.example/users/gazette/statuses/{status.id}",
            "url": f"https://social.example/@gazette/{status.id}",
            "content": f"<p>{status.text}</p>",
        }


class _Handler(JsonHandler):
    state: FakeMastodon

    def _send(self, status: int, body: dict, headers: dict | None = None) -> None:
        super()._send(status, body, {"Date": formatdate(usegmt=True), **(headers or {})})

    def do_GET(self) -> None:
        if urlsplit(self.path).path.rstrip("/") == "/api/v2/instance":
            return self._send(200, self.state.instance())
        self._send(404, {"error": "Record not found"})

    def do_POST(self) -> None:
        length_ = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length_) if length_ else b""
        if urlsplit(self.path).path != "/api/v1/statuses":
            return self._send(404, {"error": "Record not found"})
        state = self.state
        with state._lock:
            state.calls += 1
            call = state.calls
            fault = state._faults.pop(call, None)
        if self.headers.get("Authorization") != f"Bearer {state.token}":
            state.rejected.append((call, 401))
            return self._send(401, {"error": "The access token is invalid"})
        now = time.time()
        if (fault and fault.kind == "rate_limit") or now < state._limited_until:
            if fault and fault.kind == "rate_limit" and fault.reset_in is not None:
                state._limited_until = math.ceil(now + fault.reset_in)
            headers = {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0"}
            if state._limited_until > now:
                reset = datetime.fromtimestamp(state._limited_until, UTC)
                headers["X-RateLimit-Reset"] = reset.isoformat(timespec="milliseconds")
            state.rejected.append((call, 429))
            return self._send(429, {"error": "Too many requests"}, headers)
        if fault and fault.kind == "status":
            state.rejected.append((call, fault.status))
            return self._send(fault.status, fault.body or {"error": "Service Unavailable"})
        if fault and fault.kind == "hold":
            state.holding.set()
            state._release.wait(30)
            state.rejected.append((call, 0))
            return self._drop()
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("application/json"):
            form = json.loads(raw or b"{}")
        else:
            form = dict(parse_qsl(raw.decode()))
        key = self.headers.get("Idempotency-Key")
        if fault and fault.kind == "drop":
            if fault.create_post:
                state.post(form, key)
            state.rejected.append((call, 0))
            return self._drop()
        status, body = state.post(form, key)
        if status >= 400:
            state.rejected.append((call, status))
        if fault and fault.kind == "delay":
            state._release.wait(fault.seconds)
        self._send(status, body)
