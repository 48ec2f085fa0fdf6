"""The fakes' random fault mix (used by bench/chaos.py): ghosts send, faults do not."""

from __future__ import annotations

import smtplib
import threading

import httpx
import pytest
from fakes.fault_mix import KINDS, FaultMix
from fakes.sendgrid_server import FakeSendGrid
from fakes.smtp_sink import SmtpSink
from fakes.telegram_server import FakeTelegram
from support import wait_for

MAIL = {
    "personalizations": [{"to": [{"email": "ana@example.org"}, {"email": "bo@example.org"}]}],
    "from": {"email": "brief@gazette.example"},
    "subject": "Brief",
    "content": [{"type": "text/plain", "value": "Hello"}],
}
TOKEN = "123456:test-token"


def test_a_ghost_is_delivered_but_never_answered():
    with (
        FakeSendGrid() as sendgrid,
        FakeTelegram(TOKEN, {"@news": "channel"}) as telegram,
        SmtpSink() as sink,
    ):
        for fake in (sendgrid, telegram, sink):
            fake.fault_mix = FaultMix(faults=0, ghosts=1)
        with pytest.raises(httpx.TransportError):
            httpx.post(
                f"{sendgrid.url}/v3/mail/send",
                json=MAIL,
                headers={"Authorization": f"Bearer {sendgrid.api_key}"},
            )
        with pytest.raises(httpx.TransportError):
            httpx.post(
                f"{telegram.base_url}{TOKEN}/sendMessage", data={"chat_id": "@news", "text": "Hi"}
            )
        with smtplib.SMTP("127.0.0.1", sink.port) as smtp, pytest.raises(smtplib.SMTPException):
            smtp.sendmail("brief@gazette.example", ["ana@example.org"], b"Subject: x\r\n\r\nHi")
        assert [d.to for d in sendgrid.delivered] == ["ana@example.org", "bo@example.org"]
        assert [m["text"] for m in telegram.received("@news")] == ["Hi"]
        assert [r.rcpt_tos for r in sink.received] == [["ana@example.org"]]


def test_faults_send_nothing_and_a_stalled_request_is_on_the_wire():
    mix = FaultMix(faults=1, ghosts=0, seed=7, stall_seconds=1.0, rate_limit_seconds=0.1)
    kinds = [mix.draw() for _ in range(60)]
    assert set(kinds) == set(KINDS)

    with FakeSendGrid() as sendgrid:
        sendgrid.fault_mix = FaultMix(faults=1, ghosts=0, seed=1, stall_seconds=1.0)
        seen: list[int] = []
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                seen.append(sendgrid.fault_mix.on_wire)
                stop.wait(0.02)

        watcher = threading.Thread(target=watch)
        watcher.start()
        for _ in range(12):
            try:
                answer = httpx.post(
                    f"{sendgrid.url}/v3/mail/send",
                    json=MAIL,
                    headers={"Authorization": f"Bearer {sendgrid.api_key}"},
                    timeout=3,
                )
                assert answer.status_code in (429, 500, 503)
            except httpx.TransportError:
                pass
        stop.set()
        watcher.join()
        assert sendgrid.delivered == []
        assert sendgrid.fault_mix.drawn["stall"] >= 1
        assert max(seen) == 2  # both recipients of the stalled request
        # Off the wire once the client hung up (each httpx.post closes its connection).
        wait_for(lambda: sendgrid.fault_mix.on_wire == 0, timeout=10, what="off the wire")
