"""Which moments belong to an edition day, in the publication's own time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def edition_window(edition_date: date, zone: ZoneInfo, lookback_hours: int = 24):
    """[start, end) in UTC: from local midnight minus (lookback − 24) h to the next local midnight.

    Computed through UTC, so a 23- or 25-hour day around a DST change stays one local day.
    """
    start = datetime.combine(edition_date, time(), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(edition_date + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC)
    return start - timedelta(hours=lookback_hours - 24), end


def in_window(moment: datetime, window: tuple[datetime, datetime]) -> bool:
    start, end = window
    return start <= moment < end
