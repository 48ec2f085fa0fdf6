"""The edition report from real events: an edition sent through SendGrid and Mastodon, then
signed Event Webhook batches and web unsubscribes, then ``briefcast report`` and /operator."""

from __future__ import annotations

import json

import pytest
from fakes.mastodon_server import FakeMastodon
from fakes.sendgrid_server import FakeSendGrid
from fastapi.testclient import TestClient
from social_support import social_edition
from test_web_webhook import public_der_b64, signed_headers
from typer.testing import CliRunner
from web_support import make_settings

from briefcast import pipeline, subscribers
from briefcast.cli import app as cli
from briefcast.db import get_engine
from briefcast.web.app import create_app

SENDGRID_KEY = "SG.report-test-key"
MASTODON_TOKEN = "masto-report-token"
OPERATOR_TOKEN = "operator-token-5b1f0e"
READERS = [f"reader{n}@example.org" for n in range(10)]
STORY = "https://gazette.example/2026-11-20/harbour-and-town-council-story-number-1"
OTHER = "https://gazette.example/2026-11-20/harbour-and-town-council-story-number-2"


def event(kind: str, email: str, n: int, edition: str = "2026-11-20", **extra) -> dict:
    return {
        "email": email,
        "timestamp": 1_763_625_600 + n,
        "event": kind,
        "sg_event_id": f"{edition}-{kind}-{email}-{n}",
        "sg_message_id": "msg.filter0001",
        "edition_id": edition,
        "category": ["daily-brief"],
        **extra,
    }


@pytest.fixture(name="newsroom")
def newsroom_fixture(tmp_path, monkeypatch):
    """An edition sent to ten readers through SendGrid and as a Mastodon thread."""
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    monkeypatch.setenv("REPORT_SENDGRID_KEY", SENDGRID_KEY)
    monkeypatch.setenv("REPORT_MASTODON_TOKEN", MASTODON_TOKEN)
    monkeypatch.setenv("REPORT_OPERATOR_TOKEN", OPERATOR_TOKEN)
    with FakeSendGrid(SENDGRID_KEY) as sendgrid, FakeMastodon(MASTODON_TOKEN) as mastodon:
        web_extra = f"""sendgrid_webhook_public_key = "{public_der_b64(key)}"
operator_token = {{ env = "REPORT_OPERATOR_TOKEN" }}

[channels.sendgrid]
api_key = {{ env = "REPORT_SENDGRID_KEY" }}
base_url = "{sendgrid.url}"

[channels.mastodon]
instance_url = "{mastodon.url}"
access_token = {{ env = "REPORT_MASTODON_TOKEN" }}
"""
        settings = make_settings(tmp_path, monkeypatch, web_extra=web_extra)
        engine = get_engine(settings.database_url)
        for address in READERS:
            subscribers.add(engine, address)
        for edition_id in ("2026-11-19", "2026-11-20"):
            edition = social_edition(2, edition_id=edition_id)
            recipients = subscribers.recipients_for(engine, settings, edition_id)
            assert pipeline.deliver(settings, edition, "sendgrid", recipients).delivered == 10
            assert pipeline.deliver(settings, edition, "mastodon", []).delivered == 3
        yield {
            "settings": settings,
            "engine": engine,
            "key": key,
            "client": TestClient(create_app(settings)),
            "mastodon": mastodon,
            "config": str(tmp_path / "briefcast.toml"),
        }


def post_batch(newsroom, batch: list[dict]) -> None:
    body = json.dumps(batch).encode()
    response = newsroom["client"].post(
        "/webhooks/sendgrid", content=body, headers=signed_headers(newsroom["key"], body)
    )
    assert response.status_code == 200, response.text


def the_days_events() -> tuple[list[dict], list[dict]]:
    """Two webhook batches for 2026-11-20; SendGrid sends the second one twice."""
    first = [event("processed", a, 0) for a in READERS]
    first += [event("delivered", a, 1) for a in READERS[:9]]
    first.append(event("bounce", READERS[9], 1, type="bounce", reason="550 5.1.1 no such user"))
    first += [event("open", a, 2) for a in READERS[:6]]
    first.append(event("open", READERS[0], 3))  # the same reader again: still one
    second = [
        event("click", READERS[0], 4, url=STORY),
        event("click", READERS[0], 5, url=STORY),
        event("click", READERS[1], 4, url=STORY),
        event("click", READERS[2], 4, url=OTHER),
        event("spamreport", READERS[5], 6),
        event("unsubscribe", READERS[4], 7),
    ]
    return first, second


def test_the_report_counts_what_the_webhook_and_the_web_app_were_told(newsroom):
    first, second = the_days_events()
    post_batch(newsroom, first)
    post_batch(newsroom, second)
    post_batch(newsroom, second)  # a retried batch changes nothing
    post_batch(newsroom, [event("delivered", a, 1, "2026-11-19") for a in READERS])
    post_batch(newsroom, [event("open", a, 2, "2026-11-19") for a in READERS[:8]])
    # a reader unsubscribes with the link in the 2026-11-20 email
    url = subscribers.recipient(newsroom["settings"], READERS[3], "2026-11-20").unsubscribe_url
    path = url.split("://", 1)[1].split("/", 1)[1]
    answer = newsroom["client"].post(f"/{path}", data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200

    result = CliRunner().invoke(
        cli, ["report", "--date", "2026-11-20", "--json", "--config", newsroom["config"]]
    )

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    email, social = report["channels"]
    assert {k: email[k] for k in ("channel", "sent", "delivered", "opened", "clicked")} == {
        "channel": "sendgrid",
        "sent": 10,
        "delivered": 9,
        "opened": 6,
        "clicked": 3,
    }
    assert (email["bounced"], email["complained"], email["unsubscribed"]) == (1, 1, 2)
    assert email["open_rate"] == pytest.approx(6 / 9)
    assert email["click_rate"] == pytest.approx(3 / 9)
    assert email["top_links"] == [
        {"url": STORY, "clicks": 3, "clickers": 2},
        {"url": OTHER, "clicks": 1, "clickers": 1},
    ]
    statuses = newsroom["mastodon"].statuses[-3:]
    assert social["channel"] == "mastodon" and social["sent"] == 3
    assert social["posts"] == [f"https://social.example/@gazette/{s.id}" for s in statuses]
    assert [(p["edition_id"], p["subscribers"], p["unsubscribes"]) for p in report["trend"]] == [
        ("2026-11-19", 10, 0),
        ("2026-11-20", 10, 2),
    ]
    assert [p["open_rate"] for p in report["trend"]] == pytest.approx([0.8, 6 / 9])


def test_the_report_as_a_table_names_the_numbers_and_the_trend(newsroom):
    first, second = the_days_events()
    post_batch(newsroom, first + second)

    result = CliRunner().invoke(
        cli, ["report", "--config", newsroom["config"]], env={"COLUMNS": "160"}
    )

    assert result.exit_code == 0, result.output
    assert "Edition 2026-11-20" in result.output  # the latest edition by default
    row = next(line for line in result.output.splitlines() if "sendgrid" in line)
    assert [c.strip() for c in row.split("│")[1:-1]] == [
        "sendgrid",
        "10",
        "9",
        "6 (66.7%)",
        "3 (33.3%)",
        "1",
        "1",
        "1",
    ]
    assert "2 readers, 3 clicks" in result.output and STORY in result.output
    assert "1 reader, 1 click " in result.output
    assert "The last 2 editions:" in result.output and "open rate" in result.output


def test_the_operator_page_needs_the_token_and_shows_report_and_chart(newsroom):
    client = newsroom["client"]
    post_batch(newsroom, the_days_events()[0])

    assert "Operator token" in client.get("/operator").text
    assert client.post("/operator", data={"token": "guess"}).status_code == 403
    signed_in = client.post("/operator", data={"token": OPERATOR_TOKEN}, follow_redirects=False)
    assert signed_in.status_code == 303
    cookie = signed_in.headers["set-cookie"]
    assert OPERATOR_TOKEN not in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie

    page = client.get("/operator")

    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "Edition 2026-11-20" in page.text and '<svg class="trend"' in page.text


def test_guessing_the_token_is_cut_short(newsroom):
    client = newsroom["client"]
    for _ in range(5):
        assert client.post("/operator", data={"token": "guess"}).status_code == 403

    refused = client.post("/operator", data={"token": OPERATOR_TOKEN}, follow_redirects=False)

    assert refused.status_code == 429 and "Too many wrong tokens" in refused.text
    assert "set-cookie" not in refused.headers


def test_without_a_token_configured_the_operator_page_is_off(tmp_path, monkeypatch):
    client = TestClient(create_app(make_settings(tmp_path, monkeypatch)))

    assert client.get("/operator").status_code == 404
    assert client.post("/operator", data={"token": ""}).status_code == 404
