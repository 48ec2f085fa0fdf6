"""Read a feed's bytes from an http(s) URL or a local file, within a size cap.

HTTP requests are conditional: the ETag and Last-Modified of the last good
response are kept per URL in a small JSON file together with its body, so a
``304 Not Modified`` reuses the body we already have.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import httpx

USER_AGENT = "briefcast/0.1 (daily brief builder)"
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)


class SourceFailure(Exception):
    """The source could not be read. The message is the reason shown to the operator."""


@dataclass(frozen=True)
class Fetched:
    body: bytes
    base_url: str = ""  # where the body came from, for resolving relative links (http only)
    content_type: str = ""
    from_cache: bool = False


def is_http(location: str) -> bool:
    return urlsplit(location.strip()).scheme.lower() in {"http", "https"}


def _where(url: str) -> str:
    """Host and path only: a feed URL's query string may carry an access token."""
    parts = urlsplit(url)
    return f"{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


class FeedCache:
    """ETag, Last-Modified and last body per URL, one JSON file each (named by a hash)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _file(self, url: str) -> Path:
        return self.folder / f"{hashlib.sha256(url.encode()).hexdigest()[:32]}.json"

    def load(self, url: str) -> dict | None:
        try:
            entry = json.loads(self._file(url).read_text(encoding="utf-8"))
            entry["body"] = base64.b64decode(entry["body"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return entry

    def save(self, url: str, *, etag: str, last_modified: str, content_type: str, body: bytes):
        self.folder.mkdir(parents=True, exist_ok=True)
        entry = {
            "etag": etag,
            "last_modified": last_modified,
            "content_type": content_type,
            "body": base64.b64encode(body).decode("ascii"),
        }
        # Write then rename, so a crash never leaves a half-written cache entry behind.
        fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(entry, handle)
        os.replace(tmp, self._file(url))


def fetch_url(url: str, *, cache: FeedCache, timeout: float, max_bytes: int) -> Fetched:
    """GET ``url`` (conditionally, if we have validators); raise SourceFailure on any failure."""
    headers = {"User-Agent": USER_AGENT, "Accept": ACCEPT}
    cached = cache.load(url)
    if cached:
        if cached.get("etag"):
            headers["If-None-Match"] = cached["etag"]
        if cached.get("last_modified"):
            headers["If-Modified-Since"] = cached["last_modified"]
    deadline = time.monotonic() + timeout
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=True, max_redirects=5) as client,
            client.stream("GET", url, headers=headers) as response,
        ):
            base = str(response.url)
            if response.status_code == 304 and cached:
                return Fetched(cached["body"], base, cached.get("content_type", ""), True)
            if not response.is_success:
                raise SourceFailure(
                    f"HTTP {response.status_code} {response.reason_phrase} from {_where(base)}"
                )
            body = _read_capped(response, max_bytes, deadline, timeout)
    except httpx.TimeoutException:
        raise SourceFailure(f"timed out after {timeout:g}s waiting for {_where(url)}") from None
    except httpx.TooManyRedirects:
        raise SourceFailure(f"too many redirects from {_where(url)}") from None
    except httpx.ConnectError as exc:
        raise SourceFailure(f"could not connect to {_where(url)} ({exc})") from None
    except httpx.HTTPError as exc:
        raise SourceFailure(f"request to {_where(url)} failed ({type(exc).__name__})") from None
    content_type = response.headers.get("content-type", "")
    etag = response.headers.get("etag", "")
    last_modified = response.headers.get("last-modified", "")
    if etag or last_modified:
        cache.save(
            url, etag=etag, last_modified=last_modified, content_type=content_type, body=body
        )
    return Fetched(body, base, content_type)


def _read_capped(response: httpx.Response, max_bytes: int, deadline: float, timeout: float):
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise SourceFailure(f"response is {int(declared)} bytes, over the {max_bytes}-byte cap")
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise SourceFailure(f"response exceeded the {max_bytes}-byte cap")
        # httpx's timeout is per read; a server that trickles bytes must not hold us forever.
        if time.monotonic() > deadline:
            raise SourceFailure(f"timed out after {timeout:g}s reading the response")
    return bytes(body)


def read_file(path: Path, *, max_bytes: int) -> Fetched:
    """A local feed file's bytes; raise SourceFailure if missing, unreadable or too big."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise SourceFailure(f"not a file: {path}")
        if size > max_bytes:
            raise SourceFailure(f"file is {size} bytes, over the {max_bytes}-byte cap: {path}")
        return Fetched(path.read_bytes())
    except FileNotFoundError:
        raise SourceFailure(f"file not found: {path}") from None
    except OSError as exc:
        raise SourceFailure(f"cannot read {path}: {exc.strerror or exc}") from None


def local_path(location: str) -> Path | None:
    """The filesystem path a feed location names (plain path or file: URL), else None."""
    parts = urlsplit(location.strip())
    if parts.scheme.lower() == "file":
        return Path(url2pathname(parts.path))
    if parts.scheme and len(parts.scheme) > 1:  # one letter is a Windows drive, not a scheme
        return None
    return Path(location.strip())
