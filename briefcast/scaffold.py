"""`briefcast init`: the files of a new newsroom folder, written only where nothing exists yet.

The config and the example article are filled in from the package's defaults
(config/newsroom.toml and config/example-article.md in the repository); the sample
subscribers and, when asked for, a copy of the templates come from the package too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from string import Template
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email

from briefcast.resources import BUILTIN_TEMPLATES, DEFAULTS, SAMPLE

CONFIG_NAME = "briefcast.toml"
TEMPLATE_SUFFIXES = (".j2", ".html", ".css", ".txt", ".mjml")


class ScaffoldError(ValueError):
    """A value given for the newsroom is unusable, or a file is already there."""


@dataclass(frozen=True)
class Newsroom:
    name: str
    timezone: str
    sender: str
    site_url: str = ""
    postal_address: str = ""

    def checked(self) -> Newsroom:
        name = self.name.strip()
        if not name or any(ord(c) < 32 for c in name):
            raise ScaffoldError("--name: give the publication's name (one line)")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ScaffoldError(
                f"--timezone: unknown time zone {self.timezone!r} (IANA, e.g. Europe/Lisbon)"
            ) from None
        try:
            sender = validate_email(self.sender, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise ScaffoldError(f"--sender: {exc}") from None
        site_url = self.site_url.strip() or f"https://{sender.rpartition('@')[2]}"
        if not re.match(r"^https?://[^\s/]+", site_url):
            raise ScaffoldError("--site-url: give an http(s) URL")
        return Newsroom(name, self.timezone, sender, site_url.rstrip("/"), self.postal_address)


def toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def files_for(newsroom: Newsroom, now: datetime, templates: bool) -> dict[str, str]:
    """Relative path -> content of every file `init` writes."""
    local = now.astimezone(ZoneInfo(newsroom.timezone))
    today = local.date().isoformat()
    templates_line = (
        'templates = "templates"   # your copy; delete a file to use the built-in one again'
        if templates
        else '# templates = "templates"   # a folder with only the templates you change: each\n'
        "#                            file there replaces the built-in one of the same name"
    )
    config = Template((DEFAULTS / "newsroom.toml").read_text(encoding="utf-8")).substitute(
        name=newsroom.name,
        today=today,
        name_toml=toml_string(newsroom.name),
        timezone_toml=toml_string(newsroom.timezone),
        sender_toml=toml_string(newsroom.sender),
        site_url_toml=toml_string(newsroom.site_url),
        postal_address_toml=toml_string(newsroom.postal_address),
        templates_line=templates_line,
    )
    article = Template((DEFAULTS / "example-article.md").read_text(encoding="utf-8")).substitute(
        title_yaml=json.dumps(f"Welcome to {newsroom.name}'s daily brief", ensure_ascii=False),
        url_yaml=json.dumps(f"{newsroom.site_url}/{today}/welcome"),
        published=local.replace(microsecond=0).isoformat(),
    )
    files = {
        CONFIG_NAME: config,
        f"articles/{today}-welcome.md": article,
        "subscribers.csv": (SAMPLE / "subscribers.csv").read_text(encoding="utf-8"),
        ".gitignore": "var/\n",
    }
    if templates:
        for path in sorted(BUILTIN_TEMPLATES.rglob("*")):
            if path.is_file() and path.name.endswith(TEMPLATE_SUFFIXES):
                relative = path.relative_to(BUILTIN_TEMPLATES).as_posix()
                files[f"templates/{relative}"] = path.read_text(encoding="utf-8")
    return files


def write_newsroom(folder: Path, files: dict[str, str]) -> list[Path]:
    """Write every file, or none: an existing one is never overwritten."""
    existing = [name for name in files if (folder / name).exists()]
    if existing:
        raise ScaffoldError(
            f"{folder}: already has {', '.join(existing)}; nothing was written "
            "(choose an empty folder, or move those files away)"
        )
    written = []
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8") as handle:
            handle.write(content)
        written.append(path)
    return written
