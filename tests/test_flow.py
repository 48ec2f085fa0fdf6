"""The daily-brief flow under a temporary Prefect API: what operators see and what goes out.

The outbox channel is the fake provider: one file per delivery under
``var/outbox/<edition>/``. The approval tests run the flow in a thread and
answer its pause from the test, as an operator does in the UI.
"""

from __future__ import annotations

import re
import threading
from email import message_from_bytes
from email.policy import default

import httpx
import pytest
from briefcast.flows.outcome import result_of
from flow_fixtures import (
    EDITION_DATE,
    EDITOR,
    SUBSCRIBERS,
    run_artifacts,
    wait_for,
    write_newsroom,
)
from web_support import listening_socket, served

from briefcast.params import BriefParameters

EDITION = EDITION_DATE.isoformat()

pytestmark = pytest.mark.usefixtures("prefect_harness")


def brief(newsroom, **changes) -> BriefParameters:
    return BriefParameters(edition_date=EDITION_DATE, config_path=str(newsroom.config), **changes)


def run(params: BriefParameters):
    from briefcast.flows.daily_brief import daily_brief

    return daily_brief(params, return_state=True)


def test_a_run_delivers_and_shows_preview_html_and_report(newsroom):
    state = run(brief(newsroom))

    assert state.is_completed(), state.message
    assert newsroom.emails(EDITION) == sorted(SUBSCRIBERS)
    assert len(list((newsroom.outbox(EDITION) / "x").glob("*.json"))) == 4  # opener + 3 stories
    assert newsroom.archive(EDITION).is_file()
    found = run_artifacts(state.state_details.flow_run_id)
    assert set(found) == {
        "brief-preview",
        "brief-email-html",
        "brief-delivery-report",
        "delivery-progress-outbox",
    }
    assert found["delivery-progress-outbox"].data == 100.0  # the progress bar reached the end
    preview = found["brief-preview"].data
    assert "**Subject:**" in preview and "River bridge reopens" in preview
    assert "weighted length" in preview and "characters after HTML parsing" in preview
    assert found["brief-email-html"].type == "markdown"  # Prefect stores links as Markdown
    assert f"http://127.0.0.1:8765/archive/{EDITION}" in found["brief-email-html"].data
    report = found["brief-delivery-report"]
    assert report.type == "table"
    # 2 emails, 4 X posts, 1 Telegram message, 4 Bluesky posts and 4 Mastodon statuses
    assert '"delivered": 15' in report.data and '"channel": "outbox"' in report.data


def test_a_rerun_after_a_new_story_sends_the_edition_as_it_first_went_out(newsroom):
    run(brief(newsroom))
    posts = newsroom.outbox(EDITION) / "x"
    first = {p.name: p.read_text() for p in posts.glob("*.json")}
    (newsroom.config.parent / "articles" / "ferry.md").write_text(
        "---\ntitle: Ferry strike called off\nurl: https://gazette.example/ferry\n"
        "published: 2026-03-10T11:00:00+00:00\npriority: 5\n---\n\nTalks ended at noon.\n",
        encoding="utf-8",
    )  # pinned: a fresh render would put it first and move every story one post down

    result = run(brief(newsroom)).result()

    assert {p.name: p.read_text() for p in posts.glob("*.json")} == first  # none posted twice
    assert result["channels"][0]["delivered"] == 0
    assert {
        "source": "Newsroom",
        "entry": "Ferry strike called off",
        "reason": f"not in edition {EDITION}: it had already gone out without it",
    } in result["problems"]


def test_a_dry_run_sends_nothing_and_links_the_preview_file(newsroom):
    state = run(brief(newsroom, dry_run=True))

    assert state.is_completed()
    assert not (newsroom.data / "outbox").exists()
    assert not newsroom.archive(EDITION).exists()  # nothing public for an edition not sent
    html_file = newsroom.data / "preview" / EDITION / "email.html"
    assert html_file.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")
    found = run_artifacts(state.state_details.flow_run_id)
    assert html_file.as_uri() in found["brief-email-html"].data
    assert "brief-delivery-report" not in found


def test_test_recipients_alone_get_a_marked_copy(newsroom):
    state = run(brief(newsroom, test_to=[EDITOR]))

    assert state.is_completed()
    assert newsroom.emails(EDITION) == []
    (proof,) = newsroom.proof_editions(EDITION)
    assert [p.stem for p in (proof / "email").glob("*.eml")] == [EDITOR]
    message = message_from_bytes((proof / "email" / f"{EDITOR}.eml").read_bytes(), policy=default)
    assert str(message["Subject"]).strip().startswith("[TEST] ")
    text = message.get_body(("plain",)).get_content()
    assert f"/archive/{EDITION}\n" in text  # the view link leads to the real edition's page
    assert not (proof / "x").exists() and not (proof / "telegram").exists()
    assert "brief-test-send-report" in run_artifacts(state.state_details.flow_run_id)


def test_a_test_send_skips_telegram_instead_of_failing_it(tmp_path, monkeypatch):
    monkeypatch.delenv("BRIEFCAST_DATA", raising=False)
    monkeypatch.setenv("TEST_TELEGRAM_TOKEN", "123:not-a-real-token")
    room = write_newsroom(
        tmp_path,
        schedule='\n[channels.telegram]\nbot_token = { env = "TEST_TELEGRAM_TOKEN" }\n'
        'chats = ["@gazette"]\nbase_url = "http://127.0.0.1:9/bot"\n',
    )

    state = run(brief(room, test_to=[EDITOR]))

    assert state.is_completed(), state.message
    rows = {row["channel"]: row for row in state.result()["channels"]}
    assert rows["outbox"]["delivered"] == 1 and rows["telegram"]["failed"] == 0
    assert "not part of a test send" in rows["telegram"]["reasons"]


def test_an_unknown_channel_fails_before_anything_is_gathered(newsroom):
    state = run(brief(newsroom, channels=["fax"]))

    assert state.is_failed()
    assert "unknown channels ['fax']" in state.message
    assert not (newsroom.data / "preview").exists()


# -- the approval gate -------------------------------------------------------------------------


class BackgroundRun:
    """The flow in a thread, so the test can act as the operator while it is paused."""

    def __init__(self, params: BriefParameters) -> None:
        self.config_path = params.config_path
        self.state = None
        self.thread = threading.Thread(target=self._run, args=(params,), daemon=True)
        self.thread.start()

    def _run(self, params: BriefParameters) -> None:
        self.state = run(params)

    def paused_run_id(self):
        from prefect import get_client
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterState,
            FlowRunFilterStateType,
        )
        from prefect.client.schemas.objects import StateType

        with get_client(sync_client=True) as client:
            paused = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
                )
            )
        ours = [r for r in paused if r.parameters["brief"]["config_path"] == self.config_path]
        return ours[0].id if ours else None

    def finish(self, timeout: float = 60):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the flow did not finish"
        return self.state


def test_approval_sends_a_test_copy_pauses_then_delivers_once_approved(newsroom):
    from prefect.flow_runs import resume_flow_run

    background = BackgroundRun(brief(newsroom, require_approval=True))
    run_id = wait_for(background.paused_run_id, timeout=60, what="the run to pause")

    # While paused: the editor has the test copy, the reviewer an unlisted page; nobody else.
    (proof,) = newsroom.proof_editions(EDITION)
    assert [p.stem for p in (proof / "email").glob("*.eml")] == [EDITOR]
    assert not newsroom.archive(EDITION).exists()  # not public before it is approved
    assert newsroom.emails(EDITION) == []
    found = run_artifacts(run_id)
    assert {"brief-preview", "brief-email-html", "brief-test-send-report"} <= set(found)
    reviewer_sees_only_the_review_page(newsroom, found["brief-email-html"].data)

    resume_flow_run(run_id, run_input={"decision": "approve", "note": "looks good"})
    state = background.finish()

    assert state.is_completed(), state.message
    assert newsroom.emails(EDITION) == sorted(SUBSCRIBERS)
    assert newsroom.archive(EDITION).is_file()  # public once it went out
    assert state.result()["decision"] == "approved by an operator: looks good"
    assert "brief-delivery-report" in run_artifacts(run_id)


def reviewer_sees_only_the_review_page(newsroom, link_artifact: str) -> None:
    """Over HTTP from ``briefcast web``: the artifact's review link shows the edition; the
    archive neither lists nor serves it, and a made-up review link finds nothing."""
    from briefcast.config import load_settings

    match = re.search(r"http://127\.0\.0\.1:8765(/review/[A-Za-z0-9_.-]+)", link_artifact)
    assert match, link_artifact
    sock, base = listening_socket()
    with served(load_settings(newsroom.config), sock):
        review = httpx.get(base + match.group(1))
        index = httpx.get(base + "/archive")
        archived = httpx.get(f"{base}/archive/{EDITION}")
        guessed = httpx.get(f"{base}/review/{EDITION}")
    assert review.status_code == 200 and "River bridge reopens" in review.text
    assert review.headers["cache-control"] == "no-store"
    assert EDITION not in index.text and "/review/" not in index.text
    assert archived.status_code == 404 and guessed.status_code == 404


def test_a_rejected_edition_sends_nothing_and_says_why(newsroom):
    from prefect.flow_runs import resume_flow_run

    background = BackgroundRun(brief(newsroom, require_approval=True))
    run_id = wait_for(background.paused_run_id, timeout=60, what="the run to pause")
    with pytest.raises(RuntimeError, match="'decision' is a required property"):
        resume_flow_run(run_id, run_input={"note": "no decision given"})  # no default
    resume_flow_run(run_id, run_input={"decision": "reject", "note": "typo in the lead"})
    state = background.finish()

    assert state.is_cancelled() and state.name == "Rejected"
    assert result_of(state)["decision"] == ("rejected by an operator: typo in the lead")
    assert "typo in the lead" in state.message and "not delivered" in state.message
    assert newsroom.emails(EDITION) == []
    assert not (newsroom.outbox(EDITION) / "x").exists()
    assert not newsroom.archive(EDITION).exists()  # withdrawn from the public archive
    assert "brief-delivery-report" not in run_artifacts(run_id)


def test_an_unanswered_approval_times_out_and_sends_nothing(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("BRIEFCAST_DATA", raising=False)
    room = write_newsroom(tmp_path, schedule="approval_timeout_seconds = 2\n")

    state = run(brief(room, require_approval=True))

    assert state.is_failed() and "never resumed" in state.message
    assert "nobody approved it within 2 seconds" in caplog.text
    assert room.emails(EDITION) == []
    assert not room.archive(EDITION).exists()


def test_a_day_without_articles_ends_named_no_articles_without_pausing(newsroom):
    from datetime import date

    params = brief(newsroom, require_approval=True)
    state = run(params.model_copy(update={"edition_date": date(2026, 3, 15)}))

    assert state.is_completed() and state.name == "No articles"
    assert state.message.startswith("No articles for 2026-03-15")
    assert state.result()["articles"] == 0 and state.result()["channels"] == []
    assert not (newsroom.data / "outbox").exists()
    assert run_artifacts(state.state_details.flow_run_id) == {}


def test_days_ago_picks_the_day_when_no_date_is_given(newsroom):
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from briefcast.config import load_settings

    zone = ZoneInfo(load_settings(newsroom.config).publication.timezone)
    yesterday = datetime.now(zone).date() - timedelta(days=1)
    state = run(BriefParameters(config_path=str(newsroom.config), days_ago=1, dry_run=True))

    said = (state.message or "") + str(state.result(raise_on_failure=False))
    assert yesterday.isoformat() in said
