"""Builders shared by the tests: a rendered edition, a publication's settings, Chromium's flags.

Each builder fills in only what a test does not look at; a test passes what it asserts on.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from briefcast.config import Settings
from briefcast.models import EmailVariant, RenderedEdition

# The publication most channel tests send for; add sender_name, web_base_url, ... per test.
GAZETTE = {
    "name": "The Test Gazette",
    "site_url": "https://gazette.example",
    "postal_address": "1 Main St",
    "sender_email": "brief@gazette.example",
}

# The publication the renderer tests render for: harbour_ledger_settings.
HARBOUR_LEDGER = {
    "name": "The Harbour Ledger",
    "site_url": "https://ledger.example.org",
    "postal_address": "12 Harbour Road",
    "sender_email": "brief@ledger.example.org",
}

# Headless Chromium as the browser tests launch it (no sandbox: CI runs as root).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def make_edition(
    edition_id: str = "2026-11-20",
    *,
    edition_date: date = date(2026, 11, 20),
    subject: str = "s",
    html: str = "<p>h</p>",
    text: str = "t",
    **fields,
) -> RenderedEdition:
    """An edition of The Test Gazette with no stories, posts or Telegram messages.

    ``subject``, ``html`` and ``text`` make its email; any other RenderedEdition field
    (``x_posts``, ``telegram_messages``, ``telegram_photo``, ...) can be given as a keyword.
    """
    values = dict(
        edition_id=edition_id,
        edition_date=edition_date,
        publication="The Test Gazette",
        site_url="https://gazette.example",
        articles=[],
        email=EmailVariant(subject=subject, preheader="p", html=html, text=text),
        x_posts=[],
        x_thread=False,
        telegram_messages=[],
    )
    return RenderedEdition(**{**values, **fields})


def gazette_settings(
    tmp_path: Path, *, database: str = "briefcast.db", **publication: str
) -> Settings:
    """Settings for The Test Gazette (GAZETTE plus ``publication``), its data in tmp_path.

    The data folder is tmp_path/data; the database is the SQLite file tmp_path/``database``.
    """
    return Settings.model_validate(
        {
            "publication": {**GAZETTE, **publication},
            "data_dir": str(tmp_path / "data"),
            "database": {"url": f"sqlite:///{tmp_path / database}"},
        }
    )


def harbour_ledger_settings(
    tmp_path: Path, *, edition: dict | None = None, **publication: str
) -> Settings:
    """Settings for The Harbour Ledger (HARBOUR_LEDGER plus ``publication``) based in tmp_path.

    ``edition`` is the [edition] table, if the test sets one.
    """
    values = {"publication": {**HARBOUR_LEDGER, **publication}, "base_dir": tmp_path}
    if edition is not None:
        values["edition"] = edition
    return Settings.model_validate(values)
