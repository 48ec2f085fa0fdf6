"""The Telegram digest: Telegram HTML that the Bot API accepts, within its limits."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from support import harbour_ledger_settings

from briefcast.models import Article, EditorialView, Gathered, Image
from briefcast.render import render_edition
from briefcast.render.html_split import split_html
from briefcast.render.telegram_html import (
    telegram_length,
    to_telegram_html,
    utf16_len,
    validate_telegram_html,
    visible_text,
)


def article(n: int, **fields) -> Article:
    values = {
        "key": f"k{n}",
        "url": f"https://ledger.example.org/story-{n}?a=1&b=2",
        "title": f"Story number {n}",
        "dek": f"Why story {n} matters.",
        "source": "Newsroom",
        "published": datetime(2026, 5, 1, tzinfo=UTC),
    }
    return Article(**{**values, **fields})


def render(tmp_path, articles):
    settings = harbour_ledger_settings(tmp_path)
    return render_edition(settings, Gathered(edition_date=date(2026, 5, 1), articles=articles))


def paragraphs(count: int, sentence: str = "The harbour board met again on Tuesday.") -> str:
    return "".join(f"<p>{n}: {sentence * 6}</p>" for n in range(count))


def test_headline_markup_characters_are_escaped(tmp_path):
    title = "Rates < 5% & rents > wages"
    [message] = render(tmp_path, [article(1, title=title)]).telegram_messages

    assert "Rates &lt; 5% &amp; rents &gt; wages" in message.text
    assert title in visible_text(message.text)
    assert validate_telegram_html(message.text) == []
    assert message.text.startswith("<b>The Harbour Ledger</b> · Friday, 1 May 2026")


def test_long_edition_splits_between_stories(tmp_path):
    articles = [
        article(n, dek="", summary_html=paragraphs(2, f"Story {n} detail sentence. "))
        for n in range(30)
    ]
    messages = [m.text for m in render(tmp_path, articles).telegram_messages]

    assert len(messages) > 2
    assert all(t.startswith("<b>Story number") for t in messages[1:])  # each starts a story
    for text in messages:
        assert utf16_len(text) <= 4096
        assert validate_telegram_html(text) == []
    for n in range(30):  # every story sits whole in one message
        holding = [t for t in messages if f"<b>Story number {n}</b>" in t]
        assert len(holding) == 1
        if n == 0:  # the lead in full
            assert holding[0].count(f"Story {n} detail") == 2 * 6
        else:  # the others as cards: a short summary
            assert 1 <= holding[0].count(f"Story {n} detail") < 2 * 6
        # One link per story: to the story itself.
        link = f'href="https://ledger.example.org/story-{n}?a=1&amp;b=2">'
        assert link in holding[0] and sum(t.count(link) for t in messages) == 1


def test_one_huge_story_splits_into_well_formed_pieces(tmp_path):
    lead = article(
        0,
        summary_html=paragraphs(40, "A <strong>long <em>sentence</em></strong> here. "),
        view=EditorialView(html="<p>We back it.</p>"),
    )
    messages = [m.text for m in render(tmp_path, [lead, article(1)]).telegram_messages]

    assert len(messages) >= 3
    assert messages[0].startswith("<b>The Harbour Ledger</b>")
    assert "Story number 0" in messages[0]  # the header is never left alone
    for text in messages:
        assert utf16_len(text) <= 4096
        assert validate_telegram_html(text) == []
    assert re.match(r"\d+: A <b>long", messages[1])  # cut between paragraphs
    visible = " ".join(visible_text(t) for t in messages)
    assert visible.count("A long sentence here.") == 40 * 6  # nothing lost at the cuts
    for n in range(40):
        assert f"{n}: A long sentence" in visible


def test_splitting_counts_emoji_as_two_units():
    text = "<b>" + ("🌊" * 30 + " ") * 100 + "</b>"  # 3,100 code points, 6,100 UTF-16 units
    pieces = split_html(text, 4096)

    assert len(pieces) == 2
    assert all(utf16_len(p) <= 4096 and validate_telegram_html(p) == [] for p in pieces)
    assert "".join(visible_text(p) for p in pieces).replace(" ", "") == "🌊" * 3000


def test_split_without_spaces_falls_back_to_sentences_then_characters():
    sentences = "<i>" + "港湾計画が承認された。" * 1000 + "</i>"
    pieces = split_html(sentences, 1000)
    assert all(visible_text(p).endswith("。") for p in pieces[:-1])
    assert all(validate_telegram_html(p, 1000) == [] for p in pieces)

    one_word = "x" * 2500
    assert [len(p) for p in split_html(one_word, 1000)] == [1000, 1000, 500]


def test_article_html_is_reduced_to_telegram_tags():
    converted = to_telegram_html(
        "<h2>Vote</h2><div><p>Seats: <span style='color:red'>five</span> "
        "<strong>yes</strong> &amp; <em>two</em> no</p><img src='x.jpg' alt='chart'>"
        "<table><tr><td>cell</td></tr></table><script>alert(1)</script>"
        "<ul><li>one</li><li>two</li></ul><a href='javascript:alert(1)'>bad link</a></div>"
    )

    assert validate_telegram_html(converted) == []
    assert not re.search(r"<(?!/?(b|i|a)\b)", converted), converted
    assert "<b>Vote</b>" in converted
    assert "<b>yes</b> &amp; <i>two</i>" in converted
    assert "alert" not in visible_text(converted).replace("bad link", "")
    assert "• one\n• two" in converted


def test_validation_reports_what_telegram_would_refuse():
    assert validate_telegram_html("<b>fine &amp; <a href='https://x.org'>ok</a></b>") == []
    problems = " | ".join(
        validate_telegram_html("<div>x</div> <b>open & <span>s</span> &nbsp; " + "y" * 5000)
    )
    for expected in (
        "<div> is not allowed",
        "unescaped '&'",
        "tg-spoiler",
        "unsupported entity &nbsp;",
        "<b> is never closed",
        "too long",
    ):
        assert expected in problems


def test_telegram_length_counts_visible_utf16_units():
    assert telegram_length('<b>a&amp;😀</b> <a href="https://example.org/long">b</a>') == 6


def test_photo_caption_fits_1024_and_keeps_the_link(tmp_path):
    lead = article(
        0,
        hero=Image(url="https://img.example.org/lead.jpg", alt="Harbour"),
        dek="A very long dek that keeps going & going. " * 60,
    )
    photo = render(tmp_path, [lead]).telegram_photo

    assert photo.url == "https://img.example.org/lead.jpg"
    assert utf16_len(photo.caption) <= 1024
    assert validate_telegram_html(photo.caption, 1024) == []
    assert "…" in photo.caption
    assert photo.caption.endswith(
        '<a href="https://ledger.example.org/story-0?a=1&amp;b=2">Read the full story →</a>'
    )


def test_no_photo_without_a_hero_image(tmp_path):
    assert render(tmp_path, [article(0)]).telegram_photo is None


def test_the_footer_never_arrives_as_a_message_of_its_own(tmp_path):
    # Digests of growing length: at some sizes the footer no longer fits after the last
    # story; it then moves to the next message together with that story.
    for count in range(8, 16):
        articles = [
            article(n, dek="", summary_html=paragraphs(2, f"Story {n} detail. "))
            for n in range(count)
        ]
        messages = [m.text for m in render(tmp_path, articles).telegram_messages]

        for text in messages:
            assert "→</a>" in text, (count, text)  # every message carries a story
            assert utf16_len(text) <= 4096 and validate_telegram_html(text) == []
        assert messages[-1].endswith(">Subscribe</a>")
        assert f"<b>Story number {count - 1}</b>" in messages[-1]
