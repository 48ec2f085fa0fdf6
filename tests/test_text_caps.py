"""The shared capping helper: at a word, with an ellipsis, never inside a grapheme."""

from __future__ import annotations

import regex

from briefcast.text_caps import cap, utf16_length


def graphemes(text: str) -> list[str]:
    return regex.findall(r"\X", text)


def test_short_text_is_kept_on_one_line():
    assert cap("  Ferry   crews\ncall off strike ", 80) == "Ferry crews call off strike"


def test_long_text_is_cut_at_a_word_with_an_ellipsis():
    text = "Harbour board weighs three bids for the old grain silo on the quay"
    capped = cap(text, 30)
    assert capped == "Harbour board weighs three…"
    assert len(capped) <= 30


def test_trailing_punctuation_is_not_left_before_the_ellipsis():
    assert cap("Bids, offers, and more words here", 16) == "Bids, offers…"


def test_flags_and_emoji_sequences_are_never_split():
    flags = "🇵🇹" * 50
    for limit in range(3, 20):
        capped = cap(flags, limit)
        assert len(capped) <= limit
        assert all(g in {"🇵🇹", "…"} for g in graphemes(capped)), (limit, capped)
    family = "👩‍👩‍👧‍👦 " * 20
    for limit in range(5, 40):
        assert all(g in {"👩‍👩‍👧‍👦", " ", "…"} for g in graphemes(cap(family, limit)))


def test_measured_in_utf16_units_for_telegram():
    text = "🌊 " * 100
    capped = cap(text, 21, measure=utf16_length)
    assert utf16_length(capped) <= 21 and capped.endswith("…")


def test_scripts_without_spaces_are_cut_between_characters():
    capped = cap("港湾計画が承認された。" * 10, 12)
    assert len(capped) == 12 and capped.endswith("…")
