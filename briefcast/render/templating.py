"""Jinja2 environments for the edition's templates.

Templates are looked up first in the configured templates folder, then in the
built-in ones (package data, ``briefcast.templates``), so a newsroom can override one
template at a time. Markup templates (``.mjml.j2``, ``.html.j2``) are autoescaped; plain-text
templates (``.txt.j2``) are not, because their output is never parsed as HTML.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, TemplateError

from briefcast.config import Settings
from briefcast.render.errors import RenderError
from briefcast.resources import BUILTIN_TEMPLATES
from briefcast.text_caps import cap

TEXT_SUFFIX = ".txt.j2"


TEXT_WIDTH = 78  # RFC 5322's recommended line length for the text part


def wrap(text: str, width: int = TEXT_WIDTH, indent: str = "", first: str | None = None) -> str:
    """Wrap each line of plain text at ``width``, never breaking a long word or URL;
    ``first`` starts the first line (a list marker), ``indent`` the lines after it."""
    lines = []
    for number, line in enumerate(str(text).split("\n")):
        lead = (indent if first is None else first) if number == 0 else indent
        lines.append(
            textwrap.fill(
                line,
                width,
                initial_indent=lead,
                subsequent_indent=indent,
                break_long_words=False,
                break_on_hyphens=False,
            )
            or line
        )
    return "\n".join(lines)


class Templates:
    """The two environments for one render, sharing one loader."""

    def __init__(self, folder: Path) -> None:
        folders = [folder]
        if folder.resolve() != BUILTIN_TEMPLATES.resolve():
            folders.append(BUILTIN_TEMPLATES)
        loader = FileSystemLoader([str(f) for f in folders])
        common = dict(
            loader=loader, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True
        )
        self.markup = Environment(autoescape=True, **common)
        self.text = Environment(autoescape=False, keep_trailing_newline=False, **common)
        self.text.filters["wrap"] = wrap
        for env in (self.markup, self.text):
            env.filters["cap"] = cap  # {{ source.note | cap(320) }}

    @classmethod
    def for_settings(cls, settings: Settings) -> Templates:
        return cls(settings.templates_dir)

    def get(self, name: str) -> Template:
        """The template, from the environment whose escaping matches its target."""
        env = self.text if name.endswith(TEXT_SUFFIX) else self.markup
        return env.get_template(name)

    def render(self, name: str, context: dict[str, Any], **extra: Any) -> str:
        """Render ``name`` with ``context``, ``extra`` taking precedence."""
        try:
            return self.get(name).render({**context, **extra})
        except TemplateError as exc:
            raise RenderError(f"template {name}: {exc}") from exc
