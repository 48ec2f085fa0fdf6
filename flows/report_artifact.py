"""The edition report as a Prefect artifact: published when the next edition runs (or on a
follow-up run of the same day), so editors see in the UI how the last brief did."""

from __future__ import annotations

import logging
from datetime import date

from prefect.artifacts import create_markdown_artifact

from briefcast.config import Settings
from briefcast.db import get_engine
from briefcast.report import edition_report, recent_editions
from briefcast.report_views import markdown

EDITION_REPORT_KEY = "brief-edition-report"

log = logging.getLogger("briefcast.report")


def publish_edition_report(settings: Settings, until: date) -> str | None:
    """Publish the report of the latest edition sent up to ``until``; its id, or None.

    The report only informs: trouble building it is logged, never fails the run.
    """
    try:
        engine = get_engine(settings.database_url)
        latest = recent_editions(engine, until=until.isoformat(), count=1)
        if not latest:
            return None
        report = edition_report(engine, settings, latest[0])
        create_markdown_artifact(
            markdown(report),
            key=EDITION_REPORT_KEY,
            description=f"How edition {latest[0]} did, and the last {len(report.trend)} editions",
        )
        return latest[0]
    except Exception as exc:  # noqa: BLE001 - a report must never stop an edition
        log.warning("edition report not published: %s: %s", type(exc).__name__, exc)
        return None
