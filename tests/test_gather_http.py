"""Gathering feeds over real HTTP on 127.0.0.1: conditional requests, size cap, failures."""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from briefcast.config import Settings
from briefcast.gather import gather

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
DAY = date(2026, 11, 20)


@dataclass
class Route:
    body: bytes
    content_type: str = "application/rss+xml; charset=utf-8"
    status: int = 200
    etag: str = ""
    send_length: bool = True
    hang: bool = False  # accept the request, then never answer


class FeedServer:
    """A tiny feed host: serves routes, honours If-None-Match with 304, records requests."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.release = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                server.requests.append((self.path, dict(self.headers)))
                route = server.routes.get(self.path.split("?")[0])
                if route is None:
                    self.send_error(404)
                    return
                if route.hang:
                    server.release.wait(30)
                    return
                if route.etag and self.headers.get("If-None-Match") == route.etag:
                    self.send_response(304)
                    self.send_header("ETag", route.etag)
                    self.end_headers()
                    return
                self.send_response(route.status)
                self.send_header("Content-Type", route.content_type)
                if route.etag:
                    self.send_header("ETag", route.etag)
                if route.send_length:
                    self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                # The client hangs up on purpose past the size cap.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(route.body)

            def log_message(self, *args):
                pass

        return Handler


@pytest.fixture
def server():
    feeds = FeedServer()
    feeds.thread.start()
    yield feeds
    feeds.release.set()
    feeds.httpd.shutdown()
    feeds.httpd.server_close()


@pytest.fixture(autouse=True)
def _no_data_override(monkeypatch):
    monkeypatch.delenv("BRIEFCAST_DATA", raising=False)


def make_settings(tmp_path: Path, sources: list[dict]) -> Settings:
    return Settings.model_validate(
        {
            "publication": {
                "name": "Test Ledger",
                "site_url": "https://ledger.example",
                "timezone": "Europe/Lisbon",
                "postal_address": "1 Quay Street",
                "sender_email": "brief@ledger.example",
            },
            "sources": sources,
            "base_dir": tmp_path,
        }
    )


def feed(name: str, url: str, **extra) -> dict:
    return {"name": name, "type": "feed", "url": url, **extra}


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_each_format_over_http(server, tmp_path):
    server.routes["/rss"] = Route(fixture("rss.xml"))
    server.routes["/atom"] = Route(fixture("atom.xml"), "application/atom+xml")
    server.routes["/json"] = Route(fixture("feed.json"), "application/feed+json")
    settings = make_settings(
        tmp_path,
        [feed("rss", server.url("/rss")), feed("atom", server.url("/atom")),
         feed("json", server.url("/json"))],
    )  # fmt: skip

    gathered = gather(settings, DAY)

    assert gathered.problems == []
    assert sorted((a.source, a.title) for a in gathered.articles) == [
        ("atom", "Crane No. 5 retires"),
        ("json", "Salt pans reopen to visitors"),
        ("rss", "Dockers’ union backs the plan"),
        ("rss", "Ferry timetable changes"),
    ]
    assert all(
        headers.get("User-Agent", "").startswith("briefcast/") for _, headers in server.requests
    )


def test_second_fetch_is_conditional_and_a_304_reuses_the_cached_body(server, tmp_path):
    server.routes["/rss"] = Route(fixture("rss.xml"), etag='"v1"')
    url = server.url("/rss?token=s3cr3t-feed-token")
    settings = make_settings(tmp_path, [feed("wire", url)])

    first = gather(settings, DAY)
    second = gather(settings, DAY)

    assert len(first.articles) == 2 and second.problems == []
    assert [a.model_dump() for a in second.articles] == [a.model_dump() for a in first.articles]
    (_, first_headers), (_, second_headers) = server.requests
    assert "If-None-Match" not in first_headers
    assert second_headers["If-None-Match"] == '"v1"'
    # The cache lives under the data folder and never records the URL or its token.
    cached = list((tmp_path / "var" / "feed-cache").iterdir())
    assert len(cached) == 1
    assert "s3cr3t" not in cached[0].read_text() and "s3cr3t" not in cached[0].name


def test_a_changed_feed_replaces_the_cached_body(server, tmp_path):
    server.routes["/rss"] = Route(fixture("rss.xml"), etag='"v1"')
    settings = make_settings(tmp_path, [feed("wire", server.url("/rss"))])
    gather(settings, DAY)

    server.routes["/rss"] = Route(fixture("incomplete.xml"), etag='"v2"')
    changed = gather(settings, DAY)
    again = gather(settings, DAY)

    assert [a.title for a in changed.articles] == ["Complete item"]
    assert [a.title for a in again.articles] == ["Complete item"]
    assert [h.get("If-None-Match") for _, h in server.requests] == [None, '"v1"', '"v2"']


@pytest.mark.parametrize("send_length", [True, False], ids=["declared", "streamed"])
def test_response_over_the_size_cap_is_refused(server, tmp_path, send_length):
    body = fixture("rss.xml").replace(b"</channel>", b"<!--" + b"x" * 200_000 + b"--></channel>")
    server.routes["/big"] = Route(body, send_length=send_length)
    server.routes["/ok"] = Route(fixture("atom.xml"), "application/atom+xml")
    settings = make_settings(
        tmp_path,
        [feed("big", server.url("/big"), max_bytes=50_000), feed("ok", server.url("/ok"))],
    )

    gathered = gather(settings, DAY)

    [problem] = gathered.problems
    assert problem.source == "big" and "50000-byte cap" in problem.reason
    assert [a.source for a in gathered.articles] == ["ok"]


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_failing_sources_are_reported_next_to_a_good_one(server, tmp_path):
    server.routes["/good"] = Route(fixture("rss.xml"))
    server.routes["/boom"] = Route(b"oops", "text/plain", status=500)
    server.routes["/home"] = Route(fixture("not-a-feed.html"), "text/html")
    server.routes["/broken"] = Route(fixture("malformed.xml"))
    server.routes["/hang"] = Route(b"", hang=True)
    settings = make_settings(
        tmp_path,
        [
            feed("unreachable", f"http://127.0.0.1:{unused_port()}/feed?key=hunter2"),
            feed("server-error", server.url("/boom")),
            feed("missing", server.url("/nope")),
            feed("home-page", server.url("/home")),
            feed("broken-xml", server.url("/broken")),
            feed("slow", server.url("/hang"), timeout_seconds=0.5),
            feed("good", server.url("/good")),
        ],
    )

    gathered = gather(settings, DAY)

    assert {a.source for a in gathered.articles} == {"good"} and len(gathered.articles) == 2
    reasons = {p.source: p.reason for p in gathered.problems}
    assert reasons["unreachable"].startswith("could not connect")
    assert "hunter2" not in reasons["unreachable"]
    assert reasons["server-error"].startswith("HTTP 500")
    assert reasons["missing"].startswith("HTTP 404")
    assert reasons["home-page"].startswith("not a feed")
    assert reasons["broken-xml"].startswith("malformed XML")
    assert reasons["slow"].startswith("timed out after 0.5s")
