"""A long mailing list planned in a second process: the same deliveries, streamed back,
its failures raised here, its warnings logged here."""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import signal
from collections import Counter

import pytest
from briefcast.channels import sendgrid_mail
from briefcast.channels.base import ChannelContext
from briefcast.channels.sendgrid_mail import SendGridChannel, SendGridSettings
from fakes.sendgrid_server import FakeSendGrid
from support import gazette_settings, make_edition

from briefcast import plan_process, subscribers
from briefcast.config import Dispatch
from briefcast.db import get_engine
from briefcast.dispatch import dispatch_channel
from briefcast.ledger import SENT, Ledger
from briefcast.plan_process import PlanProcessError, in_second_process

API_KEY = "SG.plan-process-test-key"
FAST = Dispatch(max_attempts=2, backoff_seconds=0, max_wait_seconds=5)


# -- producers the second process runs (module level: it imports them by name) ----------


def numbers(count: int):
    return ((n, f"item {n}") for n in range(count))


def numbers_then_fail(count: int):
    yield from numbers(count)
    raise ValueError("the subscriber table went away")


def numbers_then_killed(count: int):
    yield from numbers(count)
    os.kill(os.getpid(), signal.SIGKILL)
    yield "never"


def warns_then_numbers(count: int):
    logging.getLogger("briefcast.test.plan").warning("a plain-HTTP link in row %d", 7)
    yield from numbers(count)


def endless():
    n = 0
    while True:
        yield n
        n += 1


# -- the process itself --------------------------------------------------------------------


def test_everything_the_producer_yields_arrives_in_order_across_pages():
    got = list(in_second_process(functools.partial(numbers, 2500), page=1000))
    assert got == list(numbers(2500))


@pytest.mark.parametrize(
    ("producer", "count", "why"),
    [
        (numbers_then_fail, 1500, "ValueError: the subscriber table went away"),
        (numbers_then_killed, 700, "ended before its plan was done"),  # not a short plan
    ],
)
def test_a_failure_there_is_raised_here_after_what_came_before_it(producer, count, why):
    got = []
    with pytest.raises(PlanProcessError, match=why):
        for item in in_second_process(functools.partial(producer, count), page=100):
            got.append(item)
    assert got == list(numbers(count))


def test_its_log_records_are_logged_here(caplog):
    caplog.set_level(logging.WARNING, logger="briefcast.test.plan")
    assert len(list(in_second_process(functools.partial(warns_then_numbers, 3)))) == 3
    assert "a plain-HTTP link in row 7" in caplog.text


def test_stopping_early_ends_the_process():
    stream = in_second_process(endless, page=10)
    assert [next(stream) for _ in range(25)] == list(range(25))
    stream.close()
    assert multiprocessing.active_children() == []


# -- SendGrid's plan of the subscriber table -----------------------------------------------


def _edition():
    return make_edition(
        "2026-11-20",
        subject="Your brief",
        html='<p>Morning %%first_name%%</p><a href="%%unsubscribe_url%%">Unsubscribe</a>',
        text="Morning %%first_name%%\nUnsubscribe: %%unsubscribe_url%%\n",
    )


def _adapter(settings, fake_url: str, recipients) -> SendGridChannel:
    conf = SendGridSettings.model_validate(
        {"api_key": {"env": "PLAN_PROCESS_SENDGRID_KEY"}, "base_url": fake_url}
    )
    context = ChannelContext(settings.publication, settings.data_dir, recipients)
    return SendGridChannel(conf, context)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / 'data' / 'briefcast.db'}"


@pytest.fixture
def mailing(tmp_path, database_url, monkeypatch):
    monkeypatch.setenv("PLAN_PROCESS_SENDGRID_KEY", API_KEY)
    settings = gazette_settings(tmp_path, web_base_url="https://news.gazette.example")
    engine = get_engine(database_url)
    for n in range(1, 2501):
        subscribers.add(engine, f"Reader{n}@example.org", name=f"Reader {n}" if n % 3 else "")
    stream = subscribers.ActiveRecipients(engine, settings, "2026-11-20")
    return settings, engine, stream


def _planned(settings, stream, threshold, monkeypatch) -> list[tuple]:
    monkeypatch.setattr(sendgrid_mail, "SECOND_PROCESS_FROM", threshold)
    adapter = _adapter(settings, "http://127.0.0.1:9", stream)
    return [(d.target, d.payload, d.problem) for d in adapter.plan(_edition())]


def test_the_second_process_plans_what_this_one_would(mailing, monkeypatch):
    settings, _, stream = mailing
    spawned = []
    real = plan_process.in_second_process
    monkeypatch.setattr(
        sendgrid_mail, "in_second_process", lambda rows: spawned.append(1) or real(rows)
    )
    here = _planned(settings, stream, 10**9, monkeypatch)
    there = _planned(settings, stream, 1, monkeypatch)
    assert spawned == [1]  # the second plan went through the other process
    assert len(there) == 2500
    assert there == here


def test_a_list_planned_elsewhere_reaches_everyone_once(mailing, monkeypatch):
    settings, engine, stream = mailing
    monkeypatch.setattr(sendgrid_mail, "SECOND_PROCESS_FROM", 1)
    with FakeSendGrid(API_KEY) as fake:
        adapter = _adapter(settings, fake.url, stream)
        report = dispatch_channel(adapter, "sendgrid", _edition(), Ledger(engine), FAST)
        delivered = fake.delivered
    assert report.ok and report.delivered == 2500
    counts = Counter(m.to for m in delivered)
    assert len(counts) == 2500 and set(counts.values()) == {1}
    one = next(m for m in delivered if m.to == "Reader4@example.org")
    assert one.text.startswith("Morning Reader\n")
    assert one.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    token = one.headers["List-Unsubscribe"].removeprefix("<").removesuffix(">").split("/u/")[1]
    assert token == stream.sign("reader4@example.org")
    rows = Ledger(engine).rows("2026-11-20", "sendgrid")
    assert len(rows) == 2500 and {r.state for r in rows.values()} == {SENT}


def test_a_warning_made_while_planning_elsewhere_is_logged_here(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("PLAN_PROCESS_SENDGRID_KEY", API_KEY)
    settings = gazette_settings(tmp_path, web_base_url="http://news.gazette.example")
    engine = get_engine(settings.database_url)
    subscribers.add(engine, "reader@example.org")
    stream = subscribers.ActiveRecipients(engine, settings, "2026-11-20")
    caplog.set_level(logging.WARNING)
    planned = _planned(settings, stream, 1, monkeypatch)
    assert [target for target, _, _ in planned] == ["reader@example.org"]
    assert "sendgrid: unsubscribe links are not HTTPS" in caplog.text
