"""Issue 9's scenario: every provider misbehaving at once, kill -9 mid-dispatch, then the advice.

    python -m bench chaos                                   # 5 kills, 1000 subscribers
    python -m bench chaos --kills 20 --subscribers 3000     # issue 9's full scenario

1. The repo's fake providers (tests/fakes) on 127.0.0.1, each with a seeded fault
   mix: 20 % of requests fail (429, 500, 503, a stall past the client's timeout,
   a reset) and 5 % are ghosts (accepted and sent, then the line drops).
2. A fresh data folder: the sample day, N subscribers on SendGrid and SMTP, an X
   thread, two Telegram chats; every channel aimed at its fake.
3. ``--kills`` times: ``briefcast run``, killed with SIGKILL at a random moment
   once requests flow (channels send at the same time; the X thread and the
   Telegram chats, a few messages each, are done within the first run). At each
   kill (the run frozen first): the deliveries on the wire (sent, and the client
   has not had its answer) next to the rows the kill left in doubt.
4. The operator follows the CLI's advice: the in-doubt rows are checked against
   what each fake recorded (as one reads a provider's dashboard) and settled
   with ``briefcast ledger resolve`` (sent, with the X post id; or resend), then
   ``briefcast run`` again, until a run ends clean or ``--rounds`` are used up.
5. Per channel: duplicates and missing deliveries. Exit 0 only when there are none.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path

from bench.workspace import (
    ROOT,
    SAMPLE_DAY,
    cli_env,
    database,
    import_subscribers,
    write_config,
)

sys.path.insert(0, str(ROOT / "tests"))

from fakes.fault_mix import FaultMix  # noqa: E402
from fakes.sendgrid_server import FakeSendGrid  # noqa: E402
from fakes.smtp_sink import SmtpSink  # noqa: E402
from fakes.telegram_server import FakeTelegram  # noqa: E402
from fakes.x_server import Account, FakeX  # noqa: E402

CHATS = ("@harbour_ledger", "@harbour_ledger_pt")
CHANNELS = ("sendgrid", "smtp", "x", "telegram")
CLIENT_TIMEOUT = 1.0  # seconds; a stall lasts longer


@dataclass
class Keys:
    sendgrid: str = field(default_factory=lambda: f"SG.chaos-{secrets.token_hex(8)}")
    telegram: str = field(
        default_factory=lambda: f"7{secrets.randbelow(10**8):08d}:AAE{secrets.token_hex(8)}"
    )
    x: Account = field(default_factory=lambda: Account(*(secrets.token_hex(8) for _ in range(4))))

    @property
    def env(self) -> dict[str, str]:
        return {
            "CHAOS_SENDGRID_KEY": self.sendgrid,
            "CHAOS_TELEGRAM_TOKEN": self.telegram,
            "CHAOS_X_CONSUMER_KEY": self.x.consumer_key,
            "CHAOS_X_CONSUMER_SECRET": self.x.consumer_secret,
            "CHAOS_X_ACCESS_TOKEN": self.x.access_token,
            "CHAOS_X_ACCESS_TOKEN_SECRET": self.x.access_token_secret,
        }


@dataclass
class Fakes:
    sendgrid: FakeSendGrid
    smtp: SmtpSink
    x: FakeX
    telegram: FakeTelegram

    def mixes(self) -> dict[str, FaultMix]:
        return {c: getattr(self, c).fault_mix for c in CHANNELS}

    def requests(self) -> int:
        return sum(sum(m.drawn.values()) for m in self.mixes().values())

    def on_wire(self) -> dict[str, int]:
        return {c: m.on_wire for c, m in self.mixes().items()}

    def unknown_fate(self) -> dict[str, int]:
        """Deliveries in requests whose answer never came (ghosts, stalls, resets, and
        answers the client timed out before, on a loaded machine)."""
        return {
            c: sum(m.drawn_deliveries[k] for k in ("ghost", "stall", "reset", "unanswered"))
            for c, m in self.mixes().items()
        }

    def calm(self) -> None:
        for mix in self.mixes().values():
            mix.enabled = False


def channel_tables(fakes: Fakes) -> str:
    t = CLIENT_TIMEOUT
    chats = ", ".join(f'"{c}"' for c in CHATS)
    return f"""\
[channels.sendgrid]
api_key = {{ env = "CHAOS_SENDGRID_KEY" }}
base_url = "{fakes.sendgrid.url}"
timeout_seconds = {t}

[channels.smtp]
host = "127.0.0.1"
port = {fakes.smtp.port}
security = "plain"
timeout_seconds = {t}
connections = 4

[channels.x]
consumer_key = {{ env = "CHAOS_X_CONSUMER_KEY" }}
consumer_secret = {{ env = "CHAOS_X_CONSUMER_SECRET" }}
access_token = {{ env = "CHAOS_X_ACCESS_TOKEN" }}
access_token_secret = {{ env = "CHAOS_X_ACCESS_TOKEN_SECRET" }}
base_url = "{fakes.x.url}"
upload_base_url = "{fakes.x.url}"
timeout_seconds = {t}
daily_budget = 1000

[channels.telegram]
bot_token = {{ env = "CHAOS_TELEGRAM_TOKEN" }}
chats = [{chats}]
base_url = "{fakes.telegram.base_url}"
timeout_seconds = {t}
per_chat_interval_seconds = 0.05
"""


class Operator:
    """Runs the CLI as a newsroom operator would, and reads the ledger as its status shows."""

    def __init__(self, config: Path, keys: Keys, database_url: str) -> None:
        from briefcast.db import get_engine

        self.config = config
        self.env = keys.env
        self.engine = get_engine(database_url)
        self.cli_seconds = 0.0
        self.cli_calls = 0
        self.batched_seconds = 0.0
        self.batched_calls = 0
        self.targets_file = "--targets-file" in self.cli("ledger", "resolve", "--help").stdout
        commands = self.cli("ledger", "--help").stdout
        self.can_list = " list " in commands
        self.can_reconcile = " reconcile " in commands
        self.folder = config.parent

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "briefcast", *args, "--config", str(self.config)]

    def start_run(self) -> subprocess.Popen:
        return subprocess.Popen(
            self.command("run", "--date", SAMPLE_DAY),
            cwd=ROOT,
            env=cli_env(self.env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own group, so what it started goes with it
        )

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        start = time.monotonic()
        done = subprocess.run(
            self.command(*args),
            cwd=ROOT,
            env=cli_env(self.env),
            capture_output=True,
            text=True,
            timeout=600,
        )
        self.cli_seconds += time.monotonic() - start
        self.cli_calls += 1
        return done

    def cli_many(self, commands: list[list[str]]) -> None:
        """Many commands in one process (bench/cli_batch.py); counted as separate calls."""
        if not commands:
            return
        config = ["--config", str(self.config)]
        start = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "bench.cli_batch"],
            input=json.dumps([[*c, *config] for c in commands]),
            cwd=ROOT,
            env=cli_env(self.env),
            capture_output=True,
            text=True,
            timeout=1800,
        )
        self.batched_seconds += time.monotonic() - start
        self.batched_calls += len(commands)

    def in_doubt(self) -> dict[str, list[str]]:
        """Targets left in doubt, per channel: ``briefcast ledger list`` where it exists."""
        rows: dict[str, list[str]] = {c: [] for c in CHANNELS}
        if self.can_list:
            args = ("ledger", "list", "--state", "in-doubt", "--date", SAMPLE_DAY)
            listed = self.cli(*args, "--format", "json")
            if listed.returncode == 0:
                for row in json.loads(listed.stdout):
                    rows.setdefault(row["channel"], []).append(row["target"])
                return rows
        return self._in_doubt_from_the_database()

    def _in_doubt_from_the_database(self) -> dict[str, list[str]]:
        """Before the CLI could list them, an operator had to read the ledger with SQL."""
        from sqlalchemy import select

        from briefcast.ledger import IN_FLIGHT, deliveries

        rows: dict[str, list[str]] = {c: [] for c in CHANNELS}
        with self.engine.connect() as conn:
            for channel, target in conn.execute(
                select(deliveries.c.channel, deliveries.c.target).where(
                    deliveries.c.edition_id == SAMPLE_DAY, deliveries.c.state == IN_FLIGHT
                )
            ):
                rows.setdefault(channel, []).append(target)
        return rows

    def edition(self):
        from briefcast.ledger import Ledger
        from briefcast.models import RenderedEdition

        content = Ledger(self.engine).kept_content(SAMPLE_DAY)
        return RenderedEdition.model_validate_json(content) if content else None


def kill(process: subprocess.Popen) -> None:
    """kill -9 the run, then whatever it started (Prefect's server), by its process group."""
    process.send_signal(signal.SIGKILL)
    process.wait()
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


# -- what each provider's "dashboard" says --------------------------------------------------


def provider_view(fakes: Fakes, edition) -> dict[str, dict[str, list[str]]]:
    """Per channel: target -> the provider's ids for what it accepted (one per copy)."""
    view: dict[str, dict[str, list[str]]] = {c: {} for c in CHANNELS}
    for d in fakes.sendgrid.delivered:
        view["sendgrid"].setdefault(d.to.lower(), []).append(d.message_id)
    for r in fakes.smtp.received:
        for rcpt in r.rcpt_tos:
            view["smtp"].setdefault(rcpt.lower(), []).append("queued")
    if edition is None:
        return view
    posts = {}
    for post in fakes.x.posts:
        posts.setdefault(post.text, []).append(post.id)
    for n, post in enumerate(edition.x_posts, 1):
        view["x"][f"post-{n}"] = posts.get(post.text, [])
    parts = []
    if edition.telegram_photo is not None:
        parts.append(("photo", edition.telegram_photo.caption))
    parts += [(f"msg-{n}", m.text) for n, m in enumerate(edition.telegram_messages, 1)]
    for chat in CHATS:
        sent = Counter(m["html"] for m in fakes.telegram.received(chat))
        for label, html in parts:
            view["telegram"][f"{chat}:{label}"] = [str(m) for m in range(sent[html])]
    return view


def settle(operator: Operator, fakes: Fakes, log) -> None:
    """Follow the advice: reconcile, check the rest with the provider, then resolve them."""
    if operator.can_reconcile:
        reconciled = operator.cli("ledger", "reconcile", "--date", SAMPLE_DAY)
        for line in reconciled.stdout.strip().splitlines()[-3:]:
            log(f"  reconcile: {line[:200]}")
    doubtful = operator.in_doubt()
    view = provider_view(fakes, operator.edition())
    date = ("--date", SAMPLE_DAY)
    for channel, targets in doubtful.items():
        if not targets:
            continue
        arrived = [t for t in targets if view[channel].get(t)]
        lost = [t for t in targets if not view[channel].get(t)]
        log(f"  {channel}: {len(targets)} in doubt; provider has {len(arrived)}, not {len(lost)}")
        if channel == "x":  # each with its post id, so the thread continues from it
            for target in arrived:
                receipt = view["x"][target][0]
                operator.cli(
                    "ledger",
                    "resolve",
                    "x",
                    "sent",
                    *date,
                    "--target",
                    target,
                    "--receipt",
                    receipt,
                )
            for target in lost:
                operator.cli("ledger", "resolve", "x", "resend", *date, "--target", target)
            continue
        if operator.targets_file:  # a list per outcome, one call each
            for outcome, group in (("sent", arrived), ("resend", lost)):
                if group:
                    listing = operator.folder / f"{channel}-{outcome}.txt"
                    listing.write_text("".join(f"{t}\n" for t in group), encoding="utf-8")
                    operator.cli(
                        "ledger", "resolve", channel, outcome, *date, "--targets-file", str(listing)
                    )
            continue
        # One by one for the smaller group (in one process), then the rest in one call.
        few, rest = (arrived, "resend") if len(arrived) < len(lost) else (lost, "sent")
        outcome = "sent" if rest == "resend" else "resend"
        operator.cli_many(
            [["ledger", "resolve", channel, outcome, *date, "--target", t] for t in few]
        )
        if len(few) < len(targets):
            operator.cli("ledger", "resolve", channel, rest, *date)


def tally(fakes: Fakes, operator: Operator, subscribers: list[str]) -> dict[str, tuple[int, int]]:
    """(duplicates, missing) per channel."""
    view = provider_view(fakes, operator.edition())
    expected = {
        "sendgrid": subscribers,
        "smtp": subscribers,
        "x": list(view["x"]),
        "telegram": list(view["telegram"]),
    }
    out = {}
    for channel in CHANNELS:
        copies = view[channel]
        duplicates = sum(max(0, len(copies.get(t, [])) - 1) for t in expected[channel])
        missing = sum(1 for t in expected[channel] if not copies.get(t))
        out[channel] = (duplicates, missing)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench chaos", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--kills", type=int, default=5, help="kill -9 trials (5)")
    parser.add_argument(
        "--subscribers", type=int, default=1000, help="(1000; issue 9's scenario: 3000)"
    )
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--faults", type=float, default=0.20, help="share of failed requests")
    parser.add_argument("--ghosts", type=float, default=0.05, help="share of ghost requests")
    parser.add_argument("--rounds", type=int, default=6, help="runs to settle after the kills")
    parser.add_argument(
        "--seed", type=int, default=1620, help="(1620: every fake draws a ghost early on)"
    )
    parser.add_argument(
        "--max-kill-delay", type=float, default=4.0, help="seconds after requests flow"
    )
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    started = time.monotonic()

    def log(text: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {text}", flush=True)

    keys = Keys()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="briefcast-chaos-")))
        telegram = FakeTelegram(keys.telegram, dict.fromkeys(CHATS, "channel"))
        fakes = Fakes(
            stack.enter_context(FakeSendGrid(keys.sendgrid)),
            stack.enter_context(SmtpSink()),
            stack.enter_context(FakeX(keys.x)),
            stack.enter_context(telegram),
        )
        for n, channel in enumerate(CHANNELS):
            getattr(fakes, channel).fault_mix = FaultMix(
                args.faults,
                args.ghosts,
                seed=args.seed * 10 + n,
                stall_seconds=CLIENT_TIMEOUT + 1.5,
                rate_limit_seconds=1.0,
            )
        url = stack.enter_context(database(args.db, tmp))
        config = write_config(tmp, url, channel_tables(fakes), backoff_seconds=0.05)
        subscribers, _ = import_subscribers(tmp, config, args.subscribers)
        operator = Operator(config, keys, url)
        log(
            f"{args.subscribers} subscribers on {args.db}; faults {args.faults:.0%}, "
            f"ghosts {args.ghosts:.0%}; {args.kills} kills"
        )

        kills = []
        for trial in range(1, args.kills + 1):
            before_doubt = {c: len(t) for c, t in operator.in_doubt().items()}
            before_unknown = fakes.unknown_fate()
            before_requests = fakes.requests()
            process = operator.start_run()
            while fakes.requests() == before_requests and process.poll() is None:
                time.sleep(0.05)
            time.sleep(rng.uniform(0, args.max_kill_delay))
            if process.poll() is not None:
                log(f"kill {trial}: the run ended before the kill (exit {process.returncode})")
                for line in process.stdout.read().splitlines()[-12:]:
                    log(f"  | {line[:160]}")
                continue
            # Frozen first, so nothing moves on the client's side between the count and the
            # kill; a request stays on the wire at a fake until the client has its answer.
            process.send_signal(signal.SIGSTOP)
            wire = fakes.on_wire()
            kill(process)
            time.sleep(CLIENT_TIMEOUT + 2)  # let the fakes finish what the dead client sent
            after_doubt = {c: len(t) for c, t in operator.in_doubt().items()}
            unknown = {c: fakes.unknown_fate()[c] - before_unknown[c] for c in CHANNELS}
            new = {c: after_doubt.get(c, 0) - before_doubt.get(c, 0) for c in CHANNELS}
            kills.append((trial, new, wire, unknown))
            log(f"kill {trial}: new in doubt {new}; on the wire {wire}")

        log("following the CLI's advice")
        clean = False
        for round_ in range(1, args.rounds + 2):
            calm = round_ > args.rounds
            if calm:
                log("faults off for a last run (the scenario did not settle under faults)")
                fakes.calm()
            settle(operator, fakes, log)
            process = operator.start_run()
            output, _ = process.communicate(timeout=1800)
            log(f"run {round_}: exit {process.returncode}")
            if process.returncode == 0:
                clean = True
                break
            tail = [line for line in output.splitlines() if "in doubt" in line.lower()][-2:]
            for line in tail:
                log(f"  {line[:300]}")
        if not clean:
            settle(operator, fakes, log)
        result = tally(fakes, operator, subscribers)

        print("\nAt each kill -9: deliveries newly in doubt vs on the wire (+ unanswered requests'")
        print("deliveries during that run: ghosts, stalls, resets, answers after the client's")
        print("timeout; in doubt by design)")
        header = "kill | " + " | ".join(f"{c:>22}" for c in CHANNELS)
        print(header)
        print("-" * len(header))
        too_wide = 0
        for trial, new, wire, unknown in kills:
            cells = []
            for c in CHANNELS:
                bound = wire[c] + unknown[c]
                flag = "" if new[c] <= bound else " !"
                too_wide += bool(flag)
                cells.append(f"{new[c]:>5} vs {wire[c]:>4} + {unknown[c]:>4}{flag}")
            print(f"{trial:>4} | " + " | ".join(f"{cell:>22}" for cell in cells))
        print("\nRequests per fate at each fake (ok, ghost, 429, 500, 503, stall, reset)")
        for channel, mix in fakes.mixes().items():
            fates = ", ".join(f"{k} {v}" for k, v in sorted(mix.drawn.items()))
            unexercised = [k for k in ("ghost", "stall", "reset") if not mix.drawn[k]]
            note = f"  (never drawn: {', '.join(unexercised)}; try another --seed)" * bool(
                unexercised
            )
            print(f"{channel:>9}: {fates}{note}")
        print("\nAfter following the advice (provider records vs subscribers and the edition)")
        print(f"{'channel':>9} | {'duplicates':>10} | {'missing':>7}")
        for channel, (dup, miss) in result.items():
            print(f"{channel:>9} | {dup:>10} | {miss:>7}")
        how = "under faults" if clean and not calm else "with faults off" if clean else "NOT"
        print(
            f"\n{len(kills)} kills; settled {how}"
            f"; {operator.cli_calls} resolve calls took {operator.cli_seconds:.0f} s, "
            f"{operator.batched_calls} more one-target resolves {operator.batched_seconds:.0f} s "
            "in one process; "
            f"{too_wide} kill cells wider than the wire; total {time.monotonic() - started:.0f} s"
        )
        ok = clean and not too_wide and all(d == m == 0 for d, m in result.values())
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
