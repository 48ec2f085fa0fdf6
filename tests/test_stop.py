"""SIGTERM during `briefcast run`: what is on the wire finishes and is recorded, nothing is
left in doubt, nothing new is claimed, and the next run sends the rest exactly once."""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from fakes.sendgrid_server import FakeSendGrid

ROOT = Path(__file__).resolve().parent.parent
KEY = "SG.stop-test-key-77e1"
READERS = 3000


def write_config(folder: Path, fake: FakeSendGrid) -> Path:
    config = folder / "briefcast.toml"
    config.write_text(
        f"""\
data_dir = "{folder / "data"}"

[publication]
name = "The Quay Courier"
site_url = "https://quaycourier.example"
timezone = "UTC"
postal_address = "The Quay Courier, 4 Harbour Row, Porto"
sender_email = "brief@quaycourier.example"
web_base_url = "https://brief.quaycourier.example"

[[sources]]
name = "Newsroom"
type = "markdown"
path = "{ROOT / "sample" / "articles"}"

[schedule]
require_approval = false

[channels.sendgrid]
api_key = {{ env = "STOP_TEST_SENDGRID_KEY" }}
base_url = "{fake.url}"
timeout_seconds = 30
""",
        encoding="utf-8",
    )
    with (folder / "readers.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "name"])
        writer.writerows([f"quay-{n:04d}@readers.example", f"Reader {n}"] for n in range(READERS))
    return config


def env() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "BRIEFCAST_"))}
    return {**clean, "STOP_TEST_SENDGRID_KEY": KEY, "COLUMNS": "200"}


def briefcast(*args: str, config: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "briefcast", *args, "--config", str(config)],
        cwd=ROOT,
        env=env(),
        capture_output=True,
        text=True,
        timeout=240,
    )


def states(data: Path) -> dict[str, int]:
    with sqlite3.connect(data / "briefcast.db") as db:
        return dict(db.execute("SELECT state, count(*) FROM deliveries GROUP BY state"))


def test_sigterm_finishes_the_requests_on_the_wire_and_leaves_nothing_in_doubt(tmp_path):
    with FakeSendGrid(KEY, latency=2.0) as fake:
        config = write_config(tmp_path, fake)
        imported = briefcast("subscribers", "import", str(tmp_path / "readers.csv"), config=config)
        assert imported.returncode == 0, imported.stderr
        run = subprocess.Popen(
            [sys.executable, "-m", "briefcast", "run", "--date", "2026-11-20"]
            + ["--config", str(config)],
            cwd=ROOT,
            env=env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 180
        while not fake.in_flight and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.02)
        assert fake.in_flight, "no request reached SendGrid"
        run.send_signal(signal.SIGTERM)  # the first request is on the wire
        output = run.communicate(timeout=120)[0]

        assert run.returncode == 1, output  # a stopped run does not pass for a finished one
        assert "SIGTERM: no new deliveries are claimed" in output
        assert "stopped (SIGTERM or cancel)" in " ".join(output.split())
        first = len(fake.delivered)
        assert 0 < first < READERS, output
        assert states(tmp_path / "data") == {"sent": first}  # recorded; none in doubt
        assert len(fake.calls) == first // 1000  # nothing claimed or sent after the signal

        rerun = briefcast("run", "--date", "2026-11-20", config=config)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        per_address = Counter(m.to for m in fake.delivered)
        assert len(per_address) == READERS and set(per_address.values()) == {1}
        assert states(tmp_path / "data") == {"sent": READERS}
