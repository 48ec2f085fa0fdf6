"""Summaries: the entry's own first meaningful text, whatever its markup, no furniture."""

from __future__ import annotations

import pytest

from briefcast.gather.summary import summary_html
from briefcast.sanitize import clean_html


@pytest.mark.parametrize(
    ("fragment", "summary"),
    [
        # bare text and <br> breaks before a <p> footer (phpBB, many CMSs)
        (
            "New berth opens.<br>Ships from Monday.<br><br>More later."
            "<p>Statistics: Posted by pilot — Fri Nov 20, 2026</p>",
            "<p>New berth opens. Ships from Monday.</p>",
        ),
        # the feed's own furniture after the excerpt
        (
            "<p>The council voted for the plan [&#8230;]</p>"
            '<p>The post <a href="https://x.example/p">Plan</a> appeared first on X.</p>',
            "<p>The council voted for the plan…</p>",
        ),
        ("<p>The council voted. Continue reading →</p>", "<p>The council voted.</p>"),
        ("<p>The council voted… Read more</p>", "<p>The council voted…</p>"),
        # an image, a stray dash and an empty list item come before the text
        (
            '<p><img src="https://x.example/a.png"></p><p>—</p><ul><li> </li></ul>'
            "<p>Cranes arrive in March.</p>",
            "<p>Cranes arrive in March.</p>",
        ),
        # inline markup and links of the text itself are kept
        (
            '<p>The <strong>union</strong> backs the <a href="https://x.example/d">deal</a>.</p>',
            '<p>The <strong>union</strong> backs the <a href="https://x.example/d" '
            'rel="noopener">deal</a>.</p>',
        ),
        # "read more" inside a sentence is the story's text, not furniture
        ("<p>Readers want to read more about it</p>", "<p>Readers want to read more about it</p>"),
        # nothing of its own: no summary
        ("<p>The post X appeared first on Y.</p><p>[…]</p>", ""),
    ],
)
def test_summary_is_the_first_meaningful_text(fragment, summary):
    assert summary_html(clean_html(fragment, "https://x.example/")) == summary


def test_a_long_first_block_is_capped_at_a_word():
    text = "Harbour " * 200
    summary = summary_html(f"<p>{text}</p>")
    assert summary.endswith("…</p>") and len(summary) <= 610
    assert "Harbou…" not in summary
