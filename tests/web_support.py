"""Helpers for the web app tests: a config file, an SMTP sink that says when mail arrives."""

from __future__ import annotations

import re
import socket
import threading
from contextlib import contextmanager
from pathlib import Path

from fakes.smtp_sink import SmtpSink

from briefcast.config import Settings, load_settings

SECRET_ENV = "BRIEFCAST_TEST_LINK_SECRET"
SECRET = "test-link-secret-0123456789abcdef"

CONFIG = """
data_dir = "data"

[publication]
name = "The Test Gazette"
site_url = "https://gazette.example"
postal_address = "1 Main St, Springfield"
sender_email = "brief@gazette.example"
sender_name = "The Test Gazette"
web_base_url = "{base_url}"

[database]
url = "{database_url}"

[web]
secret = {{ env = "{secret_env}" }}
{web_extra}

[web.smtp]
host = "127.0.0.1"
port = {smtp_port}
{smtp_extra}
"""


def make_settings(
    tmp_path: Path,
    monkeypatch,
    *,
    smtp_port: int = 1,
    base_url: str = "http://testserver",
    web_extra: str = "",
    smtp_extra: str = 'security = "plain"',
    database_url: str = "",
) -> Settings:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    monkeypatch.delenv("BRIEFCAST_DATA", raising=False)
    path = tmp_path / "briefcast.toml"
    path.write_text(
        CONFIG.format(
            base_url=base_url,
            secret_env=SECRET_ENV,
            smtp_port=smtp_port,
            web_extra=web_extra,
            smtp_extra=smtp_extra,
            database_url=database_url,
        )
    )
    return load_settings(path)


class ArrivalLog(list):
    """The sink's list of received mail, with a way to wait for the next arrival."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = threading.Condition()

    def append(self, item) -> None:
        with self.changed:
            super().append(item)
            self.changed.notify_all()

    def wait_for(self, address: str, count: int = 1, timeout: float = 10.0) -> list:
        def arrived():
            return [r for r in self if address.lower() in (a.lower() for a in r.rcpt_tos)]

        with self.changed:
            self.changed.wait_for(lambda: len(arrived()) >= count, timeout=timeout)
            found = arrived()
        assert len(found) >= count, f"no mail for {address} within {timeout} s"
        return found


@contextmanager
def smtp_sink(**options):
    with SmtpSink(**options) as sink:
        sink.received = ArrivalLog()
        yield sink


def confirmation_link(message) -> str:
    """The confirmation link in a received message's text part."""
    text = message.get_body(preferencelist=("plain",)).get_content()
    match = re.search(r"https?://\S+/confirm/\S+", text)
    assert match, f"no confirmation link in: {text!r}"
    return match.group(0)


def listening_socket() -> tuple[socket.socket, str]:
    """A socket listening on 127.0.0.1 (port 0) and its base URL: connections made before
    uvicorn accepts wait in the backlog."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextmanager
def served(settings: Settings, sock: socket.socket, **options):
    """The app as ``briefcast web`` serves it (same uvicorn options), in a thread.

    Leaving the block stops the server, and uvicorn first waits for the requests' background
    tasks (the confirmation mails): count the mail after it."""
    import uvicorn

    from briefcast.web.app import create_app
    from briefcast.web.serving import server_config

    options.setdefault("log_level", "warning")
    server = uvicorn.Server(server_config(create_app(settings), settings, **options))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()
