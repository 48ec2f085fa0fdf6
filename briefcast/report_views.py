"""The edition report as people look at it: a terminal table, Markdown, and an SVG trend chart.

The chart is plain inline SVG (no plotting library): subscribers as bars, open
and click rates as lines, unsubscribes as bars, one panel each, over the last
editions. Every label is escaped; nothing from an event reaches it unescaped.
"""

from __future__ import annotations

from html import escape

from briefcast.report import ChannelStats, EditionReport, TrendPoint

BARS = "▁▂▃▄▅▆▇█"
PANEL_W, PANEL_H, PAD_L, PAD_B, GAP = 640, 120, 48, 22, 28


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def number(value: int | None) -> str:
    return "—" if value is None else str(value)


def channel_cells(stats: ChannelStats) -> list[str]:
    opened = number(stats.opened)
    clicked = number(stats.clicked)
    if stats.opened is not None:
        opened += f" ({percent(stats.rate(stats.opened))})"
        clicked += f" ({percent(stats.rate(stats.clicked))})"
    return [
        stats.channel,
        str(stats.sent),
        number(stats.delivered),
        opened,
        clicked,
        str(stats.bounced + stats.dropped),
        str(stats.complained),
        str(stats.unsubscribed),
    ]


HEADERS = [
    "channel",
    "sent",
    "delivered",
    "opened",
    "clicked",
    "bounced",
    "complained",
    "unsubscribed",
]


def sparkline(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return ""
    top = max(known) or 1
    return "".join(" " if v is None else BARS[round(v / top * (len(BARS) - 1))] for v in values)


def trend_lines(points: list[TrendPoint]) -> list[tuple[str, str, str]]:
    """(label, sparkline, latest value) per trend series."""
    if not points:
        return []
    last = points[-1]
    return [
        ("subscribers", sparkline([p.subscribers for p in points]), str(last.subscribers)),
        ("open rate", sparkline([p.open_rate for p in points]), percent(last.open_rate)),
        ("click rate", sparkline([p.click_rate for p in points]), percent(last.click_rate)),
        ("unsubscribes", sparkline([p.unsubscribes for p in points]), str(last.unsubscribes)),
    ]


def markdown(report: EditionReport) -> str:
    """The report for a Prefect artifact: the table, links, posts and a bar-chart trend."""
    lines = [f"# Edition {report.edition_id}", ""]
    lines += ["| " + " | ".join(HEADERS) + " |", "|" + " --- |" * len(HEADERS)]
    lines += ["| " + " | ".join(channel_cells(s)) + " |" for s in report.channels]
    for stats in report.channels:
        if stats.top_links:
            lines += ["", f"**Top links ({stats.channel})**", ""]
            lines += [f"- {link.label}: <{link.url}>" for link in stats.top_links]
        if stats.posts:
            lines += ["", f"**Posts ({stats.channel})**", ""]
            lines += [f"- <{post}>" for post in stats.posts]
    if report.trend:
        lines += ["", f"## The last {len(report.trend)} editions", "", "```"]
        width = max(len(p.edition_id) for p in report.trend)
        top = max(p.subscribers for p in report.trend) or 1
        for p in report.trend:
            bar = "█" * round(p.subscribers / top * 30)
            lines.append(
                f"{p.edition_id:<{width}} {bar:<30} {p.subscribers:>6}  open "
                f"{percent(p.open_rate):>6}  click {percent(p.click_rate):>6}  "
                f"unsub {p.unsubscribes}"
            )
        lines.append("```")
    return "\n".join(lines) + "\n"


# -- the SVG chart -------------------------------------------------------------
def _panel(
    top: float, title: str, points: list[TrendPoint], series: list[tuple[str, list, str, str]]
) -> list[str]:
    """One panel: ``series`` is (name, values, "bar" or "line", colour)."""
    count = len(points)
    inner_w = PANEL_W - PAD_L - 8
    inner_h = PANEL_H - PAD_B - 18
    base = top + 18 + inner_h
    known = [v for _, values, _, _ in series for v in values if v is not None]
    peak = max(known, default=0) or 1
    step = inner_w / max(count, 1)
    rate = series[0][0].endswith("rate")
    label = f"{peak:.0%}" if rate else f"{peak:g}"
    out = [
        f'<g class="panel" data-title="{escape(title)}">',
        f'<text x="{PAD_L}" y="{top + 12}" class="title">{escape(title)}</text>',
        f'<line x1="{PAD_L}" y1="{base}" x2="{PANEL_W - 8}" y2="{base}" class="axis"/>',
        f'<text x="{PAD_L - 6}" y="{base - inner_h + 4}" class="tick" text-anchor="end">'
        f"{escape(label)}</text>",
    ]
    for name, values, kind, colour in series:
        if kind == "bar":
            for i, value in enumerate(values):
                height = 0 if value is None else value / peak * inner_h
                x = PAD_L + i * step + step * 0.15
                out.append(
                    f'<rect class="bar" x="{x:.1f}" y="{base - height:.1f}" '
                    f'width="{step * 0.7:.1f}" height="{height:.1f}" fill="{colour}">'
                    f"<title>{escape(points[i].edition_id)}: {escape(str(value))}</title></rect>"
                )
        else:
            coords = [
                f"{PAD_L + i * step + step / 2:.1f},{base - value / peak * inner_h:.1f}"
                for i, value in enumerate(values)
                if value is not None
            ]
            if coords:
                out.append(
                    f'<polyline class="line" data-series="{escape(name)}" fill="none" '
                    f'stroke="{colour}" stroke-width="2" points="{" ".join(coords)}"/>'
                )
            for coord in coords:  # a lone edition still shows as a dot
                x, y = coord.split(",")
                out.append(f'<circle class="dot" cx="{x}" cy="{y}" r="3" fill="{colour}"/>')
    legend_x = PANEL_W - 8
    for name, _, _, colour in reversed(series):
        out.append(
            f'<text x="{legend_x}" y="{top + 12}" class="legend" text-anchor="end" '
            f'fill="{colour}">{escape(name)}</text>'
        )
        legend_x -= 8 * len(name) + 16
    out.append("</g>")
    return out


def trend_svg(points: list[TrendPoint]) -> str:
    """Subscribers, open and click rates, and unsubscribes over ``points``, as inline SVG."""
    height = 3 * PANEL_H + 2 * GAP
    parts = [
        f'<svg class="trend" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {PANEL_W} {height}" width="{PANEL_W}" height="{height}" '
        f'aria-label="Trend over the last {len(points)} editions">',
        "<style>.title{font:600 13px sans-serif}.tick,.legend{font:11px sans-serif}"
        ".axis{stroke:#999}</style>",
    ]
    if points:
        first, last = escape(points[0].edition_id), escape(points[-1].edition_id)
        parts.append(
            f'<text x="{PAD_L}" y="{height - 4}" class="tick">{first}</text>'
            f'<text x="{PANEL_W - 8}" y="{height - 4}" class="tick" text-anchor="end">'
            f"{last}</text>"
        )
    parts += _panel(
        0,
        "Subscribers emailed",
        points,
        [("subscribers", [p.subscribers for p in points], "bar", "#4a6fa5")],
    )
    parts += _panel(
        PANEL_H + GAP,
        "Open and click rates",
        points,
        [
            ("open rate", [p.open_rate for p in points], "line", "#2e8b57"),
            ("click rate", [p.click_rate for p in points], "line", "#d2691e"),
        ],
    )
    parts += _panel(
        2 * (PANEL_H + GAP),
        "Unsubscribes",
        points,
        [("unsubscribes", [p.unsubscribes for p in points], "bar", "#b22222")],
    )
    parts.append("</svg>")
    return "\n".join(parts)
