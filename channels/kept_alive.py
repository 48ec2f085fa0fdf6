"""One kept-alive HTTP connection per sending thread, for an API called many times in a row.

A new connection per request costs a TCP handshake and, over HTTPS, a TLS one: two
or three round trips to a distant API before the request leaves, and the CPU of
the key exchange, a thousand times for a million recipients. Each sender thread
keeps its connection and reuses it.

Reusing a connection must not turn a delivered request into one sent twice, nor an
undelivered one into one in doubt. A connection the server closed while it was idle
(its keep-alive timeout) is found before the request goes, and replaced: a socket
that is readable while no answer is due has been closed, or is in a state we do not
trust. A failure while the request is being written means it never arrived whole, so
the server cannot have acted on it: it is raised as ``urllib.error.URLError``, as
urllib does for a request it could not send. Anything after that (no answer, a cut
answer) is raised as it comes, and the caller counts it as in doubt.
"""

from __future__ import annotations

import http.client
import select
import ssl
import threading
import time
import urllib.error
import urllib.parse

IDLE_SECONDS = 4.0  # a connection unused for longer is not trusted: servers close idle ones


class KeptAlive:
    """POSTs to one origin, each thread on its own connection, kept between requests."""

    def __init__(self, url: str, timeout: float, idle_seconds: float = IDLE_SECONDS) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port
        self.timeout = timeout
        self.idle_seconds = idle_seconds
        self.opened = 0  # connections made so far
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[http.client.HTTPConnection] = set()
        self._tls = ssl.create_default_context() if self.https else None

    def post(
        self, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, str, http.client.HTTPMessage, bytes]:
        """Status, reason, headers and body of the answer."""
        conn = self._connection()
        try:
            conn.request("POST", path, body=body, headers=headers)
        except (OSError, http.client.HTTPException) as exc:  # it never arrived whole
            self._discard(conn)
            raise urllib.error.URLError(exc) from exc
        try:
            answer = conn.getresponse()
            data = answer.read()
        except BaseException:
            self._discard(conn)
            raise
        if answer.will_close:
            self._discard(conn)
        else:
            self._local.used = time.monotonic()
        return answer.status, answer.reason, answer.headers, data

    def close(self) -> None:
        with self._lock:
            connections, self._open = self._open, set()
        for conn in connections:
            conn.close()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and (conn not in self._open or not self._reusable(conn)):
            self._discard(conn)
            conn = None
        if conn is None:
            if self.https:
                conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=self.timeout, context=self._tls
                )
            else:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self._local.conn = conn
            with self._lock:
                self._open.add(conn)
                self.opened += 1
        return conn

    def _reusable(self, conn: http.client.HTTPConnection) -> bool:
        if conn.sock is None:  # never connected, or closed by http.client
            return True
        if time.monotonic() - getattr(self._local, "used", 0.0) > self.idle_seconds:
            return False
        poller = select.poll()
        poller.register(conn.sock, select.POLLIN)
        return not poller.poll(0)

    def _discard(self, conn: http.client.HTTPConnection) -> None:
        conn.close()
        with self._lock:
            self._open.discard(conn)
        if getattr(self._local, "conn", None) is conn:
            self._local.conn = None
