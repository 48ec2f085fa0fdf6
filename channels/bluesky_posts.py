"""The Bluesky adapter: the edition's posts through the ``atproto`` SDK (app-password login).

Each post carries its link as a facet (UTF-8 byte offsets; the text shows the
link short) and the lead story's post an external link card. In thread mode
post N replies to post N-1: a Bluesky reply names both its parent and the
thread's root (uri + cid each). The ledger keeps each post's at:// URI; the
refs are remembered for posts made in this run and read back from the PDS
(``com.atproto.repo.getRecord``) for a thread a rerun continues.

Bluesky has no idempotency key and no duplicate check. When a request's answer
is lost (read timeout, dropped connection) the adapter reads the account's recent
posts back: its post (same createdAt and text) there means it went out; otherwise
the delivery is left in doubt, never sent again blindly.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from atproto import Client, models
from atproto_client import exceptions as atp
from atproto_client.request import Request
from briefcast.channels.base import BaseChannel, ChannelContext, ChannelSettings, Delivery, Receipt
from briefcast.channels.errors import (
    AuthError,
    ContentError,
    DeliveryError,
    PermanentError,
    RateLimited,
    TransientError,
)
from briefcast.channels.x_posts import MEDIA_TYPES, fetch_image
from pydantic import Field, field_validator

from briefcast.config import Secret
from briefcast.models import LinkFacet, RenderedEdition
from briefcast.render.social_text import graphemes

log = logging.getLogger("briefcast.channels.bluesky")

NAME = "bluesky"
COLLECTION = "app.bsky.feed.post"
MAX_GRAPHEMES = 300
MAX_BYTES = 3000
DESCRIPTION_MAX = 300
THUMB_MAX_BYTES = 1_000_000  # Bluesky's limit for an external card's thumbnail
DEFAULT_RATE_LIMIT_WAIT = 60.0
CLIENT_ERRORS = (atp.AtProtocolError, httpx.TransportError)
READ_BACK = 25  # recent posts searched for one whose answer was lost
LIST_PAGES = 10  # of 100 records: how far back find_sent looks
_POST_URL = re.compile(r"^https://bsky\.app/profile/([^/]+)/post/([^/?#]+)$")
_AT_URI = re.compile(r"^at://([^/]+)/app\.bsky\.feed\.post/([^/?#]+)$")


class BlueskySettings(ChannelSettings):
    handle: str = Field(description="The account's handle (or DID), e.g. gazette.bsky.social.")
    app_password: Secret
    base_url: str = Field(
        "https://bsky.social", description="The account's PDS (or a test server)."
    )
    timeout_seconds: float = Field(15.0, gt=0, le=300)
    language: str | None = Field(None, description="Post language; default: publication.language.")
    link_card: bool = Field(True, description="An external link card on the lead story's post.")
    card_image: bool = Field(False, description="The lead story's image as the card's thumbnail.")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// or http://")
        return value.rstrip("/")


@dataclass(frozen=True)
class Card:
    uri: str
    title: str
    description: str
    image_url: str | None = None  # the lead's image, uploaded as the card's thumbnail


@dataclass(frozen=True)
class BlueskyPayload:
    text: str
    links: tuple[LinkFacet, ...] = ()
    card: Card | None = None


@dataclass(frozen=True)
class Ref:
    uri: str
    cid: str


# -- the one error boundary -------------------------------------------------
def _reset_wait(exc: atp.RateLimitExceededError, now: float) -> float:
    if exc.retry_after is not None:
        return max(1.0, exc.retry_after)
    if exc.reset_at is not None:
        return max(1.0, exc.reset_at.timestamp() - now)
    return DEFAULT_RATE_LIMIT_WAIT


def _detail(exc: atp.RequestErrorBase) -> str:
    content = exc.response.content if exc.response is not None else None
    error = getattr(content, "error", None)
    message = getattr(content, "message", None)
    if error or message:
        return ": ".join(str(p) for p in (error, message) if p)
    return str(exc.response.status_code) if exc.response is not None else type(exc).__name__


def map_error(exc: Exception, *, now: Callable[[], float] = time.time) -> DeliveryError:
    """Translate an atproto failure into the channel error tree."""
    if isinstance(exc, atp.RateLimitExceededError):
        wait = _reset_wait(exc, now())
        return RateLimited(
            f"Bluesky rate limit reached: {_detail(exc)}",
            retry_after=wait,
            channel=NAME,
            status=429,
        )
    if isinstance(exc, atp.RequestErrorBase) and exc.response is None:
        if isinstance(exc, atp.InvokeTimeoutError):
            return TransientError("Bluesky did not answer in time", channel=NAME, code="timeout")
        return TransientError("connection to Bluesky failed", channel=NAME, code="connection")
    if isinstance(exc, atp.RequestErrorBase):
        status = exc.response.status_code
        detail = _detail(exc)
        if isinstance(exc, atp.UnauthorizedError) or "Token" in detail.split(":")[0]:
            return AuthError(
                f"Bluesky refused our credentials: {detail}", channel=NAME, status=status
            )
        if status >= 500 or status == 408:
            return TransientError(f"Bluesky server error: {detail}", channel=NAME, status=status)
        return PermanentError(f"Bluesky rejected the post: {detail}", channel=NAME, status=status)
    if isinstance(exc, atp.AtProtocolError):
        return PermanentError(f"Bluesky client error: {exc}", channel=NAME)
    if isinstance(exc, httpx.TimeoutException):
        return TransientError("Bluesky did not answer in time", channel=NAME, code="timeout")
    if isinstance(exc, httpx.TransportError):  # atproto lets a dropped connection through
        return TransientError("connection to Bluesky failed", channel=NAME, code="connection")
    raise TypeError(f"not a Bluesky client error: {type(exc).__name__}")


def may_have_arrived(exc: Exception) -> bool:
    """Whether the PDS may have taken the request although no answer came back."""
    if isinstance(exc, atp.RequestErrorBase) and exc.response is None:
        exc = exc.__cause__
    if not isinstance(exc, httpx.TransportError):
        return False
    return not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


# -- checks -------------------------------------------------------------------
def check_posts(payloads: list[BlueskyPayload]) -> list[str]:
    """Problems with the posts, one line each; empty when all of them may go."""
    problems = []
    for n, post in enumerate(payloads, 1):
        data = post.text.encode()
        if not post.text.strip():
            problems.append(f"post-{n} is empty")
        elif graphemes(post.text) > MAX_GRAPHEMES or len(data) > MAX_BYTES:
            problems.append(
                f"post-{n} is {graphemes(post.text)} graphemes, {len(data)} bytes "
                f"(limit {MAX_GRAPHEMES}, {MAX_BYTES}): {post.text[:40]!r}…"
            )
        for link in post.links:
            inside = 0 <= link.byte_start < link.byte_end <= len(data)
            try:
                inside and data[link.byte_start : link.byte_end].decode()
            except UnicodeDecodeError:
                inside = False
            if not inside:
                problems.append(f"post-{n} has a link facet outside its text ({link.uri})")
            elif not link.uri.startswith(("https://", "http://")):
                problems.append(f"post-{n} links to {link.uri!r}, not a web address")
    return problems


def parse_post_address(value: str) -> tuple[str, str] | None:
    """(repo, rkey) of an at:// post URI or a bsky.app post link."""
    match = _AT_URI.match(value) or _POST_URL.match(value)
    return (match.group(1), match.group(2)) if match else None


# -- the adapter --------------------------------------------------------------
class BlueskyChannel(BaseChannel):
    name = NAME
    Settings = BlueskySettings
    max_batch = 1

    def __init__(self, settings: BlueskySettings, context: ChannelContext) -> None:
        super().__init__(settings, context)
        self.settings: BlueskySettings = settings
        self._ledger_channel: str = context.extra.get("channel", NAME)
        self._client = Client(settings.base_url, request=Request(timeout=settings.timeout_seconds))
        self._logged_in = False
        self._refs: dict[str, tuple[Ref, Ref]] = {}  # receipt -> (the post, its thread's root)
        self._blobs: dict[str, object] = {}  # image url -> uploaded blob (None: unusable)
        publication_language = getattr(context.publication, "language", None)
        self._langs = [settings.language or publication_language or "en"]

    def plan(self, edition: RenderedEdition) -> list[Delivery]:
        lead = edition.articles[0] if edition.articles else None
        payloads = []
        for post in edition.bluesky_posts:
            card = None
            if self.settings.link_card and lead is not None and post.article_key == lead.key:
                description = lead.plain_summary[:DESCRIPTION_MAX]
                hero = lead.hero if self.settings.card_image else None
                image = hero.url if hero and hero.url.startswith("http") else None
                card = Card(lead.url, lead.title, description, image)
            payloads.append(BlueskyPayload(post.text, tuple(post.links), card))
        problems = check_posts(payloads)
        if problems:
            raise ContentError(f"{len(problems)} post(s) cannot go out: " + "; ".join(problems))
        return [
            Delivery(
                f"post-{n}",
                payload,
                after=f"post-{n - 1}" if edition.x_thread and n > 1 else None,
            )
            for n, payload in enumerate(payloads, 1)
        ]

    def send_one(self, delivery: Delivery) -> Receipt | None:
        payload: BlueskyPayload = delivery.payload
        try:
            self._login()
            reply = self._reply_ref(delivery) if delivery.after is not None else None
            thumb = self._thumb(payload.card.image_url) if payload.card else None
        except CLIENT_ERRORS as exc:
            raise map_error(exc) from exc
        record = models.AppBskyFeedPost.Record(
            created_at=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            text=payload.text,
            facets=[_facet(link) for link in payload.links] or None,
            embed=_card(payload.card, thumb) if payload.card else None,
            reply=reply,
            langs=self._langs,
        )
        try:
            created = self._client.app.bsky.feed.post.create(self.settings.handle, record)
        except CLIENT_ERRORS as exc:
            error = map_error(exc)
            if may_have_arrived(exc):
                made = self._find_made(record)
                if made is not None:  # the PDS made it before the line went dead
                    self._refs[made.uri] = (
                        made,
                        Ref(reply.root.uri, reply.root.cid) if reply else made,
                    )
                    log.info(
                        "bluesky: %s got no answer but was posted as %s", delivery.target, made.uri
                    )
                    return Receipt(made.uri, detail=self._web_link(made.uri))
                log.warning(
                    "bluesky: %s got no answer (%s); left in doubt: check the account and "
                    "settle it with `briefcast ledger resolve %s sent --target %s --receipt "
                    "<post link>` (or `resend`)",
                    delivery.target,
                    error,
                    self._ledger_channel,
                    delivery.target,
                )
                return None
            raise error from exc
        made = Ref(created.uri, created.cid)
        self._refs[created.uri] = (made, Ref(reply.root.uri, reply.root.cid) if reply else made)
        log.info("bluesky: %s posted as %s", delivery.target, created.uri)
        return Receipt(created.uri, detail=self._web_link(created.uri))

    def _find_made(self, record: models.AppBskyFeedPost.Record) -> Ref | None:
        """After a lost answer: our post if the account has it (same createdAt and text)."""
        try:
            found = self._client.com.atproto.repo.list_records(
                models.ComAtprotoRepoListRecords.Params(
                    repo=self.settings.handle, collection=COLLECTION, limit=READ_BACK
                )
            )
        except CLIENT_ERRORS as exc:
            log.warning("bluesky: could not read back recent posts: %s", map_error(exc))
            return None
        for item in found.records:
            value = item.value
            created = getattr(value, "created_at", None) or _get(value, "createdAt")
            text = getattr(value, "text", None) or _get(value, "text")
            if created == record.created_at and text == record.text and item.cid:
                return Ref(item.uri, item.cid)
        return None

    def find_sent(self, deliveries: Sequence[Delivery], since: datetime) -> dict[str, str]:
        """Which of these posts the account has made since ``since``: {target: at:// URI}.

        Reads the account's own records (``com.atproto.repo.listRecords``, newest first)
        and matches the exact text; the oldest match wins. The refs of a match are kept,
        so the thread replies to it. Raises a DeliveryError when the PDS does not answer.
        """
        wanted = {d.payload.text: d.target for d in deliveries}
        found: dict[str, str] = {}
        if not wanted:
            return found
        try:
            self._login()
            cursor = None
            for _ in range(LIST_PAGES):
                page = self._client.com.atproto.repo.list_records(
                    models.ComAtprotoRepoListRecords.Params(
                        repo=self.settings.handle, collection=COLLECTION, limit=100, cursor=cursor
                    )
                )
                for item in page.records:
                    value = item.value
                    created = getattr(value, "created_at", None) or _get(value, "createdAt")
                    if created and _parse_time(created) < since:
                        return found
                    target = wanted.get(getattr(value, "text", None) or _get(value, "text"))
                    if target is not None and item.cid:
                        found[target] = item.uri
                        self._remember(item.uri, item.cid, value)
                cursor = page.cursor
                if not cursor or not page.records:
                    break
        except CLIENT_ERRORS as exc:
            raise map_error(exc) from exc
        return found

    def _remember(self, uri: str, cid: str, value) -> None:
        post = Ref(uri, cid)
        root = getattr(getattr(value, "reply", None), "root", None)
        self._refs[uri] = (post, Ref(root.uri, root.cid) if root else post)

    def _thumb(self, url: str | None):
        """The lead image uploaded as a blob for the card, once; None when it cannot be."""
        if url is None:
            return None
        if url not in self._blobs:
            try:
                data, filename = fetch_image(url, self.settings.timeout_seconds, THUMB_MAX_BYTES)
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("bluesky: link card without thumbnail: %s", str(exc).splitlines()[0])
                self._blobs[url] = None
                return None
            content_type = MEDIA_TYPES[filename.rsplit(".", 1)[-1]]
            uploaded = self._client.com.atproto.repo.upload_blob(
                data, headers={"Content-Type": content_type}
            )
            self._blobs[url] = uploaded.blob
        return self._blobs[url]

    def _login(self) -> None:
        if not self._logged_in:
            self._client.login(
                self.settings.handle,
                self.settings.app_password.get_secret_value(),
                fetch_bsky_profile=False,
            )
            self._logged_in = True

    def _reply_ref(self, delivery: Delivery) -> models.AppBskyFeedPost.ReplyRef:
        address = delivery.parent_receipt or ""
        if address not in self._refs:
            self._read_back(address, delivery)
        parent, root = self._refs[address]
        return models.AppBskyFeedPost.ReplyRef(
            root=models.ComAtprotoRepoStrongRef.Main(uri=root.uri, cid=root.cid),
            parent=models.ComAtprotoRepoStrongRef.Main(uri=parent.uri, cid=parent.cid),
        )

    def _read_back(self, address: str, delivery: Delivery) -> None:
        """The refs of a post an earlier run made (its at:// URI from the ledger, or a
        bsky.app link an operator gave): its cid and its thread's root, from the PDS."""
        parsed = parse_post_address(address)
        if parsed is None:
            error = PermanentError(
                f"cannot reply to {delivery.after}: the ledger has no Bluesky post for it "
                f"({address or 'none'}); give it with `briefcast ledger resolve "
                f"{self._ledger_channel} sent --target {delivery.after} --receipt <post link>`",
                channel=NAME,
            )
            error.retryable = True  # nothing went out: the next run tries again
            raise error
        found = self._client.app.bsky.feed.post.get(*parsed)
        self._remember(found.uri, found.cid, found.value)
        self._refs[address] = self._refs[found.uri]

    def _web_link(self, uri: str) -> str:
        repo, rkey = parse_post_address(uri) or (self.settings.handle, "")
        return f"https://bsky.app/profile/{repo}/post/{rkey}"

    def close(self) -> None:
        self._client.request.close()


def _facet(link: LinkFacet) -> models.AppBskyRichtextFacet.Main:
    return models.AppBskyRichtextFacet.Main(
        features=[models.AppBskyRichtextFacet.Link(uri=link.uri)],
        index=models.AppBskyRichtextFacet.ByteSlice(
            byte_start=link.byte_start, byte_end=link.byte_end
        ),
    )


def _card(card: Card, thumb=None) -> models.AppBskyEmbedExternal.Main:
    return models.AppBskyEmbedExternal.Main(
        external=models.AppBskyEmbedExternal.External(
            uri=card.uri, title=card.title, description=card.description, thumb=thumb
        )
    )


def _get(value, key: str):
    return value.get(key) if isinstance(value, dict) else None


def _parse_time(value: str) -> datetime:
    stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
