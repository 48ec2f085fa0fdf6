"""The SMTP channel's sessions and pre-rendered messages, against aiosmtpd on 127.0.0.1."""

from __future__ import annotations

import threading
from collections import Counter

from briefcast.channels.base import ChannelContext, Delivery, Receipt
from briefcast.channels.smtp_mail import SmtpChannel, SmtpSettings
from fakes.smtp_sink import SmtpSink
from support import gazette_settings, make_edition

from briefcast import subscribers

EDITION = "2026-11-20"


def edition():
    return make_edition(
        EDITION,
        subject="Brief — Friday",
        html=(
            "<p>Good morning %%first_name%%, from %%nobody%%.</p>"
            + "<p>Story</p>" * 400  # one long line: encoded across many wire lines
            + '<a href="%%unsubscribe_url%%">Unsubscribe</a>'
        ),
        text="Good morning %%first_name%%,\nUnsubscribe: %%unsubscribe_url%%\n",
    )


def channel(tmp_path, port, people, **overrides) -> SmtpChannel:
    settings = gazette_settings(tmp_path, web_base_url="https://news.gazette.example")
    recipients = [
        subscribers.recipient(settings, address, EDITION, name) for address, name in people
    ]
    context = ChannelContext(
        publication=settings.publication, data_dir=settings.data_dir, recipients=recipients
    )
    conf = {"host": "127.0.0.1", "port": port, "security": "plain", "timeout_seconds": 5}
    return SmtpChannel(SmtpSettings.model_validate({**conf, **overrides}), context)


def deliveries(adapter) -> list[Delivery]:
    return adapter.plan(edition())


def test_names_and_links_arrive_intact_in_both_parts(tmp_path):
    people = [
        ("ana@example.org", "Conceição Ribeiro"),
        ("bo@example.org", 'Bo <b>"&" Lee'),
        ("jurgen@bücher.example", "Jürgen"),
    ]
    with SmtpSink() as sink:
        adapter = channel(tmp_path, sink.port, people)
        outcomes = adapter.send(deliveries(adapter))
        adapter.close()
    assert all(isinstance(o, Receipt) for o in outcomes)
    by_address = {r.rcpt_tos[0]: r.message for r in sink.received}
    ana = by_address["ana@example.org"]
    assert "Good morning Conceição," in ana.get_body(("plain",)).get_content()
    html = ana.get_body(("html",)).get_content()
    assert "Good morning Conceição, from %%nobody%%." in html  # unknown tokens stay as written
    assert html.count("<p>Story</p>") == 400
    link = str(ana["List-Unsubscribe"]).strip("<>")
    assert f'href="{link}"' in html
    assert f"Unsubscribe: {link}\r\n" in ana.get_body(("plain",)).get_content()
    bo = by_address["bo@example.org"]
    assert "Good morning Bo," in bo.get_body(("plain",)).get_content()
    assert bo["To"].addresses[0].display_name == 'Bo <b>"&" Lee'
    assert {o.provider_id for o in outcomes} == {m["Message-ID"] for m in by_address.values()}
    jurgen = by_address["jurgen@xn--bcher-kva.example"]
    assert "Good morning Jürgen," in jurgen.get_body(("plain",)).get_content()


def test_sessions_stay_open_across_batches(tmp_path):
    people = [(f"reader{i}@example.org", f"Reader {i}") for i in range(60)]
    with SmtpSink() as sink:
        adapter = channel(tmp_path, sink.port, people, connections=2)
        planned = deliveries(adapter)
        for start in range(0, 60, 10):
            assert all(isinstance(o, Receipt) for o in adapter.send(planned[start : start + 10]))
        adapter.close()
    assert len(sink.received) == 60
    assert len(sink.sessions) <= 2


def test_threads_sending_at_once_share_the_sessions_and_deliver_each_once(tmp_path):
    people = [(f"reader{i}@example.org", "") for i in range(80)]
    with SmtpSink() as sink:
        adapter = channel(tmp_path, sink.port, people, connections=3)
        planned = deliveries(adapter)
        results: list = []

        def sender(part):
            results.extend(adapter.send(part))

        threads = [threading.Thread(target=sender, args=(planned[i::4],)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        adapter.close()
    assert len(results) == 80 and all(isinstance(o, Receipt) for o in results)
    assert Counter(r.rcpt_tos[0] for r in sink.received) == Counter(a for a, _ in people)
    assert len(sink.sessions) <= 3


def test_a_session_that_died_is_replaced_by_a_new_connection(tmp_path):
    people = [(f"reader{i}@example.org", "") for i in range(6)]
    with SmtpSink() as sink:
        adapter = channel(tmp_path, sink.port, people, connections=1)
        planned = deliveries(adapter)
        sink.drop_at(people[1][0])
        first = adapter.send(planned[:3])
        second = adapter.send(planned[1:])
        adapter.close()
    assert [type(o).__name__ for o in first] == ["Receipt", "TransientError", "TransientError"]
    assert all(isinstance(o, Receipt) for o in second)
    assert Counter(r.rcpt_tos[0] for r in sink.received) == Counter(a for a, _ in people)
