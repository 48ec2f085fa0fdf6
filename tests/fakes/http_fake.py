"""Plumbing the HTTP fakes share: a threaded server on a free port, and a JSON handler."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

from .fault_mix import answered, unanswered


class FakeHTTPServer:
    """Control of a fake that answers over HTTP.

    The fake sets ``host``, and in ``__post_init__`` ``_faults``, ``_release`` and
    ``_server`` (None until started).
    """

    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        return f"http://{self.host}:{self._server.server_address[1]}"

    def on_call(self, number: int, fault) -> None:
        self._faults[number] = fault

    def release(self) -> None:
        self._release.set()

    def _serve(self, handler: type[BaseHTTPRequestHandler], state_attr: str = "state") -> Self:
        """Start answering with a subclass of ``handler`` whose ``state_attr`` is this fake."""
        bound = type("Handler", (handler,), {state_attr: self})
        self._server = ThreadingHTTPServer((self.host, 0), bound)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class JsonHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def finish(self) -> None:
        answered(self)  # what this connection carried is off the wire
        super().finish()

    def log_message(self, format, *args) -> None:  # keep test output quiet
        return

    def _content_type(self, status: int, body: dict) -> str:
        return "application/json; charset=utf-8"

    def _send(self, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", self._content_type(status, body))
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # a client that timed out has gone away
            unanswered(self)

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
