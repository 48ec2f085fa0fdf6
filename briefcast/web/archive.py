"""The archive: each sent edition's web version at ``/archive/{edition_id}``.

The flow saves every edition's email HTML, placeholders included, as
``<data dir>/archive/<edition_id>.html`` when the edition goes out. Served here with
neutral links: the unsubscribe link leads to the subscribe page and the view link to
the page itself.

An edition waiting for approval is saved in ``<data dir>/review/`` instead, and shown
only at its signed ``/review/{token}`` link (see ``links``): never listed, never cached.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from briefcast import tokens
from briefcast.config import Settings
from briefcast.render.placeholders import personalize
from briefcast.web import links
from briefcast.web.context import page, web_context

# Edition ids are dates, maybe with a suffix: no slashes, no leading dot, nothing to traverse with.
EDITION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class ArchivedEdition:
    edition_id: str
    title: str


def archive_dir(settings: Settings) -> Path:
    return settings.data_dir / "archive"


def review_dir(settings: Settings) -> Path:
    return settings.data_dir / "review"


def edition_path(settings: Settings, edition_id: str, folder: Path | None = None) -> Path | None:
    """The saved file for ``edition_id``, or None when the id is invalid or unknown."""
    if not EDITION_ID.fullmatch(edition_id):
        return None
    folder = folder or archive_dir(settings)
    path = folder / f"{edition_id}.html"
    if path.parent != folder or not path.is_file():
        return None
    return path


def _title(text: str, fallback: str) -> str:
    match = _TITLE.search(text)
    title = html.unescape(re.sub(r"\s+", " ", match.group(1))).strip() if match else ""
    return title or fallback


def list_editions(settings: Settings) -> list[ArchivedEdition]:
    """Every archived edition, newest id first."""
    folder = archive_dir(settings)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.glob("*.html"):
        if EDITION_ID.fullmatch(path.stem) and path.is_file():
            head = path.read_text(encoding="utf-8", errors="replace")[:4096]
            found.append(ArchivedEdition(path.stem, _title(head, path.stem)))
    return sorted(found, key=lambda edition: edition.edition_id, reverse=True)


def web_version(settings: Settings, edition_id: str, folder: Path | None = None) -> str | None:
    """The edition's HTML with neutral links, or None when there is no such edition."""
    path = edition_path(settings, edition_id, folder)
    if path is None:
        return None
    values = {
        "unsubscribe_url": links.subscribe_url(settings),
        "view_url": links.view_url(settings, edition_id),
        "first_name": "",
    }
    return personalize(path.read_text(encoding="utf-8"), values, html=True)


router = APIRouter()


@router.get("/archive", response_class=HTMLResponse)
def archive_index(request: Request):
    return page(request, "archive.html", editions=list_editions(web_context(request).settings))


@router.get("/archive/")
def archive_index_slash(request: Request):
    # Absolute, from the configured public URL: never from the request's Host header.
    return RedirectResponse(f"{links.base_url(web_context(request).settings)}/archive", 308)


def _no_such_edition(request: Request):
    return page(
        request,
        "problem.html",
        status_code=404,
        title="No such edition",
        message="There is no edition at this address. See the archive for all of them.",
    )


@router.get("/archive/{edition_id}", response_class=HTMLResponse)
def archived_edition(request: Request, edition_id: str):
    body = web_version(web_context(request).settings, edition_id)
    if body is None:
        return _no_such_edition(request)
    return HTMLResponse(body)


@router.get("/review/{token}", response_class=HTMLResponse)
def edition_for_review(request: Request, token: str):
    ctx = web_context(request)
    try:
        edition_id = links.read_review_token(ctx.secret, token)
    except tokens.BadToken:
        return _no_such_edition(request)
    body = web_version(ctx.settings, edition_id, review_dir(ctx.settings))
    if body is None:
        return _no_such_edition(request)
    return HTMLResponse(body)
