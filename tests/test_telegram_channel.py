"""The Telegram adapter with the real python-telegram-bot against a fake Bot API on 127.0.0.1.

Every delivery goes through the real dispatcher and a real ledger on SQLite, as in a run.
"""

from __future__ import annotations

import logging
import time
import warnings
from datetime import UTC, date, datetime

import pytest
import support
from briefcast.channels.errors import AuthError, PermanentError, RateLimited, TransientError
from briefcast.channels.registry import load_registry
from briefcast.channels.telegram_chat import (
    FloodPacer,
    TelegramChannel,
    TelegramSettings,
    map_telegram_error,
)
from fakes.telegram_server import FakeTelegram
from pydantic import ValidationError
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.warnings import PTBDeprecationWarning

from briefcast.config import Dispatch, Settings
from briefcast.db import get_engine
from briefcast.dispatch import dispatch_channel
from briefcast.ledger import FAILED, SENT, Ledger
from briefcast.models import (
    Article,
    Gathered,
    Image,
    RenderedEdition,
    TelegramMessage,
    TelegramPhoto,
)
from briefcast.render import render_edition
from briefcast.render.telegram_html import telegram_length

TOKEN = "424242:fake-token-for-tests"
CHANNEL = "@gazette_brief"
GROUP = "-1001234567890"
PHOTO = TelegramPhoto(
    url="https://gazette.example/img/lead.jpg",
    caption='<b>Harbour plan approved</b>\n<a href="https://gazette.example/a/1">Read more</a>',
)
DIGEST = [
    "<b>Today's brief</b>\n\n1. <i>Harbour plan approved</i> &amp; what changes",
    "2. Council budget: <code>+4%</code> on transit",
    '3. <a href="https://gazette.example/a/3">School meals</a> expand to all pupils',
]
FAST = {"per_chat_interval_seconds": 0.05}

# ptb 22 warns, from inside RetryAfter, that its retry_after will become a timedelta;
# the adapter reads either form.
pytestmark = pytest.mark.filterwarnings(
    "ignore:.*retry_after:telegram.warnings.PTBDeprecationWarning"
)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", PTBDeprecationWarning)
    FLOOD_CONTROL = RetryAfter(7)


def make_edition(messages=DIGEST, photo: TelegramPhoto | None = PHOTO) -> RenderedEdition:
    return support.make_edition(
        telegram_photo=photo, telegram_messages=[TelegramMessage(text=t) for t in messages]
    )


@pytest.fixture
def fake():
    with FakeTelegram(TOKEN, {CHANNEL: "channel", GROUP: "supergroup"}) as server:
        yield server


@pytest.fixture
def ledger(tmp_path):
    return Ledger(get_engine(f"sqlite:///{tmp_path / 'ledger.db'}"))


@pytest.fixture
def channel_for(fake, monkeypatch):
    """Build adapters the way the config does: the token comes from the environment."""
    monkeypatch.setenv("TEST_TELEGRAM_TOKEN", TOKEN)
    made: list[TelegramChannel] = []

    def build(chats=(CHANNEL, GROUP), pacer=None, **options) -> TelegramChannel:
        settings = TelegramSettings.model_validate(
            {
                "bot_token": {"env": "TEST_TELEGRAM_TOKEN"},
                "chats": list(chats),
                "base_url": fake.base_url,
                "timeout_seconds": 2,
                **options,
            }
        )
        made.append(TelegramChannel(settings, pacer=pacer))
        return made[-1]

    yield build
    for adapter in made:
        adapter.close()


def dispatch(adapter, ledger, edition=None, sleep=time.sleep, **policy):
    policy = Dispatch(**{"max_attempts": 3, "backoff_seconds": 0, **policy})
    edition = edition or make_edition()
    return dispatch_channel(adapter, "telegram", edition, ledger, policy, sleep=sleep)


def texts(received: list[dict]) -> list[str]:
    return [m["html"] for m in received]


# -- delivery -------------------------------------------------------------------


def test_photo_then_digest_arrive_in_order_in_every_chat(fake, ledger, channel_for):
    adapter = channel_for(silent=True, disable_link_preview=True, **FAST)
    report = dispatch(adapter, ledger)

    assert (report.delivered, report.failed) == (8, 0), report.errors
    for chat in (CHANNEL, GROUP):
        received = fake.received(chat)
        assert [m["kind"] for m in received] == ["photo", "text", "text", "text"]
        assert received[0]["photo"] == PHOTO.url
        assert texts(received) == [PHOTO.caption, *DIGEST]
        assert received[1]["text"].startswith("Today's brief\n\n1. Harbour plan approved & what")
        assert all(m["silent"] for m in received)
        assert [m["link_preview_options"] for m in received[1:]] == [{"is_disabled": True}] * 3
    rows = ledger.rows("2026-11-20", "telegram")
    assert {r.state for r in rows.values()} == {SENT}
    chat_id = fake.chat(CHANNEL).id
    assert (
        rows[f"{CHANNEL}:msg-3"].receipt == f"{chat_id}:{fake.received(CHANNEL)[3]['message_id']}"
    )


def test_a_photo_telegram_cannot_fetch_goes_as_its_caption_and_the_digest_follows(
    fake, ledger, channel_for, caplog
):
    fake.refuse_photo(PHOTO.url)
    with caplog.at_level(logging.WARNING):
        report = dispatch(channel_for(**FAST), ledger)

    assert (report.delivered, report.failed) == (8, 0), report.errors
    for chat in (CHANNEL, GROUP):
        received = fake.received(chat)
        assert [m["kind"] for m in received] == ["text"] * 4
        assert texts(received) == [PHOTO.caption, *DIGEST]
    assert "photo refused (failed to get http url content)" in caplog.text.lower()


def test_defaults_notify_and_allow_link_previews(fake, ledger, channel_for):
    report = dispatch(channel_for(chats=[CHANNEL], **FAST), ledger, make_edition(photo=None))

    assert report.delivered == 3
    received = fake.received(CHANNEL)
    assert not any(m["silent"] for m in received)
    assert all(m["link_preview_options"] is None for m in received)


def test_retry_after_is_honoured_and_the_message_arrives_once(fake, ledger, channel_for):
    fake.retry_after(1, on_call=2)  # the first digest message hits flood control
    clock = FakeClock()  # the dispatcher's and the pacer's: no real second goes by
    pacer = FloodPacer(0.05, clock=clock, sleep=clock.sleep)
    adapter = channel_for(chats=[CHANNEL], pacer=pacer)

    report = dispatch(adapter, ledger, sleep=clock.sleep)

    assert (report.delivered, report.failed) == (4, 0), report.errors
    assert texts(fake.received(CHANNEL)) == [PHOTO.caption, *DIGEST]
    assert [c.status for c in fake.sends()] == [200, 429, 200, 200, 200]
    assert 1.0 in clock.slept  # the retry waited Telegram's retry_after, on the clock


def rendered_long_edition() -> RenderedEdition:
    """A day whose digest is far over 4096 characters, through the real renderer."""
    settings = Settings.model_validate(
        {
            "publication": {
                "name": "The Test Gazette",
                "site_url": "https://gazette.example",
                "postal_address": "1 Quay Street, Harbourtown",
                "sender_email": "brief@gazette.example",
            }
        }
    )
    paragraph = "<p>" + "Reporting on the day, with figures &amp; context. " * 10 + "</p>"
    articles = [
        Article(
            key=f"story-{n}",
            url=f"https://gazette.example/a/{n}",
            title=f"Story {n}: the <harbour> & the council",
            summary_html=paragraph * (16 if n == 0 else 1),  # the lead alone is over the limit
            source="desk",
            published=datetime(2026, 11, 20, 6, tzinfo=UTC),
            hero=Image(url="https://gazette.example/img/lead.jpg") if n == 0 else None,
        )
        for n in range(10)
    ]
    return render_edition(settings, Gathered(edition_date=date(2026, 11, 20), articles=articles))


def test_a_long_digest_is_split_before_sending_and_never_rejected(fake, ledger, channel_for):
    edition = rendered_long_edition()
    chunks = [m.text for m in edition.telegram_messages]
    assert telegram_length("\n\n".join(chunks)) > 2 * 4096  # one message would be refused

    report = dispatch(channel_for(chats=[CHANNEL], **FAST), ledger, edition)

    assert (report.delivered, report.failed) == (len(chunks) + 1, 0), report.errors
    assert all(c.status == 200 for c in fake.sends())
    received = fake.received(CHANNEL)
    assert received[0]["photo"] == "https://gazette.example/img/lead.jpg"
    assert texts(received)[1:] == chunks
    assert "Story 9: the <harbour> & the council" in received[-1]["text"] + received[-2]["text"]


@pytest.mark.parametrize(
    ("messages", "photo", "reason"),
    [
        (DIGEST[:1] + ["x" * 4097], PHOTO, "message 2: too long: 4097"),
        (["fine", "line one<br>line two"], PHOTO, "message 2: tag <br> is not allowed"),
        (["<b>never closed"], None, "message 1: <b> is never closed"),
        (DIGEST, TelegramPhoto(url=PHOTO.url, caption="c" * 1025), "photo caption: too long"),
        ([], PHOTO, "no Telegram messages"),
    ],
)
def test_an_invalid_edition_is_refused_before_anything_is_sent(
    fake, ledger, channel_for, messages, photo, reason
):
    report = dispatch(channel_for(**FAST), ledger, make_edition(messages, photo))

    assert report.failed == 1 and report.delivered == 0
    assert "edition refused before sending" in report.errors[0]
    assert reason in report.errors[0]
    assert fake.sends() == []
    assert ledger.rows("2026-11-20", "telegram") == {}


def test_a_forbidden_chat_is_reported_while_the_other_chat_gets_the_edition(
    fake, ledger, channel_for
):
    fake.forbid(CHANNEL)
    report = dispatch(channel_for(**FAST), ledger)

    assert report.delivered == 4
    assert texts(fake.received(GROUP)) == [PHOTO.caption, *DIGEST]
    assert fake.received(CHANNEL) == []
    assert any("bot was kicked" in e and "403" in e for e in report.errors), report.errors
    # Permanent: one attempt at the chat, the rest of its messages held back behind it.
    assert len([c for c in fake.sends() if c.chat == CHANNEL]) == 1
    assert any(f"{CHANNEL}:msg-1: not sent" in e for e in report.errors)
    assert ledger.rows("2026-11-20", "telegram")[f"{CHANNEL}:photo"].state == FAILED


def test_a_rerun_delivers_to_a_chat_once_the_bot_is_back_in_it(fake, ledger, channel_for):
    fake.forbid(CHANNEL)
    first = dispatch(channel_for(**FAST), ledger)
    assert (first.delivered, first.failed) == (4, 4), first.errors

    fake.chat(CHANNEL).forbidden = False  # the operator adds the bot to the channel again
    second = dispatch(channel_for(**FAST), ledger)

    assert (second.delivered, second.skipped, second.failed) == (4, 4, 0), second.errors
    assert texts(fake.received(CHANNEL)) == [PHOTO.caption, *DIGEST]
    assert texts(fake.received(GROUP)) == [PHOTO.caption, *DIGEST]  # once each


def test_an_unknown_chat_is_a_permanent_chat_not_found(fake, ledger, channel_for):
    report = dispatch(channel_for(chats=["@no_such_chat", GROUP], **FAST), ledger)

    assert report.delivered == 4
    assert any("@no_such_chat:photo: chat not found" in e for e in report.errors), report.errors
    assert len([c for c in fake.sends() if c.chat == "@no_such_chat"]) == 1


def test_a_migrated_group_is_followed_and_reported(fake, ledger, channel_for, caplog):
    fake.add_chat("-4001", "group")
    fake.migrate("-4001", -1009999)
    adapter = channel_for(chats=["-4001"], **FAST)
    with caplog.at_level(logging.WARNING):
        report = dispatch(adapter, ledger)

    assert (report.delivered, report.failed) == (4, 0), report.errors
    assert texts(fake.received("-1009999")) == [PHOTO.caption, *DIGEST]
    assert [c.status for c in fake.sends() if c.chat == "-4001"] == [400]  # asked once only
    assert adapter.migrations == {"-4001": -1009999}
    assert "-4001 migrated to -1009999" in caplog.text
    receipt = ledger.rows("2026-11-20", "telegram")["-4001:photo"].receipt
    assert receipt.startswith("-1009999:")


def test_a_rerun_continues_a_chat_where_it_stopped(fake, ledger, channel_for):
    fake.server_error(502, on_call=3)  # the channel's first digest message, out of retries
    first = dispatch(channel_for(**FAST), ledger, max_attempts=1)
    assert first.delivered == 5 and first.failed == 3, first.errors
    assert texts(fake.received(CHANNEL)) == [PHOTO.caption]

    second = dispatch(channel_for(**FAST), ledger, max_attempts=1)

    assert (second.delivered, second.skipped, second.failed) == (3, 5, 0), second.errors
    assert texts(fake.received(CHANNEL)) == [PHOTO.caption, *DIGEST]
    assert texts(fake.received(GROUP)) == [PHOTO.caption, *DIGEST]


def test_a_server_error_is_retried_without_duplicates(fake, ledger, channel_for):
    fake.server_error(500, on_call=1)
    report = dispatch(channel_for(chats=[CHANNEL], **FAST), ledger)

    assert (report.delivered, report.failed) == (4, 0)
    assert texts(fake.received(CHANNEL)) == [PHOTO.caption, *DIGEST]


def test_a_message_sent_but_never_answered_is_in_doubt_not_posted_twice(fake, ledger, channel_for):
    fake.delay(1.5, on_call=1)  # Telegram posts it, but answers after our timeout
    adapter = channel_for(chats=[CHANNEL], timeout_seconds=0.3, **FAST)
    report = dispatch(adapter, ledger, make_edition(photo=None))

    assert report.in_doubt == 1 and not report.ok
    row = ledger.rows("2026-11-20", "telegram")[f"{CHANNEL}:msg-1"]
    assert row.state == "in_flight"
    fake.wait_for_sends(1)  # the late answer lands
    rerun = dispatch(channel_for(chats=[CHANNEL], **FAST), ledger, make_edition(photo=None))
    assert rerun.in_doubt == 1
    assert texts(fake.received(CHANNEL)).count(DIGEST[0]) == 1  # never posted twice


def test_a_refused_connection_is_retried_as_nothing_was_sent(ledger, channel_for):
    adapter = channel_for(chats=[CHANNEL], base_url="http://127.0.0.1:9/bot", **FAST)
    report = dispatch(adapter, ledger, make_edition(photo=None), max_attempts=1)

    assert report.in_doubt == 0 and report.failed >= 1
    row = ledger.rows("2026-11-20", "telegram")[f"{CHANNEL}:msg-1"]
    assert row.state == FAILED
    assert ledger.reopen_retryable("2026-11-20", "telegram") >= 1  # a rerun will try again


def test_a_wrong_token_is_an_auth_error_and_never_printed(fake, ledger, channel_for, caplog):
    fake.token = "999:another-bot"
    with caplog.at_level(logging.DEBUG):
        report = dispatch(channel_for(chats=[CHANNEL], **FAST), ledger)

    assert report.delivered == 0
    assert "Telegram refused the bot token" in report.errors[0]
    assert fake.sends() == []
    assert TOKEN not in caplog.text and TOKEN not in " ".join(report.errors)


def test_the_token_stays_out_of_logs_errors_and_the_ledger(fake, ledger, channel_for, caplog):
    fake.forbid(CHANNEL)
    with caplog.at_level(logging.DEBUG):
        adapter = channel_for(**FAST)
        report = dispatch(adapter, ledger)

    assert "/bot<bot-token>/sendMessage" in caplog.text  # httpx logged the URL, scrubbed
    assert TOKEN not in caplog.text
    assert TOKEN not in " ".join(report.errors)
    assert TOKEN not in repr(adapter.settings)
    rows = ledger.rows("2026-11-20", "telegram").values()
    assert all(TOKEN not in (r.error or "") for r in rows)


# -- pacing ---------------------------------------------------------------------


def test_real_pacing_keeps_a_second_per_chat_while_chats_interleave(fake, ledger, channel_for):
    fake.flood_interval = 0.9  # the fake answers 429 to a chat written faster than that
    started = time.monotonic()
    report = dispatch(channel_for(), ledger, make_edition(DIGEST[:2]))
    elapsed = time.monotonic() - started

    assert (report.delivered, report.failed) == (6, 0), report.errors
    assert all(c.status == 200 for c in fake.sends())
    for chat in (CHANNEL, GROUP):
        arrivals = [c.at for c in fake.sends() if c.chat == chat]
        assert all(b - a >= 0.9 for a, b in zip(arrivals, arrivals[1:], strict=False))
    # Three messages per chat take about two seconds when the chats interleave, not five.
    assert elapsed < 3.5


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def pacer(clock: FakeClock, **limits) -> FloodPacer:
    return FloodPacer(**limits, clock=clock, sleep=clock.sleep)


def test_pacer_spaces_messages_to_one_chat_but_not_across_chats():
    clock = FakeClock()
    flood = pacer(clock, per_chat_interval=1.0)
    flood.wait("@a")
    flood.wait("@b")
    flood.wait("@a")
    flood.wait("@b")
    assert clock.slept == [1.0]  # @a waited once; @b's turn came after that wait anyway


def test_pacer_caps_a_group_per_minute_and_all_chats_per_second():
    clock = FakeClock()
    flood = pacer(clock, per_chat_interval=0.0, group_per_minute=20, global_per_second=30)
    for _ in range(21):
        flood.wait("-100777")
    assert clock.slept == [60.0]  # the 21st message waits for the oldest to leave the minute

    clock = FakeClock()
    flood = pacer(clock, per_chat_interval=0.0, global_per_second=30)
    for n in range(31):
        flood.wait(str(5000 + n))  # private chats: no group cap, only the global one
    assert clock.slept == [1.0]


def test_pacer_holds_a_chat_after_retry_after():
    clock = FakeClock()
    flood = pacer(clock, per_chat_interval=1.0)
    flood.wait("@a")
    flood.hold("@a", 5)
    flood.wait("@a")
    assert clock.slept == [5.0]


# -- error mapping and settings ---------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected", "status", "words"),
    [
        (FLOOD_CONTROL, RateLimited, 429, "Flood control"),
        (InvalidToken(), AuthError, 401, "Invalid token"),
        (
            Forbidden("Forbidden: bot was kicked from the channel chat"),
            PermanentError,
            403,
            "kicked",
        ),
        (BadRequest("Bad Request: chat not found"), PermanentError, 400, "chat not found"),
        (
            BadRequest("Bad Request: message is too long"),
            PermanentError,
            400,
            "Message is too long",
        ),
        (TimedOut(), TransientError, None, "timed out"),
        (NetworkError("Internal Server Error"), TransientError, None, "Internal Server Error"),
        (ChatMigrated(-100555), PermanentError, None, "-100555"),
        (Conflict("Conflict: terminated by other getUpdates request"), PermanentError, None, ""),
        (TelegramError("Invalid server response"), PermanentError, None, "Invalid server"),
    ],
)
def test_every_telegram_error_maps_into_the_tree(error, expected, status, words):
    mapped = map_telegram_error(error)

    assert type(mapped) is expected
    assert mapped.status == status and mapped.channel == "telegram"
    assert words in str(mapped)
    if isinstance(mapped, RateLimited):
        assert mapped.retry_after == 7


def test_mapped_errors_never_carry_the_token():
    error = NetworkError(f"Unknown error: POST http://127.0.0.1/bot{TOKEN}/sendMessage")
    assert TOKEN not in str(map_telegram_error(error, TOKEN))


def test_settings_need_a_chat_a_valid_reference_and_a_token_reference(monkeypatch):
    monkeypatch.setenv("TEST_TELEGRAM_TOKEN", TOKEN)
    token = {"env": "TEST_TELEGRAM_TOKEN"}
    with pytest.raises(ValidationError, match="at least 1"):
        TelegramSettings.model_validate({"bot_token": token, "chats": []})
    with pytest.raises(ValidationError, match="neither an @username nor a numeric"):
        TelegramSettings.model_validate({"bot_token": token, "chats": ["gazette"]})
    with pytest.raises(ValidationError, match="never inline"):
        TelegramSettings.model_validate({"bot_token": TOKEN, "chats": [CHANNEL]})
    settings = TelegramSettings.model_validate({"bot_token": token, "chats": [CHANNEL, -100123]})
    assert settings.chats == [CHANNEL, "-100123"]


def test_the_adapter_is_registered_under_its_name():
    assert load_registry().get("telegram") is TelegramChannel
