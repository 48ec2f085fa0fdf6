"""Time rendering every variant (email HTML and text, X, Telegram) of a 50-story edition.

.venv/bin/python scripts/bench_render.py
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from briefcast.config import Settings
from briefcast.models import Article, EditorialView, Gathered, Image, Section
from briefcast.render import render_edition

PARAGRAPH = "<p>" + "The harbour board met again on Tuesday to weigh the bids. " * 6 + "</p>"


def edition(count: int) -> Gathered:
    articles = [
        Article(
            key=f"story-{n}",
            url=f"https://ledger.example.org/2026/05/01/story-{n}",
            title=f"Harbour board weighs silo bids, part {n}",
            dek="" if n % 2 else f"Three offers, one listed building and a deadline ({n}).",
            summary_html=PARAGRAPH,
            source="Newsroom",
            tags=["Ports"],
            hero=Image(url=f"https://img.example.org/{n}.jpg", alt="A silo")
            if n % 3 == 0
            else None,
            sections=[Section(heading=f"Part {i}", html=PARAGRAPH * 3) for i in range(4)]
            if n == 0
            else [],
            view=EditorialView(html=PARAGRAPH) if n == 0 else None,
            published=datetime(2026, 5, 1, 7, tzinfo=UTC),
        )
        for n in range(count)
    ]
    return Gathered(edition_date=date(2026, 5, 1), articles=articles)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings.model_validate(
            {
                "publication": {
                    "name": "The Harbour Ledger",
                    "site_url": "https://ledger.example.org",
                    "postal_address": "12 Harbour Road",
                    "sender_email": "brief@ledger.example.org",
                },
                "edition": {"max_articles": 50},
                "base_dir": Path(folder),
            }
        )
        for count in (12, 25, 50):
            gathered = edition(count)
            render_edition(settings, gathered)  # warm the template cache
            runs = []
            for _ in range(5):
                started = time.perf_counter()
                rendered = render_edition(settings, gathered)
                runs.append(time.perf_counter() - started)
            print(
                f"{count:3d} stories: best {min(runs) * 1000:6.1f} ms, "
                f"worst {max(runs) * 1000:6.1f} ms; email HTML "
                f"{len(rendered.email.html.encode()):,} bytes, "
                f"{len(rendered.telegram_messages)} Telegram messages, "
                f"{len(rendered.x_posts)} X posts"
            )


if __name__ == "__main__":
    main()
