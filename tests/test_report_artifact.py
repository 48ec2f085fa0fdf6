"""The flow shows how the last edition did: a follow-up run publishes the edition report."""

from __future__ import annotations

import pytest
from briefcast.flows.report_artifact import EDITION_REPORT_KEY
from flow_fixtures import (  # noqa: F401  (the *_fixture names are fixtures)
    EDITION_DATE,
    SUBSCRIBERS,
    newsroom_fixture,
    prefect_harness_fixture,
    run_artifacts,
)

from briefcast.params import BriefParameters

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_a_follow_up_run_publishes_the_edition_report(newsroom):
    from briefcast.flows.daily_brief import daily_brief

    params = BriefParameters(edition_date=EDITION_DATE, config_path=str(newsroom.config))
    first = daily_brief(params, return_state=True)
    assert EDITION_REPORT_KEY not in run_artifacts(first.state_details.flow_run_id)

    again = daily_brief(params, return_state=True)

    assert again.is_completed(), again.message
    report = run_artifacts(again.state_details.flow_run_id)[EDITION_REPORT_KEY].data
    assert f"# Edition {EDITION_DATE.isoformat()}" in report
    # the outbox channel sent one email per subscriber, the X thread, Telegram, and the
    # Bluesky and Mastodon posts (one per X post)
    sent = len(SUBSCRIBERS) + 4 + 1 + 4 + 4
    assert f"| outbox | {sent} |" in report
    assert "## The last 1 editions" in report
    assert f"{EDITION_DATE.isoformat()} " in report.split("## The last 1 editions")[1]
