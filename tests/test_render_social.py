"""Bluesky and Mastodon posts as rendered: each platform's counting, links and thread opener."""

from __future__ import annotations

from datetime import UTC, date, datetime

from support import harbour_ledger_settings

from briefcast.models import Article, Gathered
from briefcast.render import render_edition
from briefcast.render.social_posts import bluesky_post, mastodon_post
from briefcast.render.social_text import graphemes, mastodon_length

LONG_URL = "https://ledger.example.org/2026/11/20/" + "council-votes-on-the-harbour-" * 4


def test_bluesky_link_is_shown_short_and_its_facet_covers_it_in_utf8_bytes():
    post = bluesky_post(["Café 🌊 reopens", "日本語の見出し"], LONG_URL)

    [facet] = post.links
    shown = post.text.encode()[facet.byte_start : facet.byte_end].decode()
    assert facet.uri == LONG_URL
    assert shown.startswith("ledger.example.org/2026/") and shown.endswith("…")
    assert post.text.endswith(shown) and graphemes(shown) == 30


def test_bluesky_post_is_cut_at_a_word_to_300_graphemes_with_the_link_whole():
    title = "Harbour " + "family 👨‍👩‍👧 news " * 60
    post = bluesky_post([title, "dek"], LONG_URL)

    assert graphemes(post.text) <= 300 and post.length == graphemes(post.text)
    assert "…" in post.text and "dek" not in post.text
    body = post.text.split("\n\n")[0]
    assert body.endswith("…") and not body.endswith(" …")
    assert "\u200d…" not in post.text  # never inside the family emoji


def test_mastodon_counts_any_url_as_23_and_keeps_the_full_link():
    post = mastodon_post(["Title", "A dek"], LONG_URL)

    assert LONG_URL in post.text
    assert post.length == mastodon_length(post.text) == graphemes("Title\n\nA dek\n\n") + 23


def test_mastodon_post_over_500_is_shortened():
    post = mastodon_post(["word " * 200], LONG_URL)

    assert post.length <= 500 and post.text.endswith(LONG_URL)


def test_rendered_edition_has_threads_for_both_from_the_opener_templates(tmp_path):
    settings = harbour_ledger_settings(tmp_path)
    article = Article(
        key="a",
        url="https://ledger.example.org/a",
        title="The ferry timetable changes",
        dek="From Monday.",
        source="Desk",
        published=datetime(2026, 11, 20, 8, tzinfo=UTC),
    )
    gathered = Gathered(edition_date=date(2026, 11, 20), articles=[article])

    edition = render_edition(settings, gathered)

    opener_b, story_b = edition.bluesky_posts
    opener_m, story_m = edition.mastodon_posts
    assert opener_b.text.startswith("Today's brief from The Harbour Ledger")
    assert opener_m.text.startswith("Today's brief from The Harbour Ledger")
    assert story_b.article_key == story_m.article_key == "a"
    assert (
        story_m.text
        == "The ferry timetable changes\n\nFrom Monday.\n\nhttps://ledger.example.org/a"
    )
