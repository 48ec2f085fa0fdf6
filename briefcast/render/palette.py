"""The edition's colours, light and dark, derived from the brand colour in config.

Whatever brand colour a newsroom picks, every text colour keeps a contrast of at least
4.5:1 (WCAG AA) against every background it is drawn on, in both schemes: the brand
colour is darkened (light scheme) or lightened (dark scheme) until it does.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

MIN_CONTRAST = 4.5
HEX = re.compile(r"^#[0-9a-fA-F]{6}$")

# (foreground, background) pairs a template actually draws; the test checks each one.
TEXT_PAIRS = [
    ("text", "card"),
    ("muted", "card"),
    ("accent", "card"),
    ("text", "page"),
    ("muted", "page"),
    ("accent", "page"),
    ("text", "tint"),
    ("muted", "tint"),
    ("accent", "tint"),
    ("on_accent", "accent"),
]


@dataclass(frozen=True)
class Scheme:
    page: str  # behind the cards
    card: str
    tint: str  # the editor's view, the teaser, the table of contents
    rule: str  # hairlines; decoration, not text
    text: str
    muted: str
    accent: str  # links, kickers, buttons
    on_accent: str  # text on an accent button

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class Palette:
    light: Scheme
    dark: Scheme


def _rgb(color: str) -> tuple[float, float, float]:
    return tuple(int(color[i : i + 2], 16) / 255 for i in (1, 3, 5))  # type: ignore[return-value]


def _hex(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{round(max(0.0, min(1.0, c)) * 255):02x}" for c in rgb)


def luminance(color: str) -> float:
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in _rgb(color))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(first: str, second: str) -> float:
    """WCAG contrast ratio of two ``#rrggbb`` colours, 1 to 21."""
    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def mix(color: str, other: str, amount: float) -> str:
    """``color`` moved ``amount`` (0 to 1) of the way towards ``other``."""
    a, b = _rgb(color), _rgb(other)
    return _hex(tuple(x + (y - x) * amount for x, y in zip(a, b, strict=True)))


def readable_on(color: str, backgrounds: list[str], towards: str) -> str:
    """``color``, moved towards ``towards`` (black or white) just enough to reach
    MIN_CONTRAST against every one of ``backgrounds``."""
    for step in range(101):
        candidate = mix(color, towards, step / 100)
        if all(contrast(candidate, bg) >= MIN_CONTRAST + 0.05 for bg in backgrounds):
            return candidate
    return towards


def palette(brand: str) -> Palette:
    if not HEX.match(brand):
        raise ValueError(f"brand colour must be #rrggbb, not {brand!r}")
    brand = brand.lower()
    page, card = "#f4f2ee", "#ffffff"
    tint = mix(brand, card, 0.92)
    light = Scheme(
        page=page,
        card=card,
        tint=tint,
        rule="#e4e1da",
        text="#1c1c1e",
        muted=readable_on("#5f6368", [card, page, tint], "#000000"),
        accent=readable_on(brand, [card, page, tint], "#000000"),
        on_accent="#ffffff",
    )
    dark_page, dark_card = "#121316", "#1c1d21"
    dark_tint = mix(brand, dark_card, 0.84)
    dark_accent = readable_on(brand, [dark_card, dark_page, dark_tint], "#ffffff")
    dark = Scheme(
        page=dark_page,
        card=dark_card,
        tint=dark_tint,
        rule="#34363c",
        text="#ececee",
        muted=readable_on("#a4a8b0", [dark_card, dark_page, dark_tint], "#ffffff"),
        accent=dark_accent,
        on_accent=readable_on("#121316", [dark_accent], "#000000"),
    )
    # The light accent button needs white text to read: the accent was darkened for that.
    light = Scheme(
        **{**light.as_dict(), "accent": readable_on(light.accent, ["#ffffff"], "#000000")}
    )
    return Palette(light=light, dark=dark)
