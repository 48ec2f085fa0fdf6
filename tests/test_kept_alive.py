"""Kept-alive HTTPS connections (channels/kept_alive.py) against a TLS server on 127.0.0.1.

The certificate is made for the test; the client trusts it only through SSL_CERT_FILE,
as an operator would point it at a corporate CA, so verification stays on.
"""

from __future__ import annotations

import ssl
import threading
import urllib.error
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from briefcast.channels.kept_alive import KeptAlive
from support import self_signed_certificate, server_tls


class _TlsServer:
    def __init__(self, certificate: tuple[str, str]) -> None:
        self.connections = 0
        self.bodies: list[bytes] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                return

            def setup(self) -> None:
                super().setup()
                server.connections += 1

            def do_POST(self) -> None:
                server.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        tls = server_tls(certificate)
        self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}/v3/mail/send"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def tls(tmp_path):
    certificate = self_signed_certificate(tmp_path)
    server = _TlsServer(certificate)
    server.cert_path = certificate[0]
    yield server
    server.stop()


def test_requests_share_one_verified_tls_connection(tls, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.cert_path))
    client = KeptAlive(tls.url, timeout=5)

    answers = [client.post("/v3/mail/send", b"request %d" % n, {}) for n in range(3)]
    client.close()

    assert [status for status, *_ in answers] == [202, 202, 202]
    assert tls.bodies == [b"request 0", b"request 1", b"request 2"]
    assert tls.connections == 1 and client.opened == 1


def test_a_certificate_nobody_vouches_for_is_refused_before_anything_is_sent(tls, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    client = KeptAlive(tls.url, timeout=5)

    with pytest.raises(urllib.error.URLError) as caught:  # the channel's "never arrived"
        client.post("/v3/mail/send", b"secret body", {})
    client.close()

    assert isinstance(caught.value.reason, ssl.SSLCertVerificationError)
    assert tls.bodies == []


def test_a_client_closed_between_runs_opens_a_new_connection_and_closes_it_again(tls, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.cert_path))
    client = KeptAlive(tls.url, timeout=5)
    client.post("/v3/mail/send", b"first", {})
    client.close()

    status, *_ = client.post("/v3/mail/send", b"second", {})
    client.close()

    assert status == 202 and tls.bodies == [b"first", b"second"]
    assert tls.connections == 2 and client.opened == 2
