"""The X adapter: the edition's posts through tweepy's ``Client.create_tweet`` (OAuth 1.0a).

In thread mode post N replies to post N-1. The reply id comes from the ledger
(the dispatcher fills ``parent_receipt`` from ``after``), so a rerun after a
failure mid-thread continues the same thread. Posts are checked with X's own
weighted counting before the first one goes out, and a daily budget stops the
run before X's 24-hour cap instead of running into 429s: the dispatcher tells
``admit`` how many posts the channel made in the last 24 hours. The adapter
never reads the database.

tweepy hard-codes ``https://api.twitter.com``: :class:`HostRewrite`, mounted on
the client's requests session, sends to ``base_url`` instead and sets the
request timeout tweepy leaves unset. It rewrites after tweepy has signed the
request, so the OAuth signature still covers the real X URL.

The lead image goes up through X API v2 (``POST /2/media/upload``, alt text
through ``POST /2/media/metadata``), which tweepy 4.17 lacks: a request signed
with the same OAuth 1.0a credentials on tweepy's own session. The deprecated
v1.1 ``upload.twitter.com`` endpoint is used only when v2 answers 404 or 403.
"""

from __future__ import annotations

import html
import io
import logging
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import httpx
import requests
import tweepy
from briefcast.channels.base import (
    BaseChannel,
    ChannelContext,
    ChannelSettings,
    Delivery,
    InDoubt,
    Receipt,
)
from briefcast.channels.errors import (
    AuthError,
    ContentError,
    DeliveryError,
    PermanentError,
    RateLimited,
    TransientError,
)
from pydantic import Field, field_validator
from requests.adapters import HTTPAdapter
from twitter_text import parse_tweet
from urllib3.exceptions import NewConnectionError

from briefcast.config import Secret
from briefcast.models import RenderedEdition

log = logging.getLogger("briefcast.channels.x")

NAME = "x"
API_ORIGIN = "https://api.twitter.com"
UPLOAD_ORIGIN = "https://upload.twitter.com"
MAX_WEIGHTED_LENGTH = 280
IMAGE_MAX_BYTES = 5 * 1024 * 1024  # X's limit for a simple image upload
ALT_TEXT_MAX = 1000
DEFAULT_RATE_LIMIT_WAIT = 60.0  # a 429 without x-rate-limit-reset: never retry at once
TIMELINE_PAGES = 32  # 100 posts a page: the 3,200 X keeps readable
IMAGE_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp"}
MEDIA_TYPES = {extension: content_type for content_type, extension in IMAGE_TYPES.items()}


class XSettings(ChannelSettings):
    consumer_key: Secret
    consumer_secret: Secret
    access_token: Secret
    access_token_secret: Secret
    base_url: str = API_ORIGIN
    upload_base_url: str = UPLOAD_ORIGIN
    timeout_seconds: float = Field(15.0, gt=0, le=300)
    daily_budget: int = Field(17, ge=0, description="Posts per 24 h; X's free tier allows 17.")
    max_posts_per_edition: int | None = Field(
        None,
        ge=1,
        description="Longest thread (opener included); the rest is held back. Keep it at "
        "half the daily budget or less so one day's thread never eats into the next day's.",
    )
    attach_lead_image: bool = False

    @field_validator("base_url", "upload_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// or http://")
        return value.rstrip("/")


@dataclass(frozen=True)
class PostPayload:
    text: str
    image_url: str | None = None
    image_alt: str = ""


class HostRewrite(HTTPAdapter):
    """Sends requests meant for ``origin`` to ``target``, with a default timeout."""

    def __init__(self, origin: str, target: str, timeout: float) -> None:
        super().__init__()
        self.origin, self.target, self.timeout = origin, target, timeout

    def send(self, request, timeout=None, **kwargs):
        if self.target != self.origin and request.url.startswith(self.origin):
            request.url = self.target + request.url[len(self.origin) :]
        return super().send(request, timeout=self.timeout if timeout is None else timeout, **kwargs)


# -- the one error boundary -------------------------------------------------
def _detail(exc: tweepy.HTTPException) -> str:
    messages = [m for m in exc.api_messages if m]
    if messages:
        return "; ".join(messages)
    return f"{exc.response.status_code} {exc.response.reason}"


def _is_duplicate(exc: tweepy.HTTPException) -> bool:
    return any("duplicate" in m.lower() for m in exc.api_messages if isinstance(m, str))


def _reset_wait(headers, now: float) -> float:
    """Seconds until X lifts the limit: the latest reset among the exhausted windows."""
    resets = []
    if "x-rate-limit-reset" in headers:
        resets.append(headers["x-rate-limit-reset"])
    for window in ("x-user-limit-24hour", "x-app-limit-24hour"):
        if headers.get(f"{window}-remaining") == "0" and f"{window}-reset" in headers:
            resets.append(headers[f"{window}-reset"])
    waits = []
    for value in resets:
        try:
            waits.append(float(value) - now)
        except ValueError:
            continue
    if not waits:
        return DEFAULT_RATE_LIMIT_WAIT
    return max(1.0, max(waits))  # a reset already past (clock skew) still waits a little


def map_error(exc: Exception, *, now: Callable[[], float] = time.time) -> DeliveryError:
    """Translate a tweepy/requests failure into the channel error tree."""
    if isinstance(exc, tweepy.TweepyException) and not isinstance(exc, tweepy.HTTPException):
        # tweepy.API wraps transport failures: "Failed to send request: ..."
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, requests.RequestException):
            return map_error(cause, now=now)
        return PermanentError(f"X client error: {exc}", channel=NAME)
    if isinstance(exc, tweepy.HTTPException):
        status = exc.response.status_code
        detail = _detail(exc)
        if isinstance(exc, tweepy.TooManyRequests):
            wait = _reset_wait(exc.response.headers, now())
            return RateLimited(
                f"X rate limit reached: {detail}", retry_after=wait, channel=NAME, status=status
            )
        if isinstance(exc, tweepy.Forbidden) and _is_duplicate(exc):
            return PermanentError(
                "duplicate content: X refuses a post identical to one this account already made",
                channel=NAME,
                status=status,
                code="duplicate",
            )
        if isinstance(exc, tweepy.Unauthorized | tweepy.Forbidden):
            return AuthError(f"X refused our credentials: {detail}", channel=NAME, status=status)
        if isinstance(exc, tweepy.TwitterServerError) or status == 408:
            return TransientError(f"X server error: {detail}", channel=NAME, status=status)
        return PermanentError(f"X rejected the post: {detail}", channel=NAME, status=status)
    if isinstance(exc, requests.Timeout):
        return TransientError("X did not answer in time", channel=NAME, code="timeout")
    if isinstance(exc, requests.ConnectionError):
        return TransientError("connection to X failed", channel=NAME, code="connection")
    if isinstance(exc, requests.RequestException):
        return TransientError(f"request to X failed: {type(exc).__name__}", channel=NAME)
    raise TypeError(f"not an X client error: {type(exc).__name__}")


def may_have_arrived(exc: Exception) -> bool:
    """Whether X may have received the request although we got no answer."""
    if isinstance(exc, requests.ConnectTimeout):
        return False
    if isinstance(exc, requests.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return not isinstance(reason, NewConnectionError)
    return isinstance(exc, requests.Timeout)


def comparable_text(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip()


def as_written(text: str, entities: dict | None) -> str:
    """A post's text as X shows it, back as we wrote it: t.co links unwrapped, &amp; undone."""
    for url in (entities or {}).get("urls", []):
        if url.get("url") and url.get("expanded_url"):
            text = text.replace(url["url"], url["expanded_url"], 1)
    return comparable_text(html.unescape(text))


# -- v2 media upload (tweepy 4.17 has none) --------------------------------------
V2_FORM = {"media_category": "tweet_image"}
# v2 media refused as absent or not allowed for this app: the v1.1 endpoint is tried
V2_UNAVAILABLE = (tweepy.NotFound, tweepy.Forbidden)


def raise_for_x_status(response: requests.Response) -> None:
    """Raise the tweepy exception tweepy itself raises for this status."""
    status = response.status_code
    if 200 <= status < 300:
        return
    errors = {
        400: tweepy.BadRequest,
        401: tweepy.Unauthorized,
        403: tweepy.Forbidden,
        404: tweepy.NotFound,
        429: tweepy.TooManyRequests,
    }
    if status >= 500:
        raise tweepy.TwitterServerError(response)
    raise errors.get(status, tweepy.HTTPException)(response)


# -- checks and budget --------------------------------------------------------
def check_posts(texts: Sequence[str]) -> list[str]:
    """Problems with the posts, one line each; empty when all of them may go."""
    problems = []
    seen: dict[str, int] = {}
    for n, text in enumerate(texts, 1):
        parsed = parse_tweet(text)
        if not text.strip():
            problems.append(f"post-{n} is empty")
        elif parsed.weightedLength > MAX_WEIGHTED_LENGTH:
            problems.append(
                f"post-{n} is {parsed.weightedLength} weighted characters "
                f"(limit {MAX_WEIGHTED_LENGTH}): {text[:40]!r}…"
            )
        elif not parsed.valid:
            problems.append(f"post-{n} has characters X does not accept")
        if text in seen:  # X would refuse the second one as duplicate content
            problems.append(f"post-{n} repeats post-{seen[text]} word for word")
        seen.setdefault(text, n)
    return problems


def fetch_image(url: str, timeout: float, max_bytes: int = IMAGE_MAX_BYTES) -> tuple[bytes, str]:
    """Download an image (bytes, file name); ValueError when it is not a usable image."""
    with (
        httpx.Client(timeout=timeout, follow_redirects=True) as http,
        http.stream("GET", url) as response,
    ):
        response.raise_for_status()
        content_type = response.headers.get("content-type", "").split(";")[0].strip()
        if content_type not in IMAGE_TYPES:
            raise ValueError(f"not an image X accepts ({content_type or 'no type'})")
        data = bytearray()
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) > max_bytes:
                raise ValueError(f"image larger than {max_bytes // (1024 * 1024)} MB")
    return bytes(data), f"lead.{IMAGE_TYPES[content_type]}"


# -- the adapter --------------------------------------------------------------
class XChannel(BaseChannel):
    name = NAME
    Settings = XSettings
    max_batch = 1

    def __init__(self, settings: XSettings, context: ChannelContext) -> None:
        super().__init__(settings, context)
        self.settings: XSettings = settings
        self._ledger_channel: str = context.extra.get("channel", NAME)
        self._posted_this_run = 0
        self._maybe_posted: set[str] = set()  # targets whose last attempt went unanswered
        self._media_ids: dict[str, str] = {}
        self._client = tweepy.Client(
            consumer_key=settings.consumer_key.get_secret_value(),
            consumer_secret=settings.consumer_secret.get_secret_value(),
            access_token=settings.access_token.get_secret_value(),
            access_token_secret=settings.access_token_secret.get_secret_value(),
            wait_on_rate_limit=False,  # the dispatcher owns waits
        )
        self._client.session.mount(
            API_ORIGIN + "/", HostRewrite(API_ORIGIN, settings.base_url, settings.timeout_seconds)
        )
        self._api: tweepy.API | None = None
        # requests-oauthlib logs the signed Authorization header (consumer key, token) at DEBUG.
        for noisy in ("requests_oauthlib", "oauthlib"):
            logging.getLogger(noisy).setLevel(max(logging.INFO, logging.getLogger(noisy).level))

    def plan(self, edition: RenderedEdition) -> list[Delivery]:
        problems = check_posts([post.text for post in edition.x_posts])
        if problems:
            raise ContentError(f"{len(problems)} post(s) cannot go out: " + "; ".join(problems))
        hero = edition.articles[0].hero if edition.articles else None
        image = (
            hero
            if self.settings.attach_lead_image and hero and hero.url.startswith("http")
            else None
        )
        plan = []
        for n, post in enumerate(edition.x_posts, 1):
            payload = PostPayload(post.text)
            if n == 1 and image is not None:
                payload = PostPayload(post.text, image.url, image.alt[:ALT_TEXT_MAX])
            after = f"post-{n - 1}" if edition.x_thread and n > 1 else None
            plan.append(Delivery(f"post-{n}", payload, after=after))
        return plan

    def admit(self, todo: list[Delivery], posted_last_day: int | None = None) -> tuple[int, str]:
        """How many of the pending posts may go now: the edition cap, then the 24 h budget.

        ``posted_last_day``: the posts the channel made (or may have made) in the last
        24 hours, from the dispatcher's ledger; without it, this run's posts count.
        """
        budget = self.settings.daily_budget
        cap = self.settings.max_posts_per_edition
        within_cap = sum(
            1 for d in todo if cap is None or int(d.target.removeprefix("post-")) <= cap
        )
        used = self._posted_this_run if posted_last_day is None else posted_last_day
        allowed = max(0, budget - used)
        if allowed < within_cap:
            log.info("x: %d posts in the last 24 h, budget %d", used, budget)
            return allowed, f"daily budget of {budget} posts reached"
        reason = f"an edition posts at most {cap} (max_posts_per_edition)"
        return within_cap, reason

    def send_one(self, delivery: Delivery) -> Receipt | InDoubt:
        payload: PostPayload = delivery.payload
        reply_to = delivery.parent_receipt
        if delivery.after is not None and not (reply_to and reply_to.isdigit()):
            error = PermanentError(
                f"cannot reply to {delivery.after}: the ledger has no X post id for it "
                f"({reply_to or 'none'}); give it with `briefcast ledger resolve "
                f"{self._ledger_channel} sent --target {delivery.after} --receipt <post id>`",
                channel=NAME,
            )
            error.retryable = True  # nothing went out: the next run tries again
            raise error
        media_ids, note = self._lead_media(payload) if payload.image_url else (None, "")
        try:
            response = self._client.create_tweet(
                text=payload.text, in_reply_to_tweet_id=reply_to, media_ids=media_ids
            )
        except (tweepy.TweepyException, requests.RequestException) as exc:
            error = map_error(exc)
            if error.code == "duplicate" and delivery.target in self._maybe_posted:
                # Most likely our own earlier attempt arrived: in doubt, not failed, so that
                # `ledger resolve` can settle it (with its post id, for the thread to go on).
                log.warning(
                    "x: X already has %s, most likely from the earlier attempt that went "
                    "unanswered; left in doubt: find it on the account and settle it with "
                    "`briefcast ledger resolve %s sent --target %s --receipt <post id>`",
                    delivery.target,
                    self._ledger_channel,
                    delivery.target,
                )
                return InDoubt(
                    "X already has this post, most likely from the earlier attempt that went "
                    "unanswered"
                )
            if may_have_arrived(exc):
                self._maybe_posted.add(delivery.target)
            raise error from exc
        post_id = str(response.data["id"])
        self._posted_this_run += 1
        log.info("x: %s posted as %s", delivery.target, post_id)
        return Receipt(post_id, detail=f"https://x.com/i/status/{post_id}{note}")

    def _lead_media(self, payload: PostPayload) -> tuple[list[str] | None, str]:
        """Upload the lead image once (media ids, receipt note).

        Trouble fetching our own image never holds the thread back: the post goes
        without it. Trouble at X's upload is X's error: transient ones are raised.
        """
        if payload.image_url in self._media_ids:
            return [self._media_ids[payload.image_url]], ""
        try:
            data, filename = fetch_image(payload.image_url, self.settings.timeout_seconds)
        except (httpx.HTTPError, ValueError) as exc:
            reason = str(exc).splitlines()[0] or type(exc).__name__
            log.warning("x: posting without the lead image: %s", reason)
            return None, f" (without lead image: {reason})"
        try:
            media_id = self._upload(data, filename, payload.image_alt)
        except (tweepy.TweepyException, requests.RequestException) as exc:
            error = map_error(exc)
            if error.retryable:
                raise error from exc
            log.warning("x: posting without the lead image: upload refused: %s", error)
            return None, f" (without lead image: {error})"
        self._media_ids[payload.image_url] = media_id
        return [media_id], ""

    def _upload(self, data: bytes, filename: str, alt: str) -> str:
        """Upload through v2 ``POST /2/media/upload`` (alt text via ``/2/media/metadata``);
        the deprecated v1.1 endpoint only where v2 is not there for this app."""
        try:
            content_type = MEDIA_TYPES[filename.rsplit(".", 1)[-1]]
            media = {"media": (filename, data, content_type)}
            media_id = self._v2_media("upload", files=media, data=V2_FORM)
        except V2_UNAVAILABLE as exc:
            log.info("x: v2 media upload unavailable (%s); using v1.1", _detail(exc))
            api = self._upload_api()
            media = api.simple_upload(filename, file=io.BytesIO(data), media_category="tweet_image")
            if alt:
                api.create_media_metadata(media.media_id_string, alt)
            return media.media_id_string
        if alt:
            metadata = {"id": media_id, "metadata": {"alt_text": {"text": alt}}}
            try:
                self._v2_media("metadata", json=metadata)
            except V2_UNAVAILABLE:
                self._upload_api().create_media_metadata(media_id, alt)
        return media_id

    def _v2_media(self, endpoint: str, **request) -> str:
        """One signed v2 media request through tweepy's own session; the media id."""
        response = self._client.session.post(
            f"{API_ORIGIN}/2/media/{endpoint}", auth=self._oauth1(), **request
        )
        raise_for_x_status(response)
        return str(((response.json() or {}).get("data") or {}).get("id", ""))

    def _oauth1(self):
        s = self.settings
        return tweepy.OAuth1UserHandler(
            s.consumer_key.get_secret_value(),
            s.consumer_secret.get_secret_value(),
            s.access_token.get_secret_value(),
            s.access_token_secret.get_secret_value(),
        ).apply_auth()

    def _upload_api(self) -> tweepy.API:
        if self._api is None:
            s = self.settings
            auth = tweepy.OAuth1UserHandler(
                s.consumer_key.get_secret_value(),
                s.consumer_secret.get_secret_value(),
                s.access_token.get_secret_value(),
                s.access_token_secret.get_secret_value(),
            )
            self._api = tweepy.API(auth, timeout=s.timeout_seconds)
            self._api.session.mount(
                UPLOAD_ORIGIN + "/",
                HostRewrite(UPLOAD_ORIGIN, s.upload_base_url, s.timeout_seconds),
            )
        return self._api

    def find_sent(self, deliveries: Sequence[Delivery], since: datetime) -> dict[str, str]:
        """Which of these posts the account has made since ``since``: {target: post id}.

        Reads the account's own timeline (X API v2 ``GET /2/users/:id/tweets``) and matches
        the exact text, as X shows it: links wrapped in t.co (unwrapped here from the
        post's entities) and &, <, > escaped. X refuses a second post with the same text,
        so a match is the post itself. Raises a DeliveryError when X does not let us look.
        """
        wanted = {comparable_text(d.payload.text): d.target for d in deliveries}
        if not wanted:
            return {}
        found: dict[str, str] = {}
        try:
            user_id = self._client.get_me(user_auth=True).data.id
            pages = tweepy.Paginator(
                self._client.get_users_tweets,
                user_id,
                user_auth=True,
                start_time=since,
                max_results=100,
                tweet_fields=["created_at", "entities"],
                limit=TIMELINE_PAGES,
            )
            for page in pages:
                for post in page.data or []:  # newest first: the oldest match wins
                    target = wanted.get(as_written(post.text, post.entities))
                    if target is not None:
                        found[target] = str(post.id)
        except tweepy.Forbidden as exc:
            raise PermanentError(
                f"X does not let this app read the account's posts ({_detail(exc)}); "
                "look at the account by hand",
                channel=NAME,
                status=exc.response.status_code,
            ) from exc
        except (tweepy.TweepyException, requests.RequestException) as exc:
            raise map_error(exc) from exc
        return found

    def close(self) -> None:
        self._client.session.close()
        if self._api is not None:
            self._api.session.close()
