"""The reviewer's preview, served by ``briefcast serve`` itself: nothing else to start.

``briefcast serve`` starts :class:`PreviewServer` on ``[schedule] preview_host`` and
``preview_port`` and tells the runs it executes where it is (``BRIEFCAST_PREVIEW_URL``,
inherited by their subprocesses). A run links its preview there: one page with the email
as it will look (sample links and name filled in), its text version, the X posts and the
Telegram messages as a reader sees them. Every URL starts with a random token made at
start-up; the pages are rendered content only, never settings, and run no script.
"""

from __future__ import annotations

import html
import logging
import os
import re
import secrets
import threading
from functools import partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from briefcast.flows.telegram_view import telegram_html
from pydantic import ValidationError

from briefcast.models import RenderedEdition
from briefcast.preview import EDITION_FILE, sample_values, with_samples

URL_ENV = "BRIEFCAST_PREVIEW_URL"
DIR_ENV = "BRIEFCAST_PREVIEW_DIR"
UNSUBSCRIBE_SAMPLE = "unsubscribe-sample"

log = logging.getLogger("briefcast.preview")

_EDITION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,80}$")
_URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")

PAGE_POLICY = (
    "default-src 'none'; img-src https: http: data:; style-src 'unsafe-inline'; "
    "frame-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)
# The email as sent may carry remote images and fonts; no script runs, links open a new tab.
EMAIL_POLICY = (
    "default-src 'none'; img-src https: http: data:; style-src 'unsafe-inline' https:; "
    "font-src https: data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'; "
    "sandbox allow-popups allow-popups-to-escape-sandbox allow-same-origin"
)


def preview_url(settings, edition_id: str) -> str | None:
    """The served preview page of an edition, when this run was started by ``briefcast serve``
    for the same data folder; None otherwise (the run links its preview file instead)."""
    base = os.environ.get(URL_ENV)
    served_dir = os.environ.get(DIR_ENV)
    if not base or not served_dir:
        return None
    if Path(served_dir).resolve() != (settings.data_dir / "preview").resolve():
        return None
    return f"{base.rstrip('/')}/{quote(edition_id, safe='')}/"


def _linkify(escaped: str) -> str:
    return _URL.sub(
        lambda m: f'<a href="{m.group(0)}" target="_blank" rel="noopener">{m.group(0)}</a>',
        escaped,
    )


STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; margin: 0; background: #f4f4f5; color: #18181b; }
header, section { max-width: 980px; margin: 0 auto; padding: 12px 20px; }
h1 { font-size: 20px; } h2 { font-size: 17px; margin-top: 28px; }
iframe { width: 100%; height: 900px; border: 1px solid #d4d4d8; background: #fff; }
pre.text { white-space: pre-wrap; background: #fff; padding: 12px; border: 1px solid #d4d4d8; }
.post, .bubble { background: #fff; border: 1px solid #d4d4d8; border-radius: 12px;
  padding: 10px 14px; margin: 10px 0; white-space: pre-wrap; overflow-wrap: anywhere; }
.bubble { background: #effdde; max-width: 640px; }
.bubble img { max-width: 100%; border-radius: 8px; display: block; margin-bottom: 6px; }
.meta { color: #52525b; font-size: 13px; }
.tg-spoiler { background: #52525b; color: #52525b; }
"""


def edition_page(edition: RenderedEdition, base: str) -> str:
    """The whole preview of one edition; ``base`` is this edition's folder URL."""
    e = html.escape
    email = edition.email
    samples = _samples(base)
    text = with_samples(email.text, samples, html=False)
    posts = "".join(
        f'<div class="post">{_linkify(e(post.text))}'
        f'<div class="meta">weighted length {post.weighted_length}/280</div></div>'
        for post in edition.x_posts
    )
    bubbles = []
    photo = edition.telegram_photo
    if photo is not None and photo.url.startswith(("http://", "https://")):
        bubbles.append(
            f'<div class="bubble"><img src="{e(photo.url)}" alt="the photo">'
            f"{telegram_html(photo.caption)}"
            f'<div class="meta">Photo: <a href="{e(photo.url)}" target="_blank" '
            f'rel="noopener">{e(photo.url)}</a></div></div>'
        )
    bubbles += [
        f'<div class="bubble">{telegram_html(m.text)}</div>' for m in edition.telegram_messages
    ]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Preview: {e(edition.publication)} {e(edition.edition_id)}</title>
<style>{STYLE}</style></head><body>
<header><h1>{e(edition.publication)}: edition {e(edition.edition_id)} (preview)</h1>
<p class="meta">{_plural(len(edition.articles), "article")}. Sample links and name
(“{e(samples["first_name"])}”) stand where each reader's email has their own.</p></header>
<section><h2>Email</h2>
<p><b>Subject:</b> {e(email.subject)}<br><b>Preheader:</b> {e(email.preheader)}</p>
<p><a href="email.html" target="_blank" rel="noopener">Open the email on its own page</a></p>
<iframe src="email.html" title="The email as it will look"></iframe>
<h2>Text version</h2><pre class="text">{_linkify(e(text))}</pre></section>
<section><h2>X ({_plural(len(edition.x_posts), "post")})</h2>{posts or "<p>No posts.</p>"}</section>
<section><h2>Telegram ({_plural(len(edition.telegram_messages), "message")})</h2>
{"".join(bubbles) or "<p>No messages.</p>"}</section>
</body></html>"""


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _samples(base: str) -> dict[str, str]:
    root = base.rstrip("/").rsplit("/", 1)[0]
    return sample_values(f"{base}email.html", f"{root}/{UNSUBSCRIBE_SAMPLE}")


def email_page(edition: RenderedEdition, base: str) -> str:
    """The email's HTML with sample values; its links open in a new tab."""
    page = with_samples(edition.email.html, _samples(base), html=True)
    target = '<base target="_blank">'
    head = re.search(r"<head[^>]*>", page, re.IGNORECASE)
    return page[: head.end()] + target + page[head.end() :] if head else target + page


UNSUBSCRIBE_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Unsubscribe (sample)</title><style>body{font:16px system-ui;margin:40px}</style></head>
<body><h1>Unsubscribe link (sample)</h1><p>In a reader's email this link leads to their own
unsubscribe page on <code>briefcast web</code>. In the preview it does nothing.</p></body></html>"""


class _Handler(BaseHTTPRequestHandler):
    server_version = "briefcast-preview"

    def __init__(self, *args, token: str, root: Path, **kwargs) -> None:
        self.token = token
        self.root = root
        super().__init__(*args, **kwargs)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the stdlib's name
        log.debug("preview: " + format, *args)

    def _send(self, status: int, body: str, policy: str = PAGE_POLICY) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Security-Policy", policy)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _not_found(self) -> None:
        self._send(HTTPStatus.NOT_FOUND, "<!doctype html><title>Not found</title><p>Not found.")

    def do_HEAD(self) -> None:  # noqa: N802 - the stdlib's name
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        parts = [unquote(p) for p in urlsplit(self.path).path.split("/")]
        if len(parts) < 3 or parts[0] != "" or not secrets.compare_digest(parts[1], self.token):
            return self._not_found()
        rest = parts[2:]
        if rest == [UNSUBSCRIBE_SAMPLE]:
            return self._send(HTTPStatus.OK, UNSUBSCRIBE_PAGE)
        if len(rest) != 2 or not _EDITION_ID.match(rest[0]) or ".." in rest[0]:
            return self._not_found()
        edition = self._edition(rest[0])
        if edition is None:
            return self._not_found()
        host = self.headers.get("Host") or f"127.0.0.1:{self.server.server_address[1]}"
        base = f"http://{host}/{self.token}/{quote(rest[0], safe='')}/"
        if rest[1] == "":
            return self._send(HTTPStatus.OK, edition_page(edition, base))
        if rest[1] == "email.html":
            return self._send(HTTPStatus.OK, email_page(edition, base), EMAIL_POLICY)
        return self._not_found()

    def _edition(self, edition_id: str) -> RenderedEdition | None:
        path = self.root / edition_id / EDITION_FILE
        try:
            return RenderedEdition.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValidationError):
            return None


class PreviewServer:
    """A small threaded HTTP server for the previews under ``root`` (``<data>/preview``)."""

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.root = root
        self.token = secrets.token_urlsafe(18)
        handler = partial(_Handler, token=self.token, root=root)
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.host = host
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, name="briefcast-preview", daemon=True
        )

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/{self.token}"

    def start(self) -> PreviewServer:
        self.thread.start()
        return self

    def announce(self) -> None:
        """Tell the runs this process starts (their subprocesses inherit it) where it is."""
        os.environ[URL_ENV] = self.url
        os.environ[DIR_ENV] = str(self.root.resolve())

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
