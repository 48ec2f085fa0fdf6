"""How long `briefcast ledger list` and `ledger resolve --targets-file` take for N rows in doubt.

    .venv/bin/python bench/bulk_resolve.py [N] [DATABASE_URL]

Makes a throwaway config and ledger (SQLite in a temp folder unless a URL is given: use a
scratch PostgreSQL schema, the rows are left there), leaves N rows in doubt as a killed run
would, then times the real commands in a subprocess, as an operator runs them.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from briefcast.db import get_engine  # noqa: E402
from briefcast.ledger import Ledger  # noqa: E402

EDITION = "2026-11-20"


def timed(*args: str, stdin: str | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "briefcast", "ledger", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    )
    return time.perf_counter() - started, result.stdout


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory() as folder:
        url = sys.argv[2] if len(sys.argv) > 2 else f"sqlite:///{folder}/briefcast.db"
        config = Path(folder) / "briefcast.toml"
        config.write_text(
            f'data_dir = "data"\n[publication]\nname = "Bench"\nsite_url = "https://b.example"\n'
            f'postal_address = "1 St"\nsender_email = "b@b.example"\n[database]\nurl = "{url}"\n'
        )
        targets = [f"reader{i:06d}@example.org" for i in range(count)]
        ledger = Ledger(get_engine(url), run_id="killed-run")
        ledger.ensure(EDITION, "sendgrid", targets)
        ledger.claim(r.id for r in ledger.rows(EDITION, "sendgrid").values())
        options = ("--date", EDITION, "--config", str(config))
        startup, _ = timed("status", *options)
        listing, csv = timed("list", "--state", "in-doubt", "--format", "csv", *options)
        settling, said = timed(
            "resolve", "sendgrid", "sent", "--targets-file", "-", *options, stdin=csv
        )
        print(f"{count} rows in doubt on {url.split(':')[0]}")
        print(f"  command start-up (ledger status): {startup:.2f} s")
        lines = len(csv.splitlines())
        print(f"  ledger list --format csv:         {listing:.2f} s ({lines} lines)")
        print(f"  ledger resolve --targets-file -:  {settling:.2f} s")
        print(f"  said: {said.strip()[:90]}…")


if __name__ == "__main__":
    main()
