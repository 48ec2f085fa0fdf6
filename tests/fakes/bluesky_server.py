"""A fake Bluesky PDS on 127.0.0.1 for tests: the XRPC calls a poster makes.

``com.atproto.server.createSession`` (app password); ``com.atproto.repo.createRecord``,
``getRecord`` and ``listRecords`` for ``app.bsky.feed.post``; ``uploadBlob``. It
enforces what the real PDS and AppView do to a post: at most 300 graphemes and 3000
bytes of text; link facets whose UTF-8 byte range lies inside the text on character
boundaries; a reply whose root and parent refs (uri + cid) name existing posts of one
thread; an external embed with uri, title and description, and a thumbnail that is an
uploaded image of at most 1 MB. After a 429 it keeps answering 429 until
``ratelimit-reset``, as the PDS does.

Faults are scripted per createRecord call number with the X fake's helpers::

    fake.on_call(3, rate_limited(reset_in=2))
    fake.on_call(2, drop(create_post=True))
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import math
import threading
import time
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import regex

from fakes.http_fake import FakeHTTPServer, JsonHandler
from fakes.x_server import Fault

MAX_GRAPHEMES = 300
MAX_BYTES = 3000
THUMB_MAX_BYTES = 1_000_000
COLLECTION = "app.bsky.feed.post"
_B32 = "abcdefghijklmnopqrstuvwxyz234567"


def invalid(message: str, error: str = "InvalidRequest") -> dict:
    return {"error": error, "message": message}


def _jwt(claims: dict) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256', 'typ': 'at+jwt'})}.{part(claims)}.c2lnbmF0dXJl"


@dataclass
class Account:
    handle: str
    app_password: str
    did: str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"


@dataclass
class Post:
    uri: str
    cid: str
    record: dict
    at: float

    @property
    def text(self) -> str:
        return self.record["text"]

    @property
    def parent(self) -> str | None:
        return (self.record.get("reply") or {}).get("parent", {}).get("uri")

    @property
    def root(self) -> str | None:
        return (self.record.get("reply") or {}).get("root", {}).get("uri")

    @property
    def links(self) -> list[tuple[str, str]]:
        """(linked text, uri) of each link facet."""
        data = self.text.encode()
        found = []
        for facet in self.record.get("facets") or []:
            index = facet["index"]
            for feature in facet["features"]:
                if feature.get("$type") == "app.bsky.richtext.facet#link":
                    text = data[index["byteStart"] : index["byteEnd"]].decode()
                    found.append((text, feature["uri"]))
        return found

    @property
    def card(self) -> dict | None:
        embed = self.record.get("embed") or {}
        return embed.get("external") if embed.get("$type") == "app.bsky.embed.external" else None


@dataclass
class FakeBluesky(FakeHTTPServer):
    account: Account
    host: str = "127.0.0.1"
    posts: list[Post] = field(default_factory=list)
    calls: int = 0  # createRecord requests, answered or not
    logins: int = 0
    rejected: list[tuple[int, int]] = field(default_factory=list)  # (call, status)
    blobs: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # cid -> (data, type)
    listing_status: int | None = None  # e.g. 503: listRecords fails with it

    def __post_init__(self) -> None:
        self._faults: dict[int, Fault] = {}
        self._lock = threading.Lock()
        self._rkeys = itertools.count(int(time.time() * 1_000_000))
        self._tokens: set[str] = set()
        self._limited_until = 0.0
        self._release = threading.Event()
        self.holding = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    # -- control ---------------------------------------------------------
    def thread_of(self, uri: str) -> list[Post]:
        """The chain of replies ending at ``uri``, root first."""
        by_uri = {p.uri: p for p in self.posts}
        chain = [by_uri[uri]]
        while chain[-1].parent:
            chain.append(by_uri[chain[-1].parent])
        return chain[::-1]

    def start(self) -> FakeBluesky:
        return self._serve(_Handler)

    # -- behaviour ---------------------------------------------------------
    def login(self, body: dict) -> tuple[int, dict]:
        acct = self.account
        if body.get("identifier") not in (acct.handle, acct.did) or (
            body.get("password") != acct.app_password
        ):
            return 401, invalid("Invalid identifier or password", "AuthenticationRequired")
        now = int(time.time())
        claims = {"scope": "com.atproto.appPass", "sub": acct.did, "iat": now, "exp": now + 7200}
        access = _jwt(claims)
        with self._lock:
            self.logins += 1
            self._tokens.add(access)
        refresh = _jwt({**claims, "scope": "com.atproto.refresh", "exp": now + 86400})
        return 200, {
            "accessJwt": access,
            "refreshJwt": refresh,
            "handle": acct.handle,
            "did": acct.did,
            "active": True,
        }

    def authorised(self, header: str) -> bool:
        return header.startswith("Bearer ") and header[7:] in self._tokens

    def check(self, record: dict) -> str | None:
        """Why the PDS would refuse this post record, or None."""
        text = record.get("text")
        if record.get("$type") != COLLECTION or not isinstance(text, str):
            return "Invalid app.bsky.feed.post record: Record/text is required"
        if not record.get("createdAt"):
            return "Invalid app.bsky.feed.post record: Record/createdAt is required"
        data = text.encode()
        if len(regex.findall(r"\X", text)) > MAX_GRAPHEMES or len(data) > MAX_BYTES:
            return (
                "Invalid app.bsky.feed.post record: Record/text must not be longer than "
                f"{MAX_GRAPHEMES} graphemes"
            )
        for facet in record.get("facets") or []:
            start, end = facet["index"]["byteStart"], facet["index"]["byteEnd"]
            if not 0 <= start < end <= len(data):
                return "Invalid app.bsky.feed.post record: facet byte range outside the text"
            try:
                data[start:end].decode()
            except UnicodeDecodeError:
                return "Invalid app.bsky.feed.post record: facet splits a character"
            for feature in facet["features"]:
                uri = feature.get("uri", "")
                if feature.get("$type") == "app.bsky.richtext.facet#link" and "://" not in uri:
                    return "Invalid app.bsky.feed.post record: facet link uri must be a uri"
        reply = record.get("reply")
        if reply is not None:
            by_uri = {p.uri: p for p in self.posts}
            for name in ("root", "parent"):
                ref = reply.get(name) or {}
                post = by_uri.get(ref.get("uri"))
                if post is None or post.cid != ref.get("cid"):
                    return f"Invalid app.bsky.feed.post record: reply {name} not found"
            parent = by_uri[reply["parent"]["uri"]]
            if (parent.root or parent.uri) != reply["root"]["uri"]:
                return "Invalid app.bsky.feed.post record: reply root is not the parent's root"
        embed = record.get("embed")
        if embed is not None and embed.get("$type") == "app.bsky.embed.external":
            external = embed.get("external") or {}
            if not all(isinstance(external.get(k), str) for k in ("uri", "title", "description")):
                return "Invalid app.bsky.embed.external: uri, title and description are required"
            thumb = external.get("thumb")
            if thumb is not None:
                blob = self.blobs.get((thumb.get("ref") or {}).get("$link", ""))
                if blob is None or not blob[1].startswith("image/"):
                    return "Invalid app.bsky.embed.external: thumb is not an uploaded image"
                if len(blob[0]) > THUMB_MAX_BYTES:
                    return "Invalid app.bsky.embed.external: thumb is larger than 1 MB"
        return None

    def create(self, body: dict) -> tuple[int, dict]:
        repo = body.get("repo")
        if repo not in (self.account.handle, self.account.did):
            return 400, invalid(f"Could not find repo: {repo}")
        if body.get("collection") != COLLECTION:
            return 400, invalid("Unsupported collection")
        record = body.get("record") or {}
        with self._lock:
            problem = self.check(record)
            if problem:
                return 400, invalid(problem)
            rkey = _tid(next(self._rkeys))
            uri = f"at://{self.account.did}/{COLLECTION}/{rkey}"
            digest = hashlib.sha256(json.dumps(record, sort_keys=True).encode() + rkey.encode())
            cid = "bafyrei" + "".join(_B32[b % 32] for b in digest.digest())[:52]
            self.posts.append(Post(uri, cid, record, time.time()))
        return 200, {"uri": uri, "cid": cid, "validationStatus": "valid"}

    def upload(self, data: bytes, content_type: str) -> tuple[int, dict]:
        cid = "bafkrei" + "".join(_B32[b % 32] for b in hashlib.sha256(data).digest())[:52]
        with self._lock:
            self.blobs[cid] = (data, content_type)
        blob = {"$type": "blob", "ref": {"$link": cid}, "mimeType": content_type, "size": len(data)}
        return 200, {"blob": blob}

    def recent(self, query: dict[str, list[str]]) -> tuple[int, dict]:
        """listRecords: the newest posts first, as the PDS lists them."""
        if self.listing_status is not None:
            return self.listing_status, invalid("Upstream failure", "InternalServerError")
        limit = int((query.get("limit") or ["50"])[0])
        newest = self.posts[::-1][:limit]
        return 200, {"records": [{"uri": p.uri, "cid": p.cid, "value": p.record} for p in newest]}

    def get(self, query: dict[str, list[str]]) -> tuple[int, dict]:
        rkey = (query.get("rkey") or [""])[0]
        repo = (query.get("repo") or [""])[0]
        for post in self.posts:
            if post.uri.endswith(f"/{rkey}") and repo in (self.account.handle, self.account.did):
                return 200, {"uri": post.uri, "cid": post.cid, "value": post.record}
        return 400, invalid(f"Could not locate record: {rkey}", "RecordNotFound")


def _tid(micros: int) -> str:
    value = (micros << 10) & ((1 << 63) - 1)
    return "".join(_B32[(value >> (5 * i)) & 31] for i in range(12, -1, -1))


class _Handler(JsonHandler):
    state: FakeBluesky

    def _json(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            return {}

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        routes = {
            "/xrpc/com.atproto.repo.getRecord": self.state.get,
            "/xrpc/com.atproto.repo.listRecords": self.state.recent,
        }
        if url.path not in routes:
            return self._send(404, invalid("Method not implemented", "MethodNotImplemented"))
        if not self.state.authorised(self.headers.get("Authorization", "")):
            return self._send(401, invalid("Authentication Required", "AuthenticationRequired"))
        self._send(*routes[url.path](parse_qs(url.query)))

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if path == "/xrpc/com.atproto.repo.uploadBlob":
            length = int(self.headers.get("Content-Length") or 0)
            data = self.rfile.read(length) if length else b""
            if not self.state.authorised(self.headers.get("Authorization", "")):
                return self._send(401, invalid("Authentication Required", "AuthenticationRequired"))
            return self._send(*self.state.upload(data, self.headers.get("Content-Type", "")))
        body = self._json()
        if path == "/xrpc/com.atproto.server.createSession":
            return self._send(*self.state.login(body))
        if path == "/xrpc/com.atproto.repo.createRecord":
            return self._create(body)
        self._send(404, invalid("Method not implemented", "MethodNotImplemented"))

    def _create(self, body: dict) -> None:
        state = self.state
        with state._lock:
            state.calls += 1
            call = state.calls
            fault = state._faults.pop(call, None)
        if not state.authorised(self.headers.get("Authorization", "")):
            state.rejected.append((call, 401))
            return self._send(401, invalid("Authentication Required", "AuthenticationRequired"))
        now = time.time()
        if (fault and fault.kind == "rate_limit") or now < state._limited_until:
            if fault and fault.kind == "rate_limit" and fault.reset_in is not None:
                state._limited_until = math.ceil(now + fault.reset_in)
            headers = {
                "ratelimit-limit": "5000",
                "ratelimit-remaining": "0",
                "ratelimit-policy": "5000;w=3600",
            }
            if state._limited_until > now:
                headers["ratelimit-reset"] = str(int(state._limited_until))
            state.rejected.append((call, 429))
            return self._send(429, invalid("Rate Limit Exceeded", "RateLimitExceeded"), headers)
        if fault and fault.kind == "status":
            state.rejected.append((call, fault.status))
            return self._send(fault.status, fault.body or invalid("Internal Server Error"))
        if fault and fault.kind == "hold":
            state.holding.set()
            state._release.wait(30)
            state.rejected.append((call, 0))
            return self._drop()
        if fault and fault.kind == "drop":
            if fault.create_post:
                state.create(body)
            state.rejected.append((call, 0))
            return self._drop()
        status, answer = state.create(body)
        if status >= 400:
            state.rejected.append((call, status))
        if fault and fault.kind == "delay":
            state._release.wait(fault.seconds)
        self._send(status, answer)
