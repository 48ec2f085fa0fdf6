"""Sanitizing feed markup and decoding entities in plain-text fields."""

from __future__ import annotations

from briefcast.sanitize import clean_html, clean_text, plain_text

BASE = "https://news.example/2026/11/story.html"


def test_scripts_handlers_and_dangerous_urls_are_removed():
    dirty = (
        '<p onclick="steal()">Hi <script>document.cookie</script>'
        '<img src="https://news.example/a.png" onerror="steal()">'
        '<a href="javascript:steal()">js</a> <a href="data:text/html,x">data</a>'
        '<img src="data:image/png;base64,AAAA" alt="pixel"></p>'
    )
    cleaned = clean_html(dirty, BASE)
    for bad in ("script", "document.cookie", "onclick", "onerror", "javascript:", "data:"):
        assert bad not in cleaned
    assert '<img src="https://news.example/a.png">' in cleaned
    # The link text survives as plain text: an anchor without a link is not a link.
    assert "js data" in cleaned and "<a" not in cleaned


def test_relative_links_and_images_resolve_against_the_base():
    cleaned = clean_html(
        '<a href="../docs/report.pdf">report</a><img src="img/x.jpg" alt="X">', BASE
    )
    assert 'href="https://news.example/2026/docs/report.pdf"' in cleaned
    assert 'src="https://news.example/2026/11/img/x.jpg"' in cleaned
    assert 'alt="X"' in cleaned


def test_without_a_base_relative_links_are_dropped_but_their_text_kept():
    cleaned = clean_html('<p><a href="/elsewhere">elsewhere</a></p>')
    assert cleaned == "<p>elsewhere</p>"


def test_allow_list_keeps_structure_and_unwraps_the_rest():
    dirty = (
        '<div class="x"><h2>Head</h2><p><strong>S</strong> <em>E</em> <u>U</u></p>'
        "<ul><li>one</li></ul><blockquote>Q</blockquote><pre><code>c</code></pre>"
        '<span style="color:red">span</span><iframe src="https://evil.example/">fallback</iframe>'
        '<a href="https://ok.example/" title="T" target="_blank">ok</a>'
        '<a href="mailto:desk@news.example">mail</a></div>'
    )
    cleaned = clean_html(dirty, BASE)
    for kept in ("<h2>Head</h2>", "<strong>S</strong>", "<em>E</em>", "<u>U</u>", "<li>one</li>"):
        assert kept in cleaned
    assert "<blockquote>Q</blockquote>" in cleaned and "<pre><code>c</code></pre>" in cleaned
    assert '<a href="https://ok.example/" title="T" rel="noopener">ok</a>' in cleaned
    assert 'href="mailto:desk@news.example"' in cleaned
    for gone in ("<div", "class=", "<span", "style=", "iframe", "fallback", "target="):
        assert gone not in cleaned
    assert "span" in cleaned  # unwrapped text stays


def test_double_encoded_entities_are_repaired_in_html_but_real_ampersands_stay():
    assert (
        clean_html("<p>It&amp;#8217;s AT&amp;T &amp;amp; co</p>") == "<p>It’s AT&amp;T &amp; co</p>"
    )


def test_empty_fragment_gives_empty_string():
    assert clean_html("") == "" and clean_html("  <p> </p> ") == ""


def test_clean_text_decodes_every_level_of_entity():
    assert clean_text("Dockers&#8217; union") == "Dockers’ union"
    assert clean_text("Dockers&amp;#8217; union") == "Dockers’ union"
    assert clean_text("Salt &amp;amp; pepper") == "Salt & pepper"
    assert clean_text("Caf&eacute; &lt;3") == "Café <3"


def test_clean_text_strips_tags_and_scripts_and_folds_whitespace():
    assert clean_text("  <b>Bold</b>\n\t move <script>alert(1)</script> ") == "Bold move"
    # Escaped markup is text: it was escaped in the source to be shown, not to be parsed.
    assert clean_text("&lt;em&gt;No. 5&lt;/em&gt; retires") == "<em>No. 5</em> retires"
    assert clean_text("1 < 2 and 3 > 2") == "1 < 2 and 3 > 2"


def test_clean_text_keeps_non_ascii_and_emoji():
    text = "João Conceição meets 東京エレクトロン 🔋"
    assert clean_text(text) == text
    assert clean_text(None) == ""


def test_escaped_markup_in_a_title_is_text_not_a_tag():
    assert clean_text("Fix for &lt;template&gt; element in Safari") == (
        "Fix for <template> element in Safari"
    )
    assert clean_text("Why &lt;br&gt; and &lt;script&gt; tags matter") == (
        "Why <br> and <script> tags matter"
    )
    assert clean_text("Why &amp;lt;br&amp;gt; matters") == "Why <br> matters"  # escaped twice
    # A plain-text field is never parsed for tags at all.
    assert plain_text("Fix for <template> element in Safari") == (
        "Fix for <template> element in Safari"
    )
    assert plain_text("Dockers&amp;#8217; union") == "Dockers’ union"


def test_bidi_controls_and_zero_width_characters_are_removed_but_emoji_joiners_kept():
    assert clean_text("invoice\u202egpj.exe") == "invoicegpj.exe"
    assert plain_text("\ufeffHar\u200bbour \u2066pilots\u2069") == "Harbour pilots"
    family = "\U0001f469\u200d\U0001f4bb coder \U0001f3f3\ufe0f\u200d\U0001f308"
    assert plain_text(family) == family
    assert plain_text("a\u200db") == "ab"
    html = clean_html("<p>Read \u202ethe\u200b fine print</p>")
    assert html == "<p>Read the fine print</p>"


def test_links_that_are_not_valid_urls_become_text():
    cleaned = clean_html(
        '<p><a href="https://news.example/a b">spaced</a> '
        '<a href="https://news.example/&quot;x">quoted</a> '
        '<a href="https://news.example/ok">ok</a></p>',
        BASE,
    )
    assert cleaned == (
        '<p>spaced quoted <a href="https://news.example/ok" rel="noopener">ok</a></p>'
    )


def test_script_links_leave_no_inert_text_behind():
    cleaned = clean_html('<p>Click <a href="javascript:alert(1)">javascript:alert(1)</a>.</p>')
    assert "javascript" not in cleaned and "alert" not in cleaned


def test_images_without_a_source_and_markdown_debris_are_dropped():
    cleaned = clean_html(
        '<p>Chart <img alt="chart" src=""> <img alt="x"> and '
        "[the wiki](https://en.wikipedia.example/wiki/Port_(x) for more "
        "![diagram](https://news.example/d.png</p>",
        BASE,
    )
    assert "<img" not in cleaned
    assert cleaned == "<p>Chart   and the wiki for more </p>"
