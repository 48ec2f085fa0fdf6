"""How long the edition report takes over a filled events table (SQLite, or a URL argument).

    .venv/bin/python bench/edition_report.py [EDITIONS] [READERS] [DATABASE_URL]

Seeds EDITIONS editions sent by SendGrid to READERS readers each, with a delivered,
an open and (for one in five) a click event per reader, through the same insert path
the webhook uses; then times ``briefcast.report.edition_report`` for the latest edition
(its numbers and the trend over all of them) and prints the numbers.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import date, timedelta

from briefcast import events
from briefcast.config import Settings
from briefcast.db import get_engine
from briefcast.ledger import Ledger
from briefcast.report import edition_report


def main() -> None:
    editions = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    readers = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    folder = tempfile.mkdtemp(prefix="briefcast-bench-")
    url = sys.argv[3] if len(sys.argv) > 3 else f"sqlite:///{folder}/bench.db"
    engine = get_engine(url)
    ledger = Ledger(engine)
    settings = Settings.model_validate(
        {
            "publication": {
                "name": "Bench",
                "site_url": "https://bench.example",
                "postal_address": "1 Main St",
                "sender_email": "b@bench.example",
            },
            "channels": {"sendgrid": {}},
            "base_dir": folder,
        }
    )
    addresses = [f"reader{n}@bench.example" for n in range(readers)]
    started = time.perf_counter()
    total_events = 0
    for day in range(editions):
        edition_id = (date(2026, 1, 1) + timedelta(days=day)).isoformat()
        ledger.ensure(edition_id, "sendgrid", addresses)
        rows = ledger.rows(edition_id, "sendgrid")
        ledger.claim(r.id for r in rows.values())
        for row in rows.values():
            ledger.mark_sent(row.id, "msg")
        batch = []
        for n, address in enumerate(addresses):
            common = {"email": address, "timestamp": 1_767_225_600 + day, "edition_id": edition_id}
            batch.append({**common, "event": "delivered", "sg_event_id": f"{edition_id}-d{n}"})
            batch.append({**common, "event": "open", "sg_event_id": f"{edition_id}-o{n}"})
            if n % 5 == 0:
                url_ = f"https://bench.example/{n % 7}"
                batch.append(
                    {**common, "event": "click", "url": url_, "sg_event_id": f"{edition_id}-c{n}"}
                )
        total_events += events.record_sendgrid(engine, batch)
    seeded = time.perf_counter() - started
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        report = edition_report(engine, settings, edition_id)
        timings.append(time.perf_counter() - started)
    [stats] = report.channels
    print(f"database: {url.split(':')[0]}; {editions} editions x {readers} readers")
    print(f"seeded {editions * readers} deliveries and {total_events} events in {seeded:.1f} s")
    print(
        f"edition_report (latest edition + {len(report.trend)}-edition trend): "
        f"best {min(timings) * 1000:.0f} ms, worst {max(timings) * 1000:.0f} ms"
    )
    print(
        f"check: sent {stats.sent}, delivered {stats.delivered}, opened {stats.opened}, "
        f"clicked {stats.clicked}"
    )


if __name__ == "__main__":
    main()
