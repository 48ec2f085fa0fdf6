"""A fresh data folder, database and config for one benchmark run, and the CLI to drive it.

The database is a SQLite file in the folder, or a fresh schema in the PostgreSQL
database at ``BRIEFCAST_BENCH_PG`` (default: 127.0.0.1:5432, db ``test``),
dropped afterwards. The CLI runs as a subprocess, exactly as an operator runs it;
the resident memory of its whole process tree is sampled from /proc.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DAY = "2026-11-20"
PG_URL = os.environ.get("BRIEFCAST_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
PAGE = os.sysconf("SC_PAGE_SIZE")


def address(n: int) -> str:
    return f"reader-{n:07d}@readers.example"


def write_subscribers(path: Path, count: int) -> list[str]:
    """``count`` subscribers as a CSV (every seventh with a non-ASCII name); their addresses."""
    addresses = []
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "name"])
        for n in range(count):
            name = f"Leitora Nº{n} Conceição" if n % 7 == 0 else f"Reader {n}"
            addresses.append(address(n))
            writer.writerow([addresses[-1], name])
    return addresses


@contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    """A database URL for a fresh, empty database of ``kind`` (sqlite or postgresql)."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'briefcast.db'}"
        return
    import psycopg

    admin = psycopg.connect(PG_URL, autocommit=True, connect_timeout=5)
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        sep = "&" if "?" in PG_URL else "?"
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()


def write_config(
    folder: Path, database_url: str, channels: str, *, backoff_seconds: float = 0.2
) -> Path:
    """The sample publication and content, its data in ``folder``, the given channel tables."""
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

[database]
url = "{database_url}"

[dispatch]
backoff_seconds = {backoff_seconds}
max_wait_seconds = 30

{channels}
""",
        encoding="utf-8",
    )
    return config


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    own = ("PREFECT_", "BRIEFCAST_", "BENCH_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(own)}
    env.update(extra or {}, COLUMNS="200")
    return env


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str
    wall: float
    peak_rss: int  # bytes, the whole process tree at its largest sample
    started: float  # time.monotonic() when the process was started
    peak_rss_main: int  # bytes, the CLI process alone (without Prefect's server process)


def tree_rss(pid: int, children: bool = True) -> int:
    """Resident bytes of ``pid`` and all its descendants (0 once it is gone)."""
    total = 0
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/statm") as handle:
                total += int(handle.read().split()[1]) * PAGE
            if not children:
                break
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    stack.extend(int(child) for child in handle.read().split())
        except (OSError, ValueError):
            continue
    return total


def briefcast(
    *args: str, config: Path, env: dict[str, str] | None = None, timeout: float = 3600
) -> Finished:
    """Run ``briefcast ARGS --config CONFIG``; its wall time and peak tree RSS."""
    command = [sys.executable, "-m", "briefcast", *args, "--config", str(config)]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.monotonic()
        process = subprocess.Popen(command, cwd=ROOT, env=cli_env(env), stdout=out, stderr=err)
        peak = peak_main = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak, peak_main
            while not done.is_set():
                peak = max(peak, tree_rss(process.pid))
                peak_main = max(peak_main, tree_rss(process.pid, children=False))
                done.wait(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            returncode = process.wait(timeout=timeout)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            done.set()
            sampler.join()
        wall = time.monotonic() - start
        out.seek(0)
        err.seek(0)
        return Finished(returncode, out.read(), err.read(), wall, peak, start, peak_main)


def import_subscribers(folder: Path, config: Path, count: int) -> tuple[list[str], Finished]:
    csv_path = folder / "subscribers.csv"
    addresses = write_subscribers(csv_path, count)
    result = briefcast("subscribers", "import", str(csv_path), config=config)
    if result.returncode != 0:
        raise RuntimeError(f"subscribers import failed:\n{result.stdout}\n{result.stderr}")
    return addresses, result


def warm_prefect_home(folder: Path) -> Path:
    """A Prefect home whose database exists and is migrated, as a newsroom's is every day.

    One dry run (no subscribers, nothing sent) creates it; runs given it as PREFECT_HOME
    then start Prefect's embedded server on a warm database instead of a fresh one.
    """
    home = folder / "prefect"
    workspace = folder / "warm-up"
    workspace.mkdir(parents=True, exist_ok=True)
    config = write_config(workspace, f"sqlite:///{workspace / 'briefcast.db'}", "")
    result = briefcast(
        "run", "--date", SAMPLE_DAY, "--dry-run", config=config, env={"PREFECT_HOME": str(home)}
    )
    if result.returncode != 0:
        raise RuntimeError(f"warming Prefect up failed:\n{result.stdout}\n{result.stderr}")
    return home
