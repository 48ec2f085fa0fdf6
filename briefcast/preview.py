"""Write a rendered edition to plain files for a person to look at."""

from __future__ import annotations

import json
from pathlib import Path

from briefcast.models import RenderedEdition


def write_preview(edition: RenderedEdition, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "email.html").write_text(edition.email.html, encoding="utf-8")
    (folder / "email.txt").write_text(
        f"Subject: {edition.email.subject}\nPreheader: {edition.email.preheader}\n\n"
        f"{edition.email.text}",
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
    return folder
