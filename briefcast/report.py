"""The edition report: how each brief did, per channel, and the trend over recent editions.

Numbers come from the ledger (what was sent, the social posts' receipts) and the
events table (what providers told us since). Opens and clicks are unique
recipients, as Buttondown and Ghost count them; rates are over delivered mail.
For SMTP, which reports no deliveries, delivered is what the server accepted
less its hard bounces.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Engine, distinct, func, select

from briefcast import events as ev
from briefcast.config import Settings
from briefcast.ledger import SENT, deliveries
from briefcast.social_links import post_link

TREND_EDITIONS = 30
TOP_LINKS = 5


@dataclass
class Link:
    url: str
    clicks: int
    clickers: int

    @property
    def label(self) -> str:
        readers = f"{self.clickers} reader{'' if self.clickers == 1 else 's'}"
        return f"{readers}, {self.clicks} click{'' if self.clicks == 1 else 's'}"


@dataclass
class ChannelStats:
    channel: str
    type: str
    sent: int = 0
    delivered: int | None = None  # None: the channel has no such thing (social posts)
    opened: int | None = None
    clicked: int | None = None
    bounced: int = 0
    dropped: int = 0
    complained: int = 0
    unsubscribed: int = 0
    top_links: list[Link] = field(default_factory=list)
    posts: list[str] = field(default_factory=list)  # links to the social posts, in order

    @property
    def is_email(self) -> bool:
        return self.type in ev.EMAIL_TYPES

    def rate(self, count: int | None) -> float | None:
        if count is None or not self.delivered:
            return None
        return count / self.delivered


@dataclass
class TrendPoint:
    edition_id: str
    subscribers: int  # emailed on the busiest email channel
    open_rate: float | None
    click_rate: float | None
    unsubscribes: int


@dataclass
class EditionReport:
    edition_id: str
    channels: list[ChannelStats]
    trend: list[TrendPoint]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for stats, row in zip(self.channels, data["channels"], strict=True):
            row["open_rate"] = stats.rate(stats.opened)
            row["click_rate"] = stats.rate(stats.clicked)
        return data


def channel_type(settings: Settings, channel: str) -> str:
    return str(settings.channels.get(channel, {}).get("type", channel))


def _event_names(settings: Settings, channel: str) -> tuple[str, ...]:
    """The names a channel's events are stored under: its own, and SendGrid's for sendgrid."""
    kind = channel_type(settings, channel)
    return tuple(dict.fromkeys((channel, kind))) if kind == "sendgrid" else (channel,)


def _sent_counts(engine: Engine, edition_ids: list[str]) -> dict[tuple[str, str], int]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(deliveries.c.edition_id, deliveries.c.channel, func.count())
            .where(deliveries.c.edition_id.in_(edition_ids), deliveries.c.state == SENT)
            .group_by(deliveries.c.edition_id, deliveries.c.channel)
        )
        return {(r[0], r[1]): r[2] for r in rows}


def _event_counts(engine: Engine, edition_ids: list[str]) -> dict[tuple[str, str, str], int]:
    """(edition, channel, kind) -> unique recipients (events of one kind per person)."""
    who = func.coalesce(ev.events.c.recipient, ev.events.c.provider_event_id, ev.events.c.url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                ev.events.c.edition_id,
                ev.events.c.channel,
                ev.events.c.kind,
                func.count(distinct(who)),
            )
            .where(ev.events.c.edition_id.in_(edition_ids))
            .group_by(ev.events.c.edition_id, ev.events.c.channel, ev.events.c.kind)
        )
        return {(r[0], r[1], r[2]): r[3] for r in rows}


def _stats(
    settings: Settings,
    edition_id: str,
    channel: str,
    sent: dict[tuple[str, str], int],
    counted: dict[tuple[str, str, str], int],
) -> ChannelStats:
    names = _event_names(settings, channel)

    def count(kind: str) -> int:
        return sum(counted.get((edition_id, name, kind), 0) for name in names)

    stats = ChannelStats(channel, channel_type(settings, channel))
    stats.sent = sent.get((edition_id, channel), 0)
    stats.bounced = count(ev.BOUNCE)
    stats.dropped = count(ev.DROPPED)
    stats.complained = count(ev.SPAMREPORT)
    stats.unsubscribed = count(ev.UNSUBSCRIBE)
    if stats.type == "sendgrid":
        stats.delivered = count(ev.DELIVERED)
        stats.opened, stats.clicked = count(ev.OPEN), count(ev.CLICK)
    elif stats.type == "smtp":
        stats.delivered = max(0, stats.sent - stats.bounced)
    return stats


def _edition_channels(engine: Engine, edition_id: str) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.scalars(
                select(deliveries.c.channel)
                .where(deliveries.c.edition_id == edition_id)
                .group_by(deliveries.c.channel)
                .order_by(func.min(deliveries.c.id))
            )
        )


def _top_links(engine: Engine, edition_id: str, names: tuple[str, ...]) -> list[Link]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                ev.events.c.url,
                func.count().label("clicks"),
                func.count(distinct(ev.events.c.recipient)),
            )
            .where(
                ev.events.c.edition_id == edition_id,
                ev.events.c.channel.in_(names),
                ev.events.c.kind == ev.CLICK,
                ev.events.c.url.is_not(None),
            )
            .group_by(ev.events.c.url)
            .order_by(func.count().desc(), ev.events.c.url)
            .limit(TOP_LINKS)
        )
        return [Link(r[0], r[1], r[2]) for r in rows]


def _posts(engine: Engine, settings: Settings, edition_id: str, channel: str) -> list[str]:
    """Links to the posts a social channel made, in thread order (the receipt when no link)."""
    with engine.connect() as conn:
        receipts = list(
            conn.scalars(
                select(deliveries.c.receipt)
                .where(
                    deliveries.c.edition_id == edition_id,
                    deliveries.c.channel == channel,
                    deliveries.c.state == SENT,
                    deliveries.c.receipt.is_not(None),
                )
                .order_by(deliveries.c.seq)
            )
        )
        known = dict(
            conn.execute(
                select(ev.events.c.provider_event_id, ev.events.c.url).where(
                    ev.events.c.edition_id == edition_id,
                    ev.events.c.channel == channel,
                    ev.events.c.kind == ev.POSTED,
                )
            ).all()
        )
    kind = channel_type(settings, channel)
    return [known.get(r) or post_link(kind, r) or r for r in receipts]


def recent_editions(engine: Engine, until: str | None = None, count: int = TREND_EDITIONS):
    """The last ``count`` real editions (no test sends) up to ``until``, oldest first."""
    query = select(deliveries.c.edition_id).where(~deliveries.c.edition_id.contains("-test-"))
    if until is not None:
        query = query.where(deliveries.c.edition_id <= until)
    query = query.group_by(deliveries.c.edition_id).order_by(deliveries.c.edition_id.desc())
    with engine.connect() as conn:
        return list(conn.scalars(query.limit(count)))[::-1]


def trend(engine: Engine, settings: Settings, edition_ids: list[str]) -> list[TrendPoint]:
    if not edition_ids:
        return []
    sent = _sent_counts(engine, edition_ids)
    counted = _event_counts(engine, edition_ids)
    channels: dict[str, list[str]] = defaultdict(list)
    for edition_id, channel in sent:
        channels[edition_id].append(channel)
    points = []
    for edition_id in edition_ids:
        stats = [_stats(settings, edition_id, c, sent, counted) for c in channels[edition_id]]
        mail = [s for s in stats if s.is_email]
        tracked = [s for s in mail if s.opened is not None]
        tracked_delivered = sum(s.delivered or 0 for s in tracked)
        points.append(
            TrendPoint(
                edition_id,
                subscribers=max((s.sent for s in mail), default=0),
                open_rate=sum(s.opened or 0 for s in tracked) / tracked_delivered
                if tracked_delivered
                else None,
                click_rate=sum(s.clicked or 0 for s in tracked) / tracked_delivered
                if tracked_delivered
                else None,
                unsubscribes=sum(s.unsubscribed for s in stats),
            )
        )
    return points


def edition_report(engine: Engine, settings: Settings, edition_id: str) -> EditionReport:
    channels = _edition_channels(engine, edition_id)
    sent = _sent_counts(engine, [edition_id])
    counted = _event_counts(engine, [edition_id])
    stats = []
    for channel in channels:
        row = _stats(settings, edition_id, channel, sent, counted)
        if row.type == "sendgrid":
            row.top_links = _top_links(engine, edition_id, _event_names(settings, channel))
        if not row.is_email:
            row.posts = _posts(engine, settings, edition_id, channel)
        stats.append(row)
    history = trend(engine, settings, recent_editions(engine, until=edition_id))
    return EditionReport(edition_id, stats, history)
