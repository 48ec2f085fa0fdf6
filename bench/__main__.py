"""``python -m bench``: how briefcast scales, measured with the real CLI on loopback stand-ins.

    python -m bench --subscribers 100000 --db sqlite --latency-ms 50
    python -m bench --subscribers 1000000 --only sendgrid --warm-prefect
    python -m bench --only smtp --smtp-messages 2000
    python -m bench --only render --profile
    python -m bench chaos --kills 5        # issue 9's fault-and-kill scenario (bench/chaos.py)

Each part prints a table; the exit status is 1 when any subscriber was missed or
served twice, or the CLI failed.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import tempfile
from pathlib import Path

from bench import render_run, sendgrid_run, smtp_run, workspace

MIB = 1024 * 1024


def _machine() -> str:
    model = ""
    try:
        with open("/proc/cpuinfo") as handle:
            model = next(line.split(":", 1)[1].strip() for line in handle if "model name" in line)
    except (OSError, StopIteration):
        pass
    python = platform.python_version()
    return f"{os.cpu_count()} cores {model}, Python {python}, {platform.system()}"


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = [" | ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def sendgrid_part(args) -> bool:
    with tempfile.TemporaryDirectory(prefix="briefcast-bench-prefect-") as tmp:
        home = None
        if args.warm_prefect:
            print("sendgrid: warming up a Prefect home (one dry run) ...")
            home = workspace.warm_prefect_home(Path(tmp))
        return _sendgrid_runs(args, home)


def _sendgrid_runs(args, prefect_home: Path | None) -> bool:
    ok = True
    rows = []
    for db in args.db:
        for n in args.subscribers:
            print(f"sendgrid: {n} subscribers on {db}, {args.latency_ms} ms per request ...")
            r = sendgrid_run.run(n, db, args.latency_ms / 1000, prefect_home)
            first = f"{r.first_request:.1f}" if r.first_request is not None else "-"
            check = "ok" if r.ok else f"missing {r.missing}, duplicates {r.duplicates}"
            if r.refused:
                check += f", {len(r.refused)} refused: {r.refused[0]}"
            if r.returncode:
                check += f", exit {r.returncode}"
            rows.append(
                [
                    f"{n:,}",
                    db,
                    f"{r.wall:.1f}",
                    first,
                    str(r.requests),
                    str(r.max_in_flight),
                    f"{r.floor:.2f}",
                    f"{r.wall / r.floor:.1f}" if r.floor else "-",
                    f"{r.peak_rss / MIB:.0f} / {r.peak_rss_main / MIB:.0f}",
                    f"{r.import_wall:.1f} / {r.import_rss / MIB:.0f}",
                    check,
                ]
            )
            print("  " + " | ".join(rows[-1]), flush=True)  # a long series stopped keeps these
            if not r.ok:
                ok = False
                print(r.output)
    headers = [
        "N",
        "db",
        "wall s",
        "1st req s",
        "requests",
        "max in flight",
        "floor s",
        "wall/floor",
        "peak RSS MiB tree / CLI",
        "import s / MiB",
        "each once",
    ]
    prefect = "a warm Prefect home" if prefect_home else "a fresh Prefect home each run"
    print(f"\nSendGrid ({args.latency_ms} ms per request, 1000 recipients per request, {prefect})")
    print(table(headers, rows))
    return ok


def smtp_part(args) -> bool:
    ok = True
    rows = []
    for db, claims in itertools.product(args.db, args.smtp_claims):
        print(f"smtp: {args.smtp_messages} messages on {db}, claims {claims} ...")
        r = smtp_run.run(args.smtp_messages, db, args.smtp_connections, claims)
        check = "ok" if r.ok else f"missing {r.missing}, duplicates {r.duplicates}"
        if r.returncode:
            check += f", exit {r.returncode}"
            print(r.output)
        ok = ok and r.ok
        rows.append(
            [
                f"{r.messages:,}",
                db,
                claims,
                str(r.connections),
                f"{r.message_bytes / 1024:.0f}",
                f"{r.wall:.1f}",
                f"{r.channel_rate:.0f}",
                f"{r.raw_rate:.0f}",
                f"{r.ratio:.0%}",
                check,
            ]
        )
    headers = [
        "messages",
        "db",
        "claims",
        "connections",
        "KiB/msg",
        "CLI wall s",
        "briefcast msg/s",
        "raw smtplib msg/s",
        "ratio",
        "each once",
    ]
    print("\nSMTP (loopback aiosmtpd sink; rates from first to last message received)")
    print(table(headers, rows))
    return ok


def render_part(args) -> bool:
    r = render_run.run(args.render_articles, profile=args.profile)
    size = f"email HTML {r.email_bytes / 1024:.0f} KiB"
    print(f"\nRender ({r.articles} articles, every channel; {size})")
    print(table(["first render s", "best of 3 s"], [[f"{r.first:.3f}", f"{r.best:.3f}"]]))
    if r.profile:
        print(r.profile)
    return True


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["chaos"]:
        from bench import chaos

        return chaos.main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--subscribers", type=int, nargs="+", default=[10_000], help="SendGrid sizes (10000)"
    )
    parser.add_argument(
        "--db", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite"], help="(sqlite)"
    )
    parser.add_argument("--latency-ms", type=float, default=50, help="SendGrid latency (50)")
    parser.add_argument(
        "--warm-prefect",
        action="store_true",
        help="SendGrid runs share a Prefect home warmed up by one dry run, as a newsroom's "
        "daily runs do (default: a fresh one per run, created cold)",
    )
    parser.add_argument("--smtp-messages", type=int, default=2000, help="(2000)")
    parser.add_argument("--smtp-connections", type=int, default=2, help="(2, the default)")
    parser.add_argument(
        "--smtp-claims",
        nargs="+",
        choices=["each", "batch"],
        default=["each"],
        help="[channels.smtp] claims: each (the default) and/or batch",
    )
    parser.add_argument("--render-articles", type=int, default=50, help="(50)")
    parser.add_argument("--profile", action="store_true", help="profile the render")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=["sendgrid", "smtp", "render"],
        default=["sendgrid", "smtp", "render"],
    )
    args = parser.parse_args(argv)
    print(f"Machine: {_machine()}")
    ok = True
    if "render" in args.only:
        ok = render_part(args) and ok
    if "smtp" in args.only:
        ok = smtp_part(args) and ok
    if "sendgrid" in args.only:
        ok = sendgrid_part(args) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
