"""The whole product in one scenario, as a newsroom runs it.

The real ``briefcast`` CLI in a subprocess, a config written here that aims
every channel at a real fake provider on 127.0.0.1 (SendGrid, an SMTP server,
X, Telegram, Bluesky, Mastodon), secrets passed as ``{ env = ... }`` references, the sample
day's content and subscribers plus a few hundred more. Every provider is
scripted to misbehave once; then the same edition is run again; then a run is
killed while a post is in flight, and the rerun finds that post on the account.
"""

from __future__ import annotations

import csv
import json
import os
import re
import secrets
import signal
import sqlite3
import subprocess
import sys
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from fakes.bluesky_server import Account as BlueskyAccount
from fakes.bluesky_server import FakeBluesky
from fakes.mastodon_server import FakeMastodon
from fakes.sendgrid_server import FakeSendGrid
from fakes.smtp_sink import SmtpSink
from fakes.telegram_server import FakeTelegram
from fakes.x_server import Account, FakeX, delay, drop, rate_limited
from support import wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS"),
]
ROOT = Path(__file__).resolve().parent.parent
BRIEFCAST = [sys.executable, "-m", "briefcast"]
DAY = "2026-11-20"
GENERATED = 300
SOFT_BOUNCE = "reader-007@readers.example"  # 450 once, then accepted
HARD_BOUNCE = "reader-123@readers.example"  # 550: no such user
NEWSROOM_CHAT = "@harbour_ledger"
KICKED_CHAT = "@harbour_ledger_old"
BLUESKY_HANDLE = "harbourledger.example"


@dataclass(frozen=True)
class Secrets:
    sendgrid: str
    smtp: str
    x: Account
    telegram: str
    bluesky: str
    mastodon: str

    @property
    def env(self) -> dict[str, str]:
        return {
            "E2E_SENDGRID_KEY": self.sendgrid,
            "E2E_SMTP_PASSWORD": self.smtp,
            "E2E_X_CONSUMER_KEY": self.x.consumer_key,
            "E2E_X_CONSUMER_SECRET": self.x.consumer_secret,
            "E2E_X_ACCESS_TOKEN": self.x.access_token,
            "E2E_X_ACCESS_TOKEN_SECRET": self.x.access_token_secret,
            "E2E_TELEGRAM_TOKEN": self.telegram,
            "E2E_BLUESKY_APP_PASSWORD": self.bluesky,
            "E2E_MASTODON_TOKEN": self.mastodon,
        }

    @property
    def values(self) -> list[str]:
        return list(self.env.values())


def fresh_secrets() -> Secrets:
    def token(prefix: str) -> str:
        return f"{prefix}{secrets.token_hex(12)}"

    return Secrets(
        sendgrid=token("SG.e2e-"),
        smtp=token("smtp-pw-"),
        x=Account(token("ck-"), token("cs-"), token("at-"), token("ats-")),
        telegram=f"7{secrets.randbelow(10**8):08d}:{token('AAE')}",
        bluesky=token("bsky-app-"),
        mastodon=token("masto-"),
    )


@dataclass
class Providers:
    sendgrid: FakeSendGrid
    smtp: SmtpSink
    x: FakeX
    telegram: FakeTelegram
    bluesky: FakeBluesky
    mastodon: FakeMastodon


@contextmanager
def running_providers(keys: Secrets):
    """A fresh set of fake providers on 127.0.0.1; the old Telegram chat has kicked the bot."""
    with ExitStack() as stack:
        telegram = FakeTelegram(keys.telegram, {NEWSROOM_CHAT: "channel", KICKED_CHAT: "channel"})
        fakes = Providers(
            stack.enter_context(FakeSendGrid(keys.sendgrid)),
            stack.enter_context(SmtpSink(credentials=("brief", keys.smtp))),
            stack.enter_context(FakeX(keys.x)),
            stack.enter_context(telegram),
            stack.enter_context(FakeBluesky(BlueskyAccount(BLUESKY_HANDLE, keys.bluesky))),
            stack.enter_context(FakeMastodon(keys.mastodon, max_characters=500)),
        )
        telegram.forbid(KICKED_CHAT)
        yield fakes


def write_config(folder: Path, fakes: Providers) -> Path:
    """The newsroom's config: sample content, every channel aimed at its fake provider."""
    sample = ROOT / "sample"
    config = folder / "briefcast.toml"
    config.write_text(
        f"""\
data_dir = "{folder / "data"}"

[publication]
name = "The Harbour Ledger"
site_url = "https://harbourledger.example"
timezone = "Europe/Lisbon"
postal_address = "The Harbour Ledger, Rua do Cais 12, 1200-109 Lisboa, Portugal"
sender_email = "brief@harbourledger.example"
sender_name = "The Harbour Ledger"
reply_to = "desk@harbourledger.example"
web_base_url = "https://brief.harbourledger.example"

[[sources]]
name = "Newsroom"
type = "markdown"
path = "{sample / "articles"}"
priority = 1

[[sources]]
name = "Wire"
type = "feed"
url = "{sample / "wire.xml"}"

[[sources]]
name = "Partner feed"
type = "feed"
url = "{sample / "wire.json"}"

[dispatch]
backoff_seconds = 0.2
max_wait_seconds = 30

[channels.sendgrid]
api_key = {{ env = "E2E_SENDGRID_KEY" }}
base_url = "{fakes.sendgrid.url}"
timeout_seconds = 20

[channels.smtp]
host = "127.0.0.1"
port = {fakes.smtp.port}
security = "plain"
username = "brief"
password = {{ env = "E2E_SMTP_PASSWORD" }}
timeout_seconds = 20

[channels.x]
consumer_key = {{ env = "E2E_X_CONSUMER_KEY" }}
consumer_secret = {{ env = "E2E_X_CONSUMER_SECRET" }}
access_token = {{ env = "E2E_X_ACCESS_TOKEN" }}
access_token_secret = {{ env = "E2E_X_ACCESS_TOKEN_SECRET" }}
base_url = "{fakes.x.url}"
upload_base_url = "{fakes.x.url}"
timeout_seconds = 60

[channels.telegram]
bot_token = {{ env = "E2E_TELEGRAM_TOKEN" }}
chats = ["{NEWSROOM_CHAT}", "{KICKED_CHAT}"]
base_url = "{fakes.telegram.base_url}"
per_chat_interval_seconds = 0.2

[channels.bluesky]
handle = "{BLUESKY_HANDLE}"
app_password = {{ env = "E2E_BLUESKY_APP_PASSWORD" }}
base_url = "{fakes.bluesky.url}"

[channels.mastodon]
instance_url = "{fakes.mastodon.url}"
access_token = {{ env = "E2E_MASTODON_TOKEN" }}
visibility = "unlisted"
timeout_seconds = 5
""",
        encoding="utf-8",
    )
    return config


def cli_env(keys: Secrets) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "BRIEFCAST_", "E2E_"))
    }
    env.update(keys.env, COLUMNS="240")
    return env


def briefcast(*args: str, config: Path, keys: Secrets) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*BRIEFCAST, *args, "--config", str(config)],
        cwd=ROOT,
        env=cli_env(keys),
        capture_output=True,
        text=True,
        timeout=240,
    )


def import_subscribers(folder: Path, config: Path, keys: Secrets) -> list[str]:
    """sample/subscribers.csv and a few hundred more, through the CLI; every address."""
    more = folder / "readers.csv"
    with more.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "name"])
        for n in range(GENERATED):
            writer.writerow([f"reader-{n:03d}@readers.example", f"Reader Nº{n} Conceição"])
    for path in (ROOT / "sample" / "subscribers.csv", more):
        result = briefcast("subscribers", "import", str(path), config=config, keys=keys)
        assert result.returncode == 0, result.stdout + result.stderr
    with (ROOT / "sample" / "subscribers.csv").open(encoding="utf-8") as handle:
        sample = [row["email"].lower() for row in csv.DictReader(handle)]
    return sample + [f"reader-{n:03d}@readers.example" for n in range(GENERATED)]


def deliveries(output: str) -> dict[str, dict[str, int]]:
    """The summary table's rows: channel -> column -> number."""
    columns = ("delivered", "skipped", "failed", "in doubt", "held back")
    rows = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 6 and cells[1].isdigit():
            rows[cells[0]] = dict(zip(columns, map(int, cells[1:]), strict=True))
    return rows


def row(delivered=0, skipped=0, failed=0, in_doubt=0, held=0) -> dict[str, int]:
    return {
        "delivered": delivered,
        "skipped": skipped,
        "failed": failed,
        "in doubt": in_doubt,
        "held back": held,
    }


def one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def assert_no_secret_leaked(keys: Secrets, result: subprocess.CompletedProcess, data: Path):
    for value in keys.values:
        assert value not in result.stdout and value not in result.stderr
    for path in data.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            for value in keys.values:
                assert value.encode() not in content, f"a secret is written in {path}"


def ledger_rows(data: Path, state: str) -> list[tuple[str, str]]:
    with sqlite3.connect(data / "briefcast.db") as db:
        return db.execute(
            "SELECT channel, target FROM deliveries WHERE state = ? ORDER BY channel, seq",
            (state,),
        ).fetchall()


# -- 1-3: faults on every provider, then the same edition again -----------------------------
@pytest.fixture(scope="module", name="faulty_day")
def faulty_day_fixture(tmp_path_factory):
    folder = tmp_path_factory.mktemp("newsroom")
    keys = fresh_secrets()
    with running_providers(keys) as fakes:
        config = write_config(folder, fakes)
        addresses = import_subscribers(folder, config, keys)

        fakes.sendgrid.rate_limit_next(1, reset_in=1)
        fakes.smtp.reply(SOFT_BOUNCE, 450)
        fakes.smtp.reply(HARD_BOUNCE, 550)
        fakes.x.on_call(4, rate_limited(reset_in=1.5))
        fakes.telegram.retry_after(1, on_call=3)  # the newsroom chat's second message
        fakes.bluesky.on_call(3, rate_limited(reset_in=1))
        fakes.bluesky.on_call(5, drop(create_post=True))  # made, but the answer is lost
        fakes.mastodon.on_call(2, drop(create_post=True))  # made, but the answer is lost

        first = briefcast("run", "--date", DAY, config=config, keys=keys)
        after_first = snapshot(fakes)
        telegram_calls = fakes.telegram.sends()
        second = briefcast("run", "--date", DAY, config=config, keys=keys)
        yield {
            "fakes": fakes,
            "keys": keys,
            "data": folder / "data",
            "addresses": addresses,
            "first": first,
            "second": second,
            "after_first": after_first,
            "telegram_calls": telegram_calls,  # the first run's
        }


def snapshot(fakes: Providers) -> dict[str, int]:
    """What has arrived at each provider, and the requests that could make more arrive."""
    return {
        "sendgrid emails": len(fakes.sendgrid.delivered),
        "sendgrid requests": len(fakes.sendgrid.calls),
        "smtp emails": len(fakes.smtp.received),
        "x posts": len(fakes.x.posts),
        "x requests": fakes.x.calls,
        "telegram messages": len(fakes.telegram.received(NEWSROOM_CHAT)),
        "telegram messages in the kicked chat": len(fakes.telegram.received(KICKED_CHAT)),
        "bluesky posts": len(fakes.bluesky.posts),
        "bluesky requests": fakes.bluesky.calls,
        "mastodon statuses": len(fakes.mastodon.statuses),
        "mastodon requests": fakes.mastodon.calls,
    }


def social_preview(data: Path, platform: str) -> list[str]:
    folder = data / "preview" / DAY
    return [post["text"] for post in json.loads((folder / f"{platform}.json").read_text())]


def preview(data: Path) -> tuple[list[str], dict]:
    folder = data / "preview" / DAY
    posts = [post["text"] for post in json.loads((folder / "x.json").read_text())]
    return posts, json.loads((folder / "telegram.json").read_text())


def test_every_subscriber_gets_one_email_per_email_channel(faulty_day):
    fakes, addresses = faulty_day["fakes"], faulty_day["addresses"]
    assert len(set(addresses)) == 5 + GENERATED

    sendgrid = [m.to.lower() for m in fakes.sendgrid.delivered]
    assert sorted(sendgrid) == sorted(addresses)  # each once, the 429 waited out
    assert [call.status for call in fakes.sendgrid.calls] == [429, 202]

    smtp = [rcpt.lower() for message in fakes.smtp.received for rcpt in message.rcpt_tos]
    assert sorted(smtp) == sorted(a for a in addresses if a != HARD_BOUNCE)
    assert fakes.smtp.rcpt_attempts[SOFT_BOUNCE] == 2  # 450, then accepted
    assert fakes.smtp.rcpt_attempts[HARD_BOUNCE] == 1  # 550 is final


def test_x_thread_is_complete_and_chained(faulty_day):
    fakes, data = faulty_day["fakes"], faulty_day["data"]
    texts, _ = preview(data)
    posts = fakes.x.posts
    assert [p.text for p in posts] == texts
    assert fakes.x.thread_of(posts[-1].id) == posts  # each post replies to the one before
    assert fakes.x.rejected == [(4, 429)]
    assert fakes.x.calls == len(texts) + 1


def test_bluesky_thread_is_complete_chained_and_linked(faulty_day):
    fakes, data = faulty_day["fakes"], faulty_day["data"]
    texts = social_preview(data, "bluesky")
    posts = fakes.bluesky.posts
    assert len(texts) > 2 and [p.text for p in posts] == texts
    assert fakes.bluesky.thread_of(posts[-1].uri) == posts
    assert {p.root for p in posts[1:]} == {posts[0].uri}
    assert all(uri.startswith("https://") for p in posts for _, uri in p.links)
    assert posts[1].card is not None and [p.card for p in posts[2:]] == [None] * (len(posts) - 2)
    # the 429 was waited out; post 4's lost answer was read back, not posted again
    assert fakes.bluesky.rejected == [(3, 429), (5, 0)] and fakes.bluesky.logins == 1
    assert fakes.bluesky.calls == len(texts) + 1


def test_the_report_shows_the_hard_bounce_and_links_to_every_post(faulty_day):
    fakes, data = faulty_day["fakes"], faulty_day["data"]
    result = briefcast(
        "report", "--json", config=data.parent / "briefcast.toml", keys=faulty_day["keys"]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    channels = {c["channel"]: c for c in json.loads(result.stdout)["channels"]}
    addresses = faulty_day["addresses"]
    assert (channels["smtp"]["sent"], channels["smtp"]["bounced"]) == (len(addresses) - 1, 1)
    assert channels["sendgrid"]["sent"] == len(addresses)
    assert channels["x"]["posts"] == [f"https://x.com/i/status/{p.id}" for p in fakes.x.posts]
    assert channels["bluesky"]["posts"] == [
        f"https://bsky.app/profile/{p.uri.split('/')[2]}/post/{p.uri.rsplit('/', 1)[1]}"
        for p in fakes.bluesky.posts
    ]
    assert channels["mastodon"]["posts"] == [
        f"https://social.example/@gazette/{s.id}" for s in fakes.mastodon.statuses
    ]
    assert channels["telegram"]["posts"][0].startswith("https://t.me/")


def test_mastodon_thread_is_complete_and_the_lost_answer_posted_once(faulty_day):
    fakes, data = faulty_day["fakes"], faulty_day["data"]
    texts = social_preview(data, "mastodon")
    statuses = fakes.mastodon.statuses
    assert [s.text for s in statuses] == texts  # status 2 once, though its answer was lost
    assert fakes.mastodon.thread_of(statuses[-1].id) == statuses
    assert {s.visibility for s in statuses} == {"unlisted"}
    assert fakes.mastodon.calls == len(texts) + 1  # the retry, answered with the first status


def test_telegram_photo_then_digest_in_order(faulty_day):
    fakes, data = faulty_day["fakes"], faulty_day["data"]
    _, telegram = preview(data)
    received = fakes.telegram.received(NEWSROOM_CHAT)
    assert [m["kind"] for m in received] == ["photo"] + ["text"] * len(telegram["messages"])
    assert received[0]["photo"] == telegram["photo"]["url"]
    assert [m["html"] for m in received] == [telegram["photo"]["caption"], *telegram["messages"]]
    assert fakes.telegram.received(KICKED_CHAT) == []
    calls = faulty_day["telegram_calls"]
    statuses = [(call.chat, call.status) for call in calls]
    assert statuses.count((KICKED_CHAT, 403)) == 1  # its digest is not tried after the photo
    assert statuses[2] == (NEWSROOM_CHAT, 429)
    limited, retried = [c for c in calls if c.chat == NEWSROOM_CHAT][1:3]
    assert retried.at - limited.at >= 1  # RetryAfter 1 was waited out


def test_first_run_reports_failures_with_reasons(faulty_day):
    first, addresses = faulty_day["first"], faulty_day["addresses"]
    assert first.returncode == 1, first.stdout + first.stderr
    table = deliveries(first.stdout)
    _, telegram = preview(faulty_day["data"])
    per_chat = 1 + len(telegram["messages"])
    assert table == {
        "sendgrid": row(delivered=len(addresses)),
        "smtp": row(delivered=len(addresses) - 1, failed=1),
        "x": row(delivered=len(preview(faulty_day["data"])[0])),
        "telegram": row(delivered=per_chat, failed=per_chat),  # the kicked chat's photo, digest
        "bluesky": row(delivered=len(social_preview(faulty_day["data"], "bluesky"))),
        "mastodon": row(delivered=len(social_preview(faulty_day["data"], "mastodon"))),
    }, first.stdout
    text = one_line(first.stdout)
    assert re.search(rf"smtp: {re.escape(HARD_BOUNCE)}: .*RCPT TO refused: 550", text), text
    assert re.search(rf"telegram: {KICKED_CHAT}:photo: the bot may not post in this chat", text)


def test_no_secret_in_output_or_data_folder(faulty_day):
    for run in ("first", "second"):
        assert_no_secret_leaked(faulty_day["keys"], faulty_day[run], faulty_day["data"])


def test_rerun_sends_nothing_new_and_counts_skipped(faulty_day):
    fakes, second, addresses = faulty_day["fakes"], faulty_day["second"], faulty_day["addresses"]
    assert snapshot(fakes) == faulty_day["after_first"]
    table = deliveries(second.stdout)
    _, telegram = preview(faulty_day["data"])
    per_chat = 1 + len(telegram["messages"])
    assert {name: row["delivered"] for name, row in table.items()} == dict.fromkeys(
        ("sendgrid", "smtp", "x", "telegram", "bluesky", "mastodon"), 0
    ), second.stdout
    # The 550 was a hard bounce: that subscriber is bounced now and no channel plans it.
    assert table["sendgrid"]["skipped"] == len(addresses) - 1
    assert table["smtp"]["skipped"] == len(addresses) - 1 and table["smtp"]["failed"] == 0
    assert table["x"]["skipped"] == len(preview(faulty_day["data"])[0])
    assert table["telegram"]["skipped"] == per_chat
    assert table["bluesky"]["skipped"] == len(social_preview(faulty_day["data"], "bluesky"))
    assert table["mastodon"]["skipped"] == len(social_preview(faulty_day["data"], "mastodon"))
    assert second.returncode == 1  # the kicked chat still failed


# -- 4: a crash while a post is in flight -------------------------------------------------
def test_a_post_in_flight_at_a_crash_is_found_on_the_account_and_the_thread_goes_on(tmp_path):
    keys = fresh_secrets()
    with running_providers(keys) as fakes:
        crash_and_settle(tmp_path, keys, fakes)


def crash_and_settle(tmp_path: Path, keys: Secrets, fakes: Providers) -> None:
    config = write_config(tmp_path, fakes)
    data = tmp_path / "data"
    addresses = import_subscribers(tmp_path, config, keys)
    fakes.x.on_call(3, delay(60))  # X creates post 3, then answers only after a minute

    output = (tmp_path / "crashed.out").open("w")
    run = subprocess.Popen(
        [*BRIEFCAST, "run", "--date", DAY, "--config", str(config)],
        cwd=ROOT,
        env=cli_env(keys),
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the embedded Prefect server dies too
    )
    try:
        wait_for(lambda: len(fakes.x.posts) == 3, timeout=120, what="X to receive post 3")
        per_chat = 1 + len(preview(data)[1]["messages"])
        social = len(social_preview(data, "bluesky")) + len(social_preview(data, "mastodon"))

        def everything_else_recorded() -> bool:
            sent = len(ledger_rows(data, "sent"))
            in_flight = ledger_rows(data, "in_flight")
            expected = 2 * len(addresses) + 2 + per_chat + social
            return in_flight == [("x", "post-3")] and sent == expected

        wait_for(everything_else_recorded, timeout=60, what="the other channels to finish")
        os.killpg(run.pid, signal.SIGKILL)
        run.wait(timeout=10)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(timeout=10)
        fakes.x.release()
        output.close()
    before = snapshot(fakes)
    texts = preview(data)[0]

    # The rerun looks at the account before sending anything on X: post 3 is there, so
    # it is recorded as sent with its id and the thread goes on under it. Nobody had to
    # find it and settle it by hand, and nothing else is sent again.
    rerun = briefcast("run", "--date", DAY, config=config, keys=keys)
    table = deliveries(rerun.stdout)
    assert table["x"] == row(delivered=len(texts) - 3, skipped=3), rerun.stdout
    assert table["sendgrid"]["skipped"] == len(addresses)
    assert table["smtp"]["skipped"] == len(addresses)
    assert table["telegram"]["skipped"] == per_chat
    assert "In doubt" not in rerun.stdout
    assert ledger_rows(data, "in_flight") == []
    after = snapshot(fakes)
    assert {k: v for k, v in after.items() if not k.startswith("x ")} == {
        k: v for k, v in before.items() if not k.startswith("x ")
    }
    assert [p.text for p in fakes.x.posts] == texts  # each post exactly once
    assert fakes.x.thread_of(fakes.x.posts[-1].id) == fakes.x.posts
    assert fakes.x.timeline_reads == 1
    assert sorted(m.to.lower() for m in fakes.sendgrid.delivered) == sorted(addresses)
    assert len(fakes.smtp.received) == len(addresses)
    assert len(fakes.telegram.received(NEWSROOM_CHAT)) == per_chat
    crashed = subprocess.CompletedProcess(run.args, -9, (tmp_path / "crashed.out").read_text(), "")
    for result in (crashed, rerun):
        assert_no_secret_leaked(keys, result, data)


# -- 5: two runs of one edition at the same time --------------------------------------------
def test_two_runs_of_one_edition_at_once_serve_each_subscriber_exactly_once(tmp_path):
    """Two `briefcast run` processes on the same edition: the claims keep them apart."""
    keys = fresh_secrets()
    with running_providers(keys) as fakes:
        config = write_config(tmp_path, fakes)
        addresses = import_subscribers(tmp_path, config, keys)
        fakes.sendgrid.latency = 0.2  # requests overlap between the two runs
        command = [*BRIEFCAST, "run", "--date", DAY, "--channels", "sendgrid,smtp"]
        runs = [
            subprocess.Popen(
                [*command, "--config", str(config)],
                cwd=ROOT,
                env=cli_env(keys),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [run.communicate(timeout=240)[0] for run in runs]

        sendgrid = sorted(m.to.lower() for m in fakes.sendgrid.delivered)
        assert sendgrid == sorted(addresses), outputs
        smtp = sorted(r.lower() for m in fakes.smtp.received for r in m.rcpt_tos)
        assert smtp == sorted(addresses), outputs
        for channel in ("sendgrid", "smtp"):
            served = [deliveries(output)[channel] for output in outputs]
            total = sum(s["delivered"] + s["skipped"] + s["held back"] for s in served)
            assert total == 2 * len(addresses), outputs
            assert sum(s["delivered"] for s in served) == len(addresses), outputs
            assert all(s["failed"] == 0 and s["in doubt"] == 0 for s in served), outputs
