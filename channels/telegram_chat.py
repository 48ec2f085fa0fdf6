"""Telegram channel: the lead photo, then the digest messages, to each configured chat.

Uses python-telegram-bot's async ``Bot`` on an event loop the adapter owns (in
its own thread, so it works whether or not the caller already runs a loop).
Each chat's deliveries are chained with ``after``, so a failure stops the rest
of that chat and a rerun carries on where it stopped; chats are interleaved in
the plan so that one chat's pacing wait is another chat's turn.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
import warnings
from collections import defaultdict, deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Annotated, Any

import httpx
from pydantic import BeforeValidator, Field, field_validator
from telegram import Bot, LinkPreviewOptions, Message
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from briefcast.config import Secret
from briefcast.models import RenderedEdition
from briefcast.render.telegram_html import CAPTION_LIMIT, MESSAGE_LIMIT, validate_telegram_html
from channels.base import (
    BaseChannel,
    ChannelContext,
    ChannelSettings,
    Delivery,
    InDoubt,
    Outcome,
    Receipt,
)
from channels.errors import (
    AuthError,
    ContentError,
    DeliveryError,
    PermanentError,
    RateLimited,
    TransientError,
)

log = logging.getLogger("briefcast.channels.telegram")

CHANNEL = "telegram"
# Loggers that may print the request URL, which carries the bot token.
URL_LOGGERS = ("httpx", "telegram.Bot", "telegram.request.BaseRequest")
_USERNAME = re.compile(r"@[A-Za-z][A-Za-z0-9_]{3,31}")
_NUMERIC_ID = re.compile(r"-?[1-9][0-9]*")


def _chat_ref(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError("a chat is an @username or a numeric id")
    value = value.strip()
    if not (_USERNAME.fullmatch(value) or _NUMERIC_ID.fullmatch(value)):
        raise ValueError(f"{value!r} is neither an @username nor a numeric chat id")
    return value


ChatRef = Annotated[str, BeforeValidator(_chat_ref)]


class TelegramSettings(ChannelSettings):
    bot_token: Secret
    chats: list[ChatRef] = Field(min_length=1, description='"@channel" names or numeric ids.')
    base_url: str = "https://api.telegram.org/bot"
    disable_link_preview: bool = False
    silent: bool = Field(False, description="Deliver without a notification sound.")
    timeout_seconds: float = Field(10.0, gt=0)
    per_chat_interval_seconds: float = Field(1.0, ge=0)
    group_per_minute: int = Field(20, ge=1)
    global_per_second: int = Field(30, ge=1)

    @field_validator("chats")
    @classmethod
    def _distinct(cls, chats: list[str]) -> list[str]:
        seen = {c for c in chats if chats.count(c) > 1}
        if seen:
            raise ValueError(f"listed twice: {', '.join(sorted(seen))}")
        return chats

    @field_validator("base_url")
    @classmethod
    def _http(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return url


@dataclass(frozen=True)
class TelegramPost:
    """One message for one chat: a photo with a caption, or a text message."""

    chat: str
    text: str  # Telegram HTML: the caption of a photo, else the message text
    photo_url: str = ""


def is_group(chat: str) -> bool:
    """Positive ids are people; names and negative ids are groups and channels."""
    return not (_NUMERIC_ID.fullmatch(chat) and not chat.startswith("-"))


class FloodPacer:
    """Waits just long enough to stay within Telegram's flood limits.

    About one message per second per chat, ``group_per_minute`` per group in any
    minute, ``global_per_second`` overall in any second (core.telegram.org/bots/faq).
    """

    def __init__(
        self,
        per_chat_interval: float = 1.0,
        group_per_minute: int = 20,
        global_per_second: int = 30,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.per_chat_interval = per_chat_interval
        self.group_per_minute = group_per_minute
        self.global_per_second = global_per_second
        self.clock = clock
        self.sleep = sleep
        self._last: dict[str, float] = {}
        self._blocked_until: dict[str, float] = {}
        self._group_sends: dict[str, deque[float]] = defaultdict(deque)
        self._all_sends: deque[float] = deque()

    def ready_at(self, chat: str) -> float:
        """The earliest clock time a message to ``chat`` may go."""
        now = self.clock()
        at = max(now, self._blocked_until.get(chat, now))
        if chat in self._last:
            at = max(at, self._last[chat] + self.per_chat_interval)
        if is_group(chat):
            at = max(at, _window_opens(self._group_sends[chat], now, 60.0, self.group_per_minute))
        return max(at, _window_opens(self._all_sends, now, 1.0, self.global_per_second))

    def wait(self, chat: str) -> None:
        """Sleep until a message to ``chat`` may go, and count it as sent."""
        delay = self.ready_at(chat) - self.clock()
        if delay > 0:
            self.sleep(delay)
        now = self.clock()
        self._last[chat] = now
        self._all_sends.append(now)
        if is_group(chat):
            self._group_sends[chat].append(now)

    def hold(self, chat: str, seconds: float) -> None:
        """Telegram asked us to wait before the next message to ``chat``."""
        self._blocked_until[chat] = self.clock() + seconds


def _window_opens(sends: deque[float], now: float, span: float, limit: int) -> float:
    """When a sliding window of ``span`` seconds next has room for one more send."""
    while sends and sends[0] <= now - span:
        sends.popleft()
    return sends[-limit] + span if len(sends) >= limit else now


def retry_after_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # ptb 22 warns that the int will become a timedelta
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def map_telegram_error(exc: TelegramError, secret: str = "") -> DeliveryError:
    """The one boundary where python-telegram-bot's errors enter our error tree."""
    text = scrub(str(exc), secret)
    if isinstance(exc, RetryAfter):
        seconds = retry_after_seconds(exc)
        return RateLimited(
            f"Telegram flood control: {text}", retry_after=seconds, channel=CHANNEL, status=429
        )
    if isinstance(exc, ChatMigrated):  # only reached when the new id migrated again
        return PermanentError(f"chat migrated again: {text}", channel=CHANNEL, code="migrated")
    if isinstance(exc, InvalidToken):
        return AuthError(
            f"Telegram refused the bot token: {text}", channel=CHANNEL, status=401, code="token"
        )
    if isinstance(exc, Forbidden):
        return _chat_unreachable(
            f"the bot may not post in this chat: {text}", status=403, code="forbidden"
        )
    # BadRequest and TimedOut subclass NetworkError: they must be caught before it.
    if isinstance(exc, BadRequest):
        if "chat not found" in text.lower():
            return _chat_unreachable(f"chat not found: {text}", status=400, code="chat_not_found")
        return PermanentError(
            f"Telegram refused the message: {text}", channel=CHANNEL, status=400, code="bad_request"
        )
    if isinstance(exc, TimedOut):
        return TransientError(f"Telegram timed out: {text}", channel=CHANNEL, code="timeout")
    if isinstance(exc, NetworkError):
        return TransientError(f"Telegram unreachable: {text}", channel=CHANNEL, code="network")
    return PermanentError(f"unexpected Telegram error: {text}", channel=CHANNEL)


def _maybe_delivered(exc: TelegramError) -> bool:
    """A timeout or a dropped connection after the request went out: Telegram may have
    posted the message. (A refused connect or a full pool sent nothing.)"""
    if isinstance(exc, BadRequest) or not isinstance(exc, NetworkError):
        return False
    cause = exc.__cause__
    return isinstance(cause, httpx.HTTPError) and not isinstance(
        cause, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout
    )


def _chat_unreachable(message: str, *, status: int, code: str) -> PermanentError:
    """Permanent for this run; nothing reached the chat, so once the bot is (back) in
    it a rerun sends the edition there."""
    error = PermanentError(message, channel=CHANNEL, status=status, code=code)
    error.retryable = True
    return error


def _photo_refused(exc: BadRequest) -> bool:
    """Whether Telegram refused a sendPhoto for the image itself, not for the chat or
    the caption ("failed to get HTTP URL content", "wrong type of the web page content",
    "IMAGE_PROCESS_FAILED", "not enough rights to send photos")."""
    text = str(exc).lower()
    return not any(words in text for words in ("chat not found", "parse entities"))


def scrub(text: str, secret: str) -> str:
    return text.replace(secret, "<bot-token>") if secret else text


class _RedactToken(logging.Filter):
    """Replaces the bot token in log records (ptb and httpx log request URLs)."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.secret in message:
            record.msg, record.args = scrub(message, self.secret), ()
        return True


class _LoopThread:
    """An event loop running in a daemon thread; coroutines are submitted to it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="telegram-channel", daemon=True
        )
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


class TelegramChannel(BaseChannel):
    name = CHANNEL
    Settings = TelegramSettings
    max_batch = 1  # one claim per message: a crash leaves at most one in doubt

    def __init__(
        self,
        settings: TelegramSettings,
        context: ChannelContext | None = None,
        *,
        pacer: FloodPacer | None = None,
    ) -> None:
        super().__init__(settings, context)
        self._secret = settings.bot_token.get_secret_value()
        self._pacer = pacer or FloodPacer(
            settings.per_chat_interval_seconds,
            settings.group_per_minute,
            settings.global_per_second,
        )
        self._redactor = _RedactToken(self._secret)
        for name in URL_LOGGERS:
            logging.getLogger(name).addFilter(self._redactor)
        self._runner: _LoopThread | None = None
        self._bot: Bot | None = None
        self.migrations: dict[str, int] = {}  # configured chat -> the supergroup it became

    # -- plan ------------------------------------------------------------------
    def plan(self, edition: RenderedEdition) -> list[Delivery]:
        parts = self._check(edition)
        deliveries: list[Delivery] = []
        for index, (label, text, photo_url) in enumerate(parts):
            for chat in self.settings.chats:
                after = f"{chat}:{parts[index - 1][0]}" if index else None
                post = TelegramPost(chat=chat, text=text, photo_url=photo_url)
                deliveries.append(Delivery(f"{chat}:{label}", post, after=after))
        return deliveries

    def _check(self, edition: RenderedEdition) -> list[tuple[str, str, str]]:
        """(label, html, photo url) per message, or ContentError naming every problem."""
        parts: list[tuple[str, str, str]] = []
        problems: list[str] = []
        photo = edition.telegram_photo
        if photo is not None:
            if not photo.url.startswith(("http://", "https://")):
                problems.append(f"photo: {photo.url!r} is not an http(s) URL")
            caption_problems = validate_telegram_html(photo.caption, CAPTION_LIMIT)
            if photo.caption.strip() == "":  # a photo may go without a caption
                caption_problems = [p for p in caption_problems if p != "text is empty"]
            problems.extend(f"photo caption: {p}" for p in caption_problems)
            parts.append(("photo", photo.caption, photo.url))
        for number, message in enumerate(edition.telegram_messages, start=1):
            found = validate_telegram_html(message.text, MESSAGE_LIMIT)
            problems.extend(f"message {number}: {p}" for p in found)
            parts.append((f"msg-{number}", message.text, ""))
        if not edition.telegram_messages:
            problems.append("the edition has no Telegram messages")
        if problems:
            shown = "; ".join(problems[:10])
            more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
            raise ContentError(f"Telegram edition refused: {shown}{more}")
        return parts

    # -- send ------------------------------------------------------------------
    def send(self, batch: Sequence[Delivery]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for delivery in batch:
            try:
                outcomes.append(self.send_one(delivery))
            except DeliveryError as exc:
                outcomes.append(exc)
        return outcomes

    def send_one(self, delivery: Delivery) -> Receipt | InDoubt:
        post: TelegramPost = delivery.payload
        detail = ""
        sending = False
        try:
            bot = self._run(self._ready_bot())  # before pacing, so getMe adds no gap
            self._pacer.wait(post.chat)
            sending = True
            try:
                message, note = self._run(self._send(bot, self._chat_id(post.chat), post))
            except ChatMigrated as exc:
                # The group became a supergroup: Telegram rejected the message, so
                # sending it once to the new id cannot duplicate it.
                self.migrations[post.chat] = exc.new_chat_id
                detail = (
                    f"chat {post.chat} migrated to {exc.new_chat_id}: "
                    "update chats in [channels.telegram]"
                )
                log.warning("%s: %s", CHANNEL, detail)
                message, note = self._run(self._send(bot, exc.new_chat_id, post))
            detail = "; ".join(part for part in (detail, note) if part)
        except TelegramError as exc:
            if sending and _maybe_delivered(exc):
                log.warning(
                    "%s: %s: no answer after the message went out (%s); left in doubt, "
                    "not resent: check the chat, then settle it with briefcast ledger resolve",
                    CHANNEL,
                    delivery.target,
                    type(exc.__cause__).__name__,
                )
                return InDoubt(
                    "no answer from Telegram after the message went out "
                    f"({type(exc.__cause__).__name__})"
                )
            if isinstance(exc, RetryAfter):
                self._pacer.hold(post.chat, retry_after_seconds(exc))
            error = map_telegram_error(exc, self._secret)
            if self._secret in str(exc):  # never chain a message that names the token
                raise error from None
            raise error from exc
        return Receipt(provider_id=f"{message.chat.id}:{message.message_id}", detail=detail)

    def _chat_id(self, chat: str) -> int | str:
        if chat in self.migrations:
            return self.migrations[chat]
        return int(chat) if _NUMERIC_ID.fullmatch(chat) else chat

    async def _send(self, bot: Bot, chat_id: int | str, post: TelegramPost) -> tuple[Message, str]:
        """The message and a note. A lead photo Telegram refuses (it cannot fetch or use
        the image, or the chat takes no photos) goes as its caption in a text message,
        so one bad image never holds the digest back behind it."""
        try:
            return await self._post(bot, chat_id, post), ""
        except BadRequest as exc:
            if not (post.photo_url and post.text.strip() and _photo_refused(exc)):
                raise
            reason = scrub(str(exc), self._secret)
        log.warning("%s: %s: photo refused (%s); sending its caption", CHANNEL, post.chat, reason)
        message = await self._post(bot, chat_id, replace(post, photo_url=""))
        return message, f"without the photo: {reason}"

    async def _post(self, bot: Bot, chat_id: int | str, post: TelegramPost) -> Message:
        if post.photo_url:
            return await bot.send_photo(
                chat_id=chat_id,
                photo=post.photo_url,
                caption=post.text or None,
                parse_mode=ParseMode.HTML,
                disable_notification=self.settings.silent,
            )
        preview = (
            LinkPreviewOptions(is_disabled=True) if self.settings.disable_link_preview else None
        )
        return await bot.send_message(
            chat_id=chat_id,
            text=post.text,
            parse_mode=ParseMode.HTML,
            disable_notification=self.settings.silent,
            link_preview_options=preview,
        )

    async def _ready_bot(self) -> Bot:
        if self._bot is None:
            timeout = self.settings.timeout_seconds
            request = HTTPXRequest(
                connection_pool_size=4,
                read_timeout=timeout,
                write_timeout=timeout,
                connect_timeout=timeout,
                pool_timeout=timeout,
                media_write_timeout=timeout,
            )
            self._bot = Bot(self._secret, base_url=self.settings.base_url, request=request)
        await self._bot.initialize()  # getMe once: a bad token fails before any message
        return self._bot

    def _run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        if self._runner is None:
            self._runner = _LoopThread()
        return self._runner.run(coro)

    def close(self) -> None:
        if self._runner is not None:
            if self._bot is not None:
                try:
                    self._runner.run(self._bot.shutdown())
                except TelegramError as exc:
                    log.debug("%s: shutdown: %s", CHANNEL, scrub(str(exc), self._secret))
            self._runner.stop()
            self._runner = None
            self._bot = None
        for name in URL_LOGGERS:
            logging.getLogger(name).removeFilter(self._redactor)


__all__ = [
    "FloodPacer",
    "TelegramChannel",
    "TelegramPost",
    "TelegramSettings",
    "map_telegram_error",
]
