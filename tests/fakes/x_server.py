"""A fake X API on 127.0.0.1 for tests: POST /2/tweets, v2 and v1.1 media upload, and the
account's own timeline (GET /2/users/me, GET /2/users/:id/tweets) served from what it accepted.

It follows the documented contract (shared/docs/providers.md §3): 201 with
``{"data": {"id", "text"}}``; 400 for a post over 280 weighted characters, an
unknown reply target or unknown media; 403 with X's duplicate-content body for
a text the account already posted; 401 unless the request carries a valid
OAuth 1.0a HMAC-SHA1 signature computed over the real X URL (tweepy signs
before our URL-rewriting adapter sends). After a 429 it keeps answering 429
until ``x-rate-limit-reset``, as X does, so a client that retries early shows.

The timeline shows posts as X does: newest first, links wrapped in t.co (the original in
``entities.urls[].expanded_url``), ``&``, ``<`` and ``>`` escaped, at most ``max_results``
(5 to 100) a page with a ``next_token``; ``timeline_forbidden`` answers 403 as X's free
tier does.

Faults are scripted per call number of POST /2/tweets::

    fake.on_call(4, rate_limited(reset_in=2))
    fake.on_call(2, server_error(503))

``fake.fault_mix = FaultMix(...)`` draws a random fault or ghost for every
unscripted call instead (tests/fakes/fault_mix.py).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import html
import itertools
import json
import math
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from twitter_text import parse_tweet

from .fault_mix import FaultMix
from .http_fake import FakeHTTPServer, JsonHandler

TWEETS_URL = "https://api.twitter.com/2/tweets"
UPLOAD_URL = "https://upload.twitter.com/1.1/media/upload.json"
METADATA_URL = "https://upload.twitter.com/1.1/media/metadata/create.json"
V2_UPLOAD_URL = "https://api.twitter.com/2/media/upload"
V2_METADATA_URL = "https://api.twitter.com/2/media/metadata"
IMAGE_LIMIT = 5 * 1024 * 1024
USER_ID = "1600000000000000001"
USERNAME = "testgazette"
ME_URL = "https://api.twitter.com/2/users/me"
TIMELINE_URL = f"https://api.twitter.com/2/users/{USER_ID}/tweets"
LINK = re.compile(r"https?://\S+")
CLIENT_FORBIDDEN_BODY = {
    "title": "Client Forbidden",
    "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use keys "
    "and tokens from a Twitter developer App that is attached to a Project.",
    "reason": "client-not-enrolled",
    "type": "https://api.twitter.com/2/problems/client-forbidden",
}

DUPLICATE_BODY = {
    "detail": "You are not allowed to create a Tweet with duplicate content.",
    "type": "about:blank",
    "title": "Forbidden",
    "status": 403,
}
RATE_LIMIT_BODY = {"errors": [{"code": 88, "message": "Rate limit exceeded"}]}
UNAUTHORIZED_BODY = {
    "title": "Unauthorized",
    "type": "about:blank",
    "status": 401,
    "detail": "Unauthorized",
}


def v1_error(code: int, message: str) -> dict:
    return {"errors": [{"code": code, "message": message}]}


def invalid_request(message: str, parameter: str, value: object) -> dict:
    return {
        "errors": [{"parameters": {parameter: [value]}, "message": message}],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": "https://api.twitter.com/2/problems/invalid-request",
    }


# -- scripted faults ---------------------------------------------------------
@dataclass(frozen=True)
class Fault:
    kind: str  # "status", "rate_limit", "delay", "drop", "hold", "stall"
    status: int = 0
    body: dict | None = None
    headers: dict[str, str] = field(default_factory=dict)
    reset_in: float | None = None
    seconds: float = 0.0
    create_post: bool = False  # drop/hold: did X create the post before the line went dead?


def respond(status: int, body: dict, headers: dict[str, str] | None = None) -> Fault:
    return Fault("status", status=status, body=body, headers=headers or {})


def rate_limited(reset_in: float | None = 2) -> Fault:
    """429; ``reset_in=None`` leaves out the x-rate-limit-reset header."""
    return Fault("rate_limit", status=429, reset_in=reset_in)


def server_error(status: int = 503) -> Fault:
    return Fault("status", status=status, body={"title": "Service Unavailable", "status": status})


def delay(seconds: float) -> Fault:
    """Answer late; X still creates the post (the client may have given up by then)."""
    return Fault("delay", seconds=seconds)


def drop(create_post: bool = False) -> Fault:
    """Read the request, then close the connection without an answer."""
    return Fault("drop", create_post=create_post)


def hold() -> Fault:
    """Block the request until ``release()``; then drop it without creating the post."""
    return Fault("hold")


# -- records -----------------------------------------------------------------
@dataclass
class Post:
    id: str
    text: str
    account: str
    reply_to: str | None
    media_ids: list[str]
    at: float


@dataclass
class Media:
    id: str
    data: bytes
    filename: str
    alt_text: str = ""
    api: str = "v1.1"  # the upload endpoint it came through: "v2" or "v1.1"


@dataclass
class Account:
    consumer_key: str
    consumer_secret: str
    access_token: str
    access_token_secret: str


def pct(value: str) -> str:
    return quote(value, safe="")


def oauth_signature(method: str, url: str, params: list[tuple[str, str]], key: str) -> str:
    normalized = "&".join(f"{k}={v}" for k, v in sorted((pct(k), pct(v)) for k, v in params))
    base = "&".join([method.upper(), pct(url), pct(normalized)])
    digest = hmac.new(key.encode(), base.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


AUTH_PARAM = re.compile(r'([\w.-]+)="([^"]*)"')
REQUIRED_OAUTH = {
    "oauth_consumer_key",
    "oauth_nonce",
    "oauth_signature",
    "oauth_signature_method",
    "oauth_timestamp",
    "oauth_token",
    "oauth_version",
}


@dataclass
class FakeX(FakeHTTPServer):
    account: Account
    host: str = "127.0.0.1"
    posts: list[Post] = field(default_factory=list)
    media: dict[str, Media] = field(default_factory=dict)
    calls: int = 0  # POST /2/tweets requests, answered or not
    rejected: list[tuple[int, int]] = field(default_factory=list)  # (call, status)
    v2_media: bool = True  # False: /2/media/* answer 404, as before X opened them
    fault_mix: FaultMix | None = None
    timeline_reads: int = 0  # GET /2/users/:id/tweets requests
    timeline_forbidden: bool = False

    def __post_init__(self) -> None:
        self._faults: dict[int, Fault] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1790000000000000001)
        self._nonces: set[str] = set()
        self._limited_until = 0.0
        self._release = threading.Event()
        self.holding = threading.Event()  # set when a hold() fault has a request waiting
        self._server: ThreadingHTTPServer | None = None
        self._upload_fault: Fault | None = None

    # -- control ---------------------------------------------------------
    def let_time_pass(self, seconds: float) -> None:
        """For the rate limit, as if ``seconds`` went by: a test's injected sleep calls this
        instead of sleeping, and a post before the reset still gets a 429."""
        with self._lock:
            self._limited_until -= seconds

    def on_upload(self, fault: Fault) -> None:
        """A status or drop fault for the next media upload."""
        self._upload_fault = fault

    def seed_post(self, text: str, reply_to: str | None = None) -> Post:
        """A post the account made earlier (outside the code under test)."""
        with self._lock:
            return self._create(text, self.account.access_token, reply_to, [])

    def thread_of(self, post_id: str) -> list[Post]:
        """The chain of replies ending at ``post_id``, root first."""
        by_id = {p.id: p for p in self.posts}
        chain = [by_id[post_id]]
        while chain[-1].reply_to:
            chain.append(by_id[chain[-1].reply_to])
        return chain[::-1]

    def start(self) -> FakeX:
        return self._serve(_Handler, "server_state")

    # -- behaviour ---------------------------------------------------------
    def _create(self, text: str, account: str, reply_to: str | None, media: list[str]) -> Post:
        post = Post(str(next(self._ids)), text, account, reply_to, media, time.time())
        self.posts.append(post)
        return post

    def check_auth(self, method: str, url: str, header: str, query: str) -> str | None:
        """The account's token if the OAuth 1.0a header is well-formed and signed right."""
        if not header.startswith("OAuth "):
            return None
        params = {k: unquote(v) for k, v in AUTH_PARAM.findall(header[6:])}
        if not params.keys() >= REQUIRED_OAUTH:
            return None
        if params["oauth_signature_method"] != "HMAC-SHA1" or params["oauth_version"] != "1.0":
            return None
        acct = self.account
        if (params["oauth_consumer_key"], params["oauth_token"]) != (
            acct.consumer_key,
            acct.access_token,
        ):
            return None
        signature = params.pop("oauth_signature")
        signed = [(k, v) for k, v in params.items() if k != "realm"] + parse_qsl(query)
        key = f"{pct(acct.consumer_secret)}&{pct(acct.access_token_secret)}"
        if not hmac.compare_digest(signature, oauth_signature(method, url, signed, key)):
            return None
        with self._lock:
            if params["oauth_nonce"] in self._nonces:  # a replayed request
                return None
            self._nonces.add(params["oauth_nonce"])
        return params["oauth_token"]

    def create_tweet(self, account: str, body: dict) -> tuple[int, dict, dict]:
        """(status, body, headers) for an authorised POST /2/tweets."""
        text = body.get("text", "")
        parsed = parse_tweet(text)
        if not parsed.valid:
            message = f"Text is {parsed.weightedLength} weighted characters; the limit is 280."
            return 400, invalid_request(message, "text", text), {}
        reply_to = (body.get("reply") or {}).get("in_reply_to_tweet_id")
        media_ids = (body.get("media") or {}).get("media_ids") or []
        with self._lock:
            if reply_to is not None and reply_to not in {p.id for p in self.posts}:
                message = "The post you are replying to does not exist or is not visible to you."
                return 400, invalid_request(message, "reply.in_reply_to_tweet_id", reply_to), {}
            unknown = [m for m in media_ids if m not in self.media]
            if unknown:
                return 400, invalid_request("Unknown media id.", "media.media_ids", unknown[0]), {}
            if any(p.text == text and p.account == account for p in self.posts):
                return 403, DUPLICATE_BODY, {}
            post = self._create(text, account, reply_to, list(media_ids))
        return 201, {"data": {"id": post.id, "text": post.text}}, {}

    def timeline(self, query: dict[str, str]) -> tuple[int, dict]:
        """(status, body) for an authorised GET /2/users/:id/tweets of the account."""
        try:
            size = int(query.get("max_results", "10"))
        except ValueError:
            size = 0
        if not 5 <= size <= 100:
            message = "The `max_results` query parameter value is not between 5 and 100"
            return 400, invalid_request(message, "max_results", query.get("max_results"))
        since = 0.0
        if "start_time" in query:
            try:
                since = datetime.strptime(query["start_time"], "%Y-%m-%dT%H:%M:%SZ")
            except ValueError:
                message = "Invalid 'start_time':'{}'.".format(query["start_time"])
                return 400, invalid_request(message, "start_time", query["start_time"])
            since = since.replace(tzinfo=UTC).timestamp()
        fields = set(query.get("tweet.fields", "").split(","))
        with self._lock:
            newest_first = [p for p in reversed(self.posts) if p.at >= since]
        offset = int(query.get("pagination_token") or 0)
        page = newest_first[offset : offset + size]
        if not page:
            return 200, {"meta": {"result_count": 0}}
        meta = {"result_count": len(page), "newest_id": page[0].id, "oldest_id": page[-1].id}
        if offset + size < len(newest_first):
            meta["next_token"] = str(offset + size)
        return 200, {"data": [shown(p, fields) for p in page], "meta": meta}


def shown(post: Post, fields: set[str]) -> dict:
    """A post as the v2 API shows it: t.co links, HTML-escaped text, the requested fields."""
    text, urls, last = "", [], 0
    for n, match in enumerate(LINK.finditer(post.text)):
        text += html.escape(post.text[last : match.start()], quote=False)
        short = f"https://t.co/{hashlib.sha1(f'{post.id}-{n}'.encode()).hexdigest()[:10]}"
        urls.append(
            {
                "start": len(text),
                "end": len(text) + len(short),
                "url": short,
                "expanded_url": match.group(),
                "display_url": match.group().split("://", 1)[1][:25],
            }
        )
        text += short
        last = match.end()
    text += html.escape(post.text[last:], quote=False)
    body: dict = {"id": post.id, "text": text, "edit_history_tweet_ids": [post.id]}
    if "created_at" in fields:
        stamp = datetime.fromtimestamp(post.at, UTC)
        body["created_at"] = stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp:%f}"[:3] + "Z"
    if "entities" in fields and urls:
        body["entities"] = {"urls": urls}
    return body


def _mixed_fault(mix: FaultMix) -> Fault | None:
    kind = mix.draw()
    if kind == "ghost":
        return drop(create_post=True)
    if kind == "429":
        return rate_limited(reset_in=mix.rate_limit_seconds)
    if kind == "stall":  # no answer within the client's timeout, and no post
        return Fault("stall", seconds=mix.stall_seconds)
    if kind == "reset":
        return drop()
    return server_error(int(kind)) if kind else None


def _form_parts(content_type: str, raw: bytes) -> dict:
    header = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(header + raw)
    return {
        part.get_param("name", header="content-disposition"): part
        for part in (message.iter_parts() if message.is_multipart() else [])
    }


class _Handler(JsonHandler):
    server_state: FakeX

    # -- plumbing ----------------------------------------------------------
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _content_type(self, status: int, body: dict) -> str:
        problem = status >= 400 and "type" in body
        return "application/problem+json" if problem else "application/json"

    def _account(self, canonical_url: str) -> str | None:
        return self.server_state.check_auth(
            self.command,
            canonical_url,
            self.headers.get("Authorization", ""),
            urlsplit(self.path).query,
        )

    # -- routes --------------------------------------------------------------
    def do_GET(self) -> None:
        state = self.server_state
        url = urlsplit(self.path)
        if url.path == "/2/users/me":
            if self._account(ME_URL) is None:
                return self._send(401, UNAUTHORIZED_BODY)
            return self._send(
                200, {"data": {"id": USER_ID, "name": "Gazette", "username": USERNAME}}
            )
        if url.path == f"/2/users/{USER_ID}/tweets":
            with state._lock:
                state.timeline_reads += 1
            if self._account(TIMELINE_URL) is None:
                return self._send(401, UNAUTHORIZED_BODY)
            if state.timeline_forbidden:
                return self._send(403, CLIENT_FORBIDDEN_BODY)
            return self._send(*state.timeline(dict(parse_qsl(url.query))))
        self._send(404, {"title": "Not Found", "status": 404, "type": "about:blank"})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        body = self._body()
        if path == "/2/tweets":
            self._tweets(body)
        elif path == "/1.1/media/upload.json":
            self._upload(body)
        elif path == "/1.1/media/metadata/create.json":
            self._metadata(body)
        elif path == "/2/media/upload" and self.server_state.v2_media:
            self._upload_v2(body)
        elif path == "/2/media/metadata" and self.server_state.v2_media:
            self._metadata_v2(body)
        else:
            self._send(404, {"title": "Not Found", "status": 404, "type": "about:blank"})

    def _tweets(self, raw: bytes) -> None:
        mix = self.server_state.fault_mix
        with mix.wire(self) if mix else contextlib.nullcontext() as wire:
            if wire is not None:
                wire.carry(1)
            self._tweet(raw)

    def _tweet(self, raw: bytes) -> None:
        state = self.server_state
        with state._lock:
            state.calls += 1
            call = state.calls
            fault = state._faults.pop(call, None)
        if fault is None and state.fault_mix is not None:
            fault = _mixed_fault(state.fault_mix)
        account = self._account(TWEETS_URL)
        if account is None:
            state.rejected.append((call, 401))
            return self._send(401, UNAUTHORIZED_BODY)
        now = time.time()
        if (fault and fault.kind == "rate_limit") or now < state._limited_until:
            headers = {"x-rate-limit-limit": "100", "x-rate-limit-remaining": "0"}
            if fault and fault.kind == "rate_limit":
                if fault.reset_in is not None:
                    state._limited_until = math.ceil(now + fault.reset_in)
                    headers["x-rate-limit-reset"] = str(int(state._limited_until))
            else:
                headers["x-rate-limit-reset"] = str(int(state._limited_until))
            state.rejected.append((call, 429))
            return self._send(429, RATE_LIMIT_BODY, headers)
        if fault and fault.kind == "status":
            state.rejected.append((call, fault.status))
            return self._send(fault.status, fault.body or {}, fault.headers)
        if fault and fault.kind == "stall":
            state._release.wait(fault.seconds)
            state.rejected.append((call, 503))
            return self._send(503, {"title": "Service Unavailable", "status": 503})
        if fault and fault.kind == "hold":
            state.holding.set()
            state._release.wait(30)
            state.rejected.append((call, 0))
            return self._drop()
        try:
            request = json.loads(raw or b"{}")
        except ValueError:
            return self._send(400, invalid_request("Body is not JSON.", "body", ""))
        if fault and fault.kind == "drop":
            if fault.create_post:
                state.create_tweet(account, request)
            state.rejected.append((call, 0))
            return self._drop()
        status, body, headers = state.create_tweet(account, request)
        if status >= 400:
            state.rejected.append((call, status))
        if fault and fault.kind == "delay":
            state._release.wait(fault.seconds)
        self._send(status, body, headers)

    def _upload(self, raw: bytes) -> None:
        state = self.server_state
        fault, state._upload_fault = state._upload_fault, None
        if fault and fault.kind == "drop":
            return self._drop()
        if fault and fault.kind == "status":
            return self._send(fault.status, fault.body or {}, fault.headers)
        if self._account(UPLOAD_URL) is None:
            return self._send(401, v1_error(32, "Could not authenticate you."))
        header = f"Content-Type: {self.headers.get('Content-Type', '')}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(header + raw)
        parts = {
            part.get_param("name", header="content-disposition"): part
            for part in (message.iter_parts() if message.is_multipart() else [])
        }
        media = parts.get("media")
        if media is None:
            return self._send(400, v1_error(38, "media parameter is missing."))
        data = media.get_payload(decode=True) or b""
        if len(data) > IMAGE_LIMIT:
            return self._send(400, v1_error(324, "File size exceeds 5 MB."))
        with state._lock:
            media_id = str(next(state._ids))
            state.media[media_id] = Media(media_id, data, media.get_filename() or "")
        self._send(
            200,
            {
                "media_id": int(media_id),
                "media_id_string": media_id,
                "size": len(data),
                "expires_after_secs": 86400,
                "image": {"image_type": media.get_content_type()},
            },
        )

    def _metadata(self, raw: bytes) -> None:
        state = self.server_state
        if self._account(METADATA_URL) is None:
            return self._send(401, v1_error(32, "Could not authenticate you."))
        request = json.loads(raw or b"{}")
        media = state.media.get(str(request.get("media_id")))
        if media is None:
            return self._send(400, v1_error(324, "Invalid media id."))
        media.alt_text = (request.get("alt_text") or {}).get("text", "")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _upload_v2(self, raw: bytes) -> None:
        """POST /2/media/upload (multipart ``media`` + ``media_category``), OAuth 1.0a signed."""
        state = self.server_state
        fault, state._upload_fault = state._upload_fault, None
        if fault and fault.kind == "drop":
            return self._drop()
        if fault and fault.kind == "status":
            return self._send(fault.status, fault.body or {}, fault.headers)
        if self._account(V2_UPLOAD_URL) is None:
            return self._send(401, UNAUTHORIZED_BODY)
        parts = _form_parts(self.headers.get("Content-Type", ""), raw)
        media = parts.get("media")
        if media is None:
            return self._send(400, invalid_request("media is required", "media", None))
        data = media.get_payload(decode=True) or b""
        if len(data) > IMAGE_LIMIT:
            return self._send(400, invalid_request("File size exceeds 5 MB.", "media", len(data)))
        category = parts.get("media_category")
        if category is not None and category.get_content().strip() != "tweet_image":
            return self._send(400, invalid_request("Unknown media_category", "media_category", ""))
        with state._lock:
            media_id = str(next(state._ids))
            state.media[media_id] = Media(media_id, data, media.get_filename() or "", api="v2")
        self._send(
            200,
            {
                "data": {
                    "id": media_id,
                    "media_key": f"3_{media_id}",
                    "size": len(data),
                    "expires_after_secs": 86400,
                    "image": {"image_type": media.get_content_type()},
                }
            },
        )

    def _metadata_v2(self, raw: bytes) -> None:
        """POST /2/media/metadata with ``{"id", "metadata": {"alt_text": {"text"}}}``."""
        state = self.server_state
        if self._account(V2_METADATA_URL) is None:
            return self._send(401, UNAUTHORIZED_BODY)
        request = json.loads(raw or b"{}")
        media = state.media.get(str(request.get("id")))
        if media is None:
            return self._send(400, invalid_request("Invalid media id.", "id", request.get("id")))
        alt = ((request.get("metadata") or {}).get("alt_text") or {}).get("text", "")
        if len(alt) > 1000:
            return self._send(400, invalid_request("alt_text too long", "alt_text", len(alt)))
        media.alt_text = alt
        associated = {"alt_text": {"text": alt}}
        self._send(200, {"data": {"id": media.id, "associated_metadata": associated}})


class ImageHost:
    """A tiny static server for lead images: ``host.add("/lead.jpg", data, "image/jpeg")``."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        self.requests = 0
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args) -> None:
                return

            def do_GET(self) -> None:
                host.requests += 1
                data, content_type = host.files.get(self.path, (b"not found", "text/plain"))
                self.send_response(200 if self.path in host.files else 404)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True

    def add(self, path: str, data: bytes, content_type: str) -> str:
        self.files[path] = (data, content_type)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def __enter__(self) -> ImageHost:
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
