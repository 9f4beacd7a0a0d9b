"""connectors/html.py: post HTML read as text and links, and sanitised; links written out in plain
text, without the punctuation around them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.html import MAX_HTML, html_to_text, links_in_html, links_in_text, sanitize_html
from reports.text import MAX_SHOWN


@pytest.mark.parametrize(
    ("text", "links"),
    [
        ("slides (https://example.org/slides)", ["https://example.org/slides"]),
        ("see https://example.org/a.", ["https://example.org/a"]),
        ("(see https://example.org/a).", ["https://example.org/a"]),
        ("https://en.wikipedia.org/wiki/Foo_(bar)", ["https://en.wikipedia.org/wiki/Foo_(bar)"]),
        ("(https://en.wikipedia.org/wiki/Foo_(bar))", ["https://en.wikipedia.org/wiki/Foo_(bar)"]),
        ("[notes](https://md.example/x)", ["https://md.example/x"]),
        ("a, https://a.example/?q=1&r=2, b", ["https://a.example/?q=1&r=2"]),
        ('"https://q.example/"!', ["https://q.example/"]),
        ("wow https://a.example/x!!! and https://a.example/x?", ["https://a.example/x"]),
        ("「https://jp.example/a」。", ["https://jp.example/a"]),
        ("（https://jp.example/b）", ["https://jp.example/b"]),
        ("https://a.example/x\u202egnp.exe", ["https://a.example/x"]),  # bidi ends a link
        ("https://a.example/x\x00y", ["https://a.example/x"]),
        ("https:// and https://. and http://", []),
        ("no links here", []),
    ],
)
def test_links_lose_the_punctuation_around_them(text: str, links: list[str]) -> None:
    assert links_in_text(text) == links


def test_trimming_is_linear_on_megabytes_of_brackets_and_dots() -> None:
    text = "https://a.example/" + ")." * 1_000_000 + " http://" * 200_000
    assert links_in_text(text) == ["https://a.example/"]


@given(st.text(max_size=300))
def test_every_link_found_is_a_url_without_trailing_sentence_punctuation(text: str) -> None:
    for link in links_in_text(text):
        assert link.startswith(("http://", "https://")) and link in text
        assert not link.endswith((".", ",", ";", ":", "!", "?", "'", '"'))
        assert not any(c.isspace() for c in link)


def test_markup_keeps_what_the_text_and_links_need() -> None:
    """Breaks, paragraphs, entities, bare "&", skipped script/title, and the rel and class that
    mark tags."""
    body = (
        '<p>AT&T &copy; 2016<br>next <a href="https://x.org/tags/t" rel="tag">#t</a> '
        '<a href="https://x.org/@b" class="u-url mention">@b</a> '
        '<a href=" https://x.org/l ">l</a><script>bad()</script><title>t</title></p><div>end</div>'
    )
    assert html_to_text(body) == "AT&T © 2016\nnext #t @b l\n\nend"
    assert links_in_html(body) == ["https://x.org/l"]
    assert html_to_text("<a " * 1000 + "x") == ""  # one unfinished tag: no text, and no hang
    assert sanitize_html("a & b &amp; c") == "a &amp; b &amp; c"


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<script>if (a<p) x()</script>after", "after"),  # "<p>" in a script is no paragraph
        ("<STYLE>p{}</Style >a<title>x<b>y</b></TITLE>b", "ab"),
        ("<script>never closed <p>hidden", ""),
        ("<template><p>t</p></template>shown", "shown"),
        ("<template><script>x</script>t</template>shown", "shown"),
        ("a<!-- <p>note</p> -->b<!-->c<!--->d<!-- open", "abcd"),
        ("<!DOCTYPE html><?xml x?></ x>text<![CDATA[c]]>", "text"),
        ("1 < 2 > 0 <3 &lt;p&gt;", "1 < 2 > 0 <3 <p>"),
        ("line</br>next<BR/>last<P>para", "line\nnext\nlast\n\npara"),
        ("<span title=\"a>b\">x</span><span title='<p>'>y</span>", "xy"),  # ">" quoted: no end
        ("&copy2016 &notit; &#65;&#x42; &region", "©2016 ¬it; AB ®ion"),  # as browsers decode text
    ],
)
def test_text_is_read_as_a_browser_reads_it(html: str, text: str) -> None:
    assert html_to_text(html) == text


@pytest.mark.parametrize(
    ("html", "links"),
    [
        ('<a href="https://x.org/?a=1&amp;b=2&region=eu&copy=3">', ["https://x.org/?a=1&b=2&region=eu&copy=3"]),
        ("<a href=https://x.org/a title='b>c'>", ["https://x.org/a"]),
        ('<A HREF = "https://x.org/b" href="https://x.org/second">', ["https://x.org/b"]),
        ('<a\nclass="mention"\nhref="https://x.org/@c">', []),
        ('<a href="javascript:alert(1)">x</a><a href="HTTPS://x.org/c">', ["HTTPS://x.org/c"]),
        ('<script><a href="https://x.org/in-script"></script>', []),
        ('<!-- <a href="https://x.org/in-comment"> -->', []),
    ],
)  # fmt: skip
def test_links_are_read_from_attributes_as_a_browser_reads_them(
    html: str, links: list[str]
) -> None:
    """In an attribute "&region=" stays as written: a legacy name followed by "=" or a letter is no
    reference there (text would read "®ion")."""
    assert links_in_html(html) == links


def test_stored_html_is_cut_past_max_html_and_covers_what_the_report_shows() -> None:
    assert MAX_HTML >= MAX_SHOWN
    kept = sanitize_html("<p>" + "y" * MAX_HTML + '</p><script>x()</script><a href="javascript:x">')
    assert kept == "<p>" + "y" * (MAX_HTML - 3) + "</p>…"
    cut_in_a_tag = sanitize_html("y" * (MAX_HTML - 9) + '<img src="x" onerror="alert(1)">')
    assert cut_in_a_tag == "y" * (MAX_HTML - 9) + "…"  # the unfinished tag is dropped
    assert sanitize_html("<p>" + "y" * 10 + "</p>") == "<p>yyyyyyyyyy</p>"
