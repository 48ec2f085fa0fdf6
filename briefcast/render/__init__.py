"""Rendering one edition for every channel: email, X, Telegram, Bluesky and Mastodon.

Importing a module of the package (the placeholders, say) does not import the
renderers: a process that plans a mailing list needs the one and not the others,
whose imports (twitter-text's patterns, the card layout) took it 0.8 s to start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from briefcast.render.errors import RenderError

if TYPE_CHECKING:
    from briefcast.render.edition import render_edition

__all__ = ["RenderError", "render_edition"]


def __getattr__(name: str):
    if name == "render_edition":
        from briefcast.render.edition import render_edition

        return render_edition
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
