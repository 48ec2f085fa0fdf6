"""Write a rendered edition to plain files for a person to look at."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

from briefcast.models import RenderedEdition
from briefcast.render.placeholders import personalize

SAMPLE_FIRST_NAME = "Alex"
EDITION_FILE = "edition.json"  # what the preview served by `briefcast serve` is built from


def sample_values(view_url: str, unsubscribe_url: str) -> dict[str, str]:
    """What a preview shows where each reader's email has their own links and name."""
    return {
        "view_url": view_url,
        "unsubscribe_url": unsubscribe_url,
        "first_name": SAMPLE_FIRST_NAME,
    }


def public_samples(web_base_url: str, edition_id: str) -> dict[str, str]:
    """Sample values as a reader's email has them: the archive page, an unsubscribe link."""
    base = web_base_url.rstrip("/")
    return sample_values(
        f"{base}/archive/{quote(edition_id, safe='')}",
        f"{base}/u/sample-each-reader-gets-their-own-link",
    )


def with_samples(text: str, values: dict[str, str] | None, *, html: bool) -> str:
    return personalize(text, values, html=html) if values else text


def write_preview(
    edition: RenderedEdition, folder: Path, samples: dict[str, str] | None = None
) -> Path:
    """The preview files; ``samples`` fill the per-reader placeholders (see public_samples)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "email.html").write_text(
        with_samples(edition.email.html, samples, html=True), encoding="utf-8"
    )
    (folder / "email.txt").write_text(
        f"Subject: {edition.email.subject}\nPreheader: {edition.email.preheader}\n\n"
        f"{with_samples(edition.email.text, samples, html=False)}",
        encoding="utf-8",
    )
    (folder / "x.json").write_text(
        json.dumps([p.model_dump() for p in edition.x_posts], ensure_ascii=False, indent=2),
        encoding="utf-8",
    )
    for platform, posts in (
        ("bluesky", edition.bluesky_posts),
        ("mastodon", edition.mastodon_posts),
    ):
        (folder / f"{platform}.json").write_text(
            json.dumps([p.model_dump() for p in posts], ensure_ascii=False, indent=2),
            encoding="utf-8",
        )
    telegram = {
        "photo": edition.telegram_photo.model_dump() if edition.telegram_photo else None,
        "messages": [m.text for m in edition.telegram_messages],
    }
    (folder / "telegram.json").write_text(
        json.dumps(telegram, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    (folder / EDITION_FILE).write_text(edition.model_dump_json(), encoding="utf-8")
    return folder
