"""The operator's path end to end, on a real ``prefect server`` and ``briefcast serve``.

A run is triggered through the API as the UI's Run button does, pauses for
approval after the preview and the test copy, and is answered as the UI's
Resume form does. The outbox (one file per delivery) is the fake provider:
the rejected run must leave no delivery in it, the approved one every delivery.
"""

from __future__ import annotations

import httpx
import pytest
from flow_fixtures import (
    EDITION_DATE,
    EDITOR,
    SUBSCRIBERS,
    client_of,
    run_artifacts,
    wait_for,
)

pytestmark = pytest.mark.server

EDITION = EDITION_DATE.isoformat()


def trigger(served, **brief):
    """What the UI's custom-run form submits."""
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    parameters = {
        "brief": {
            "edition_date": EDITION,
            "config_path": str(served.newsroom.config),
            "require_approval": True,
            **brief,
        }
    }
    with temporary_settings(updates={PREFECT_API_URL: served.server.api_url}):
        return run_deployment("daily-brief/daily", parameters=parameters, timeout=0)


def state_of(served, flow_run_id):
    with client_of(served.server) as client:
        return client.read_flow_run(flow_run_id).state


def wait_for_state(served, flow_run_id, accept, what: str):
    def reached():
        state = state_of(served, flow_run_id)
        if state.is_final() and not accept(state):
            pytest.fail(f"run ended {state.name}: {state.message}")
        return state if accept(state) else None

    return wait_for(reached, timeout=120, what=what, every=0.5)


def answer(served, flow_run_id, **run_input):
    """What the UI's Resume form submits."""
    from prefect.flow_runs import resume_flow_run
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: served.server.api_url}):
        resume_flow_run(flow_run_id, run_input=run_input)


def artifacts_of(served, flow_run_id):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: served.server.api_url}):
        return run_artifacts(flow_run_id)


def test_the_served_deployment_runs_daily_in_the_publications_zone(served):
    with client_of(served.server) as client:
        deployment = client.read_deployment(served.deployment_id)

    (schedule,) = deployment.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("0 6 * * *", "Europe/Lisbon")
    assert schedule.active and not deployment.paused
    assert deployment.parameters["brief"]["require_approval"] is True


def test_the_server_refuses_a_channel_that_is_not_configured(served):
    from prefect.exceptions import PrefectHTTPStatusError

    with pytest.raises(PrefectHTTPStatusError) as refused:
        trigger(served, channels=["fax"])
    assert refused.value.response.status_code == 409


def test_an_operator_rejects_then_approves_the_edition(served):
    room = served.newsroom

    # First run: the operator reads the preview and rejects it.
    first = trigger(served)
    wait_for_state(served, first.id, lambda s: s.is_paused(), "the first run to pause")
    shown = artifacts_of(served, first.id)
    assert {"brief-preview", "brief-email-html", "brief-test-send-report"} <= set(shown)
    assert "River bridge reopens after six months of repairs" in shown["brief-preview"].data
    preview = shown["brief-email-html"].data.split("(", 1)[1].rstrip(")")
    assert preview.endswith(f"/{EDITION}/")  # served by briefcast serve itself
    page = httpx.get(preview, timeout=10)
    assert page.status_code == 200 and "River bridge reopens" in page.text
    assert not room.archive(EDITION).exists()  # nothing public before approval
    (proof,) = room.proof_editions(EDITION)
    assert [p.stem for p in (proof / "email").glob("*.eml")] == [EDITOR]

    answer(served, first.id, decision="reject", note="headline needs a fix")
    rejected = wait_for_state(served, first.id, lambda s: s.is_final(), "the rejection")

    assert rejected.name == "Rejected" and "headline needs a fix" in rejected.message
    assert not room.outbox(EDITION).exists()  # no email, no post, no message went out
    assert not room.archive(EDITION).exists()
    assert "brief-delivery-report" not in artifacts_of(served, first.id)

    # Second run: approved, it delivers to every subscriber and on X and Telegram.
    second = trigger(served)
    wait_for_state(served, second.id, lambda s: s.is_paused(), "the second run to pause")
    assert len(room.proof_editions(EDITION)) == 2
    assert not room.outbox(EDITION).exists()

    answer(served, second.id, decision="approve", note="fixed")
    done = wait_for_state(served, second.id, lambda s: s.is_completed(), "the delivery")

    assert done.name == "Completed"
    assert room.emails(EDITION) == sorted(SUBSCRIBERS)
    assert len(list((room.outbox(EDITION) / "x").glob("*.json"))) == 4
    assert len(list((room.outbox(EDITION) / "telegram").glob("*.json"))) == 1
    assert room.archive(EDITION).is_file()
    assert len(list((room.outbox(EDITION) / "bluesky").glob("*.json"))) == 4
    report = artifacts_of(served, second.id)["brief-delivery-report"]
    assert '"delivered": 15' in report.data
