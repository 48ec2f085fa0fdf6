"""Posts for X under X's weighted character counting."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import regex
from support import harbour_ledger_settings
from twitter_text import parse_tweet

from briefcast.models import Article, Gathered
from briefcast.render import render_edition
from briefcast.render.x_posts import fit_post, weighted_length

URL = "https://ledger.example.org/2026/05/01/a-rather-long-path-to-the-story?ref=x"  # counts 23


def words_weighing(weight: int, start: str = "🌊 港湾 plan") -> str:
    """Text starting with ``start`` padded with words to exactly ``weight``."""
    text = start
    while weighted_length(text) < weight - 6:
        text += " harbour"
    while weighted_length(text) < weight:
        text += "x"
    assert weighted_length(text) == weight
    return text


def text_part(post: str, url: str) -> str:
    assert post.endswith("\n\n" + url)
    return post[: -len(url) - 2]


def test_post_of_exactly_280_is_kept_whole():
    text = words_weighing(280 - 25)  # the URL counts 23, the blank line 2
    post = fit_post([text], URL)

    assert post == f"{text}\n\n{URL}"
    assert weighted_length(post) == 280
    assert parse_tweet(post).valid


def test_post_of_281_is_shortened_at_a_word_boundary():
    text = words_weighing(280 - 25 + 1)
    assert not parse_tweet(f"{text}\n\n{URL}").valid

    post = fit_post([text], URL)

    kept = text_part(post, URL)
    assert kept.endswith("…")
    assert text.startswith(kept[:-1])
    assert text[len(kept) - 1] == " "  # the cut fell between two words
    assert parse_tweet(post).valid and weighted_length(post) <= 280
    assert kept.startswith("🌊 港湾")


def test_a_url_inside_the_text_is_never_cut():
    inner = "example.org/reports/2026/harbour-plan-full-text"  # counts 23, not 47
    outcomes = set()
    for words in range(40, 50):  # sweeps the cut across the inner URL
        text = "a" * 10 + " word" * words + f" {inner} and more words after it"
        kept = text_part(fit_post([text], URL), URL)[:-1]
        assert text.startswith(kept)
        assert inner in kept or "example" not in kept, kept[-60:]
        outcomes.add(inner in kept)
    assert outcomes == {True, False}


def test_cjk_headline_is_cut_between_characters_and_counts_two_each():
    title = "港湾計画が議会で承認された。" * 20
    post = fit_post([title], URL)

    kept = text_part(post, URL)
    assert title.startswith(kept[:-1])
    assert weighted_length(post) in (279, 280)  # each CJK character weighs 2
    assert parse_tweet(post).valid


def test_emoji_are_never_split():
    family = "👨‍👩‍👧"
    title = family * 200  # one long "word": no spaces anywhere
    post = fit_post([title], URL)

    kept = text_part(post, URL)[:-1]
    assert kept and set(regex.findall(r"\X", kept)) == {family}
    assert parse_tweet(post).valid


def test_dek_is_added_only_when_it_fits_whole():
    title = "Council approves harbour plan"
    dek = "What the vote means for the waterfront."
    assert fit_post([title, dek], URL) == f"{title}\n\n{dek}\n\n{URL}"

    long_dek = "A sentence about the waterfront. " * 10
    assert fit_post([title, long_dek], URL) == f"{title}\n\n{URL}"


def article(n: int, **fields) -> Article:
    values = {
        "key": f"k{n}",
        "url": f"https://ledger.example.org/story-{n}",
        "title": f"Story {n}",
        "dek": "A dek.",
        "source": "Newsroom",
        "published": datetime(2026, 5, 1, tzinfo=UTC),
    }
    return Article(**{**values, **fields})


def render(tmp_path, x_thread: bool, articles):
    settings = harbour_ledger_settings(tmp_path, edition={"x_thread": x_thread})
    return render_edition(settings, Gathered(edition_date=date(2026, 5, 1), articles=articles))


def test_thread_has_an_opener_then_one_post_per_story(tmp_path):
    articles = [article(1), article(2, title="Ein sehr langer Titel " * 30), article(3)]
    rendered = render(tmp_path, True, articles)

    opener, *stories = rendered.x_posts
    assert rendered.x_thread
    assert "The Harbour Ledger" in opener.text and "🧵" in opener.text
    assert opener.article_key == ""
    assert [p.article_key for p in stories] == ["k1", "k2", "k3"]
    for post, source in zip(stories, articles, strict=True):
        assert post.text.endswith(source.url)
        assert post.weighted_length == weighted_length(post.text) <= 280
        assert parse_tweet(post.text).valid


def test_without_thread_every_story_stands_alone(tmp_path):
    rendered = render(tmp_path, False, [article(1), article(2)])

    assert not rendered.x_thread
    assert [p.article_key for p in rendered.x_posts] == ["k1", "k2"]
    assert all(re.search(r"https://\S+$", p.text) for p in rendered.x_posts)


def test_a_stray_byte_order_mark_in_a_title_neither_truncates_nor_breaks_the_post(tmp_path):
    # Feeds carry U+FEFF inside titles; X refuses it (and the rest of the title was cut off).
    titles = ["Diesel to fall\ufeff 2 cents a litre on Monday", "\ufeff"]
    rendered = render(tmp_path, False, [article(1, title=titles[0]), article(2, title=titles[1])])

    first, second = (p.text for p in rendered.x_posts)
    assert first.startswith("Diesel to fall 2 cents a litre on Monday\n\nA dek.")
    assert second == "A dek.\n\nhttps://ledger.example.org/story-2"
    assert all(parse_tweet(p.text).valid for p in rendered.x_posts)


def test_a_story_whose_link_cannot_fit_a_post_is_left_off_x_only(tmp_path, caplog):
    # twitter-text does not take http://localhost/… for a link, so it counts in full.
    unpostable = article(2, url="http://localhost/" + "long-path/" * 40)
    rendered = render(tmp_path, True, [article(1), unpostable, article(3)])

    assert [p.article_key for p in rendered.x_posts[1:]] == ["k1", "k3"]
    assert [a.key for a in rendered.articles] == ["k1", "k2", "k3"]  # email keeps it
    assert unpostable.url in rendered.email.text
    assert "no X post for 'Story 2'" in caplog.text
