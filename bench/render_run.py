"""Render a 50-article edition for every channel and time the render alone.

Imports and settings are loaded before the clock starts; the first render (which
also compiles the templates) and the best of the following ones are reported.
``--profile`` prints where the first render spends its time.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from bench.workspace import ROOT

DAY = date(2026, 11, 20)
TOPICS = ["harbour", "ferries", "housing", "energy", "schools", "markets", "courts", "weather"]


def articles(count: int = 50):
    """``count`` full stories (hero, sections, a view, sources, a teaser), written here."""
    from briefcast.models import Article, EditorialView, Image, Section, SourceLink, Teaser

    out = []
    for n in range(count):
        topic = TOPICS[n % len(TOPICS)]
        base = f"https://harbourledger.example/2026/11/20/story-{n}"
        out.append(
            Article(
                key=base,
                url=base,
                title=f"Story {n}: what changed for the {topic} desk this week",
                dek=f"A short dek for story {n}, saying why the {topic} news matters today.",
                summary_html=f"<p>Summary of story {n} about {topic}, with <em>emphasis</em>.</p>",
                author="Desk Reporter",
                source="Newsroom",
                published=datetime(2026, 11, 20, 8, tzinfo=UTC) + timedelta(minutes=n),
                hero=Image(url=f"{base}/hero.jpg", alt=f"Photo for story {n}", caption="Caption")
                if n % 3 == 0
                else None,
                sections=[
                    Section(
                        heading=f"Part {k}",
                        html="".join(
                            f"<p>Paragraph {p} of part {k} of story {n}: the council met, the "
                            f"{topic} figures came in, and residents had their say.</p>"
                            for p in range(3)
                        ),
                    )
                    for k in range(2)
                ],
                view=EditorialView(html=f"<p>Our view on the {topic} story: watch closely.</p>"),
                source_links=[
                    SourceLink(title=f"Source {k}", url=f"{base}/source-{k}", note="Primary data")
                    for k in range(2)
                ],
                keep_reading=Teaser(title="Earlier coverage", url=f"{base}/earlier"),
                tags=[topic],
                priority=1 if n == 0 else 0,
            )
        )
    return out


@dataclass
class RenderResult:
    articles: int
    first: float
    best: float
    email_bytes: int
    profile: str = ""


def run(count: int = 50, repeats: int = 3, profile: bool = False) -> RenderResult:
    from briefcast.config import load_settings
    from briefcast.models import Gathered
    from briefcast.render import render_edition

    settings = load_settings(ROOT / "config" / "briefcast.toml")
    gathered = Gathered(edition_date=DAY, articles=articles(count))
    profiler = cProfile.Profile() if profile else None
    start = time.perf_counter()
    if profiler:
        profiler.enable()
    edition = render_edition(settings, gathered)
    if profiler:
        profiler.disable()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        render_edition(settings, gathered)
        times.append(time.perf_counter() - start)
    report = ""
    if profiler:
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(25)
        report = stream.getvalue()
    return RenderResult(count, first, min(times), len(edition.email.html.encode()), report)
