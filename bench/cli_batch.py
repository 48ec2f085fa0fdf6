"""Run many ``briefcast`` commands in one process: ``python -m bench.cli_batch < commands.json``.

The operator's per-delivery ``briefcast ledger resolve ... --target T`` calls are
the same commands the CLI prints; run one per process they cost a second of
start-up each, which would make the chaos scenario take an hour. Each command's
exit status is printed, one per line.
"""

from __future__ import annotations

import json
import sys

from briefcast.cli import app


def main() -> int:
    failed = 0
    for argv in json.load(sys.stdin):
        try:
            status = app(argv, standalone_mode=False) or 0  # typer.Exit(n) comes back as n
        except SystemExit as exc:
            status = exc.code or 0
        except Exception as exc:  # a usage error: report it like the CLI does
            print(f"error: {exc}", file=sys.stderr)
            status = 2
        failed += status != 0
        print(status)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
