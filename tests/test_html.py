"""connectors/html.py: links written out in plain text, without the punctuation around them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.html import html_to_text, links_in_html, links_in_text, sanitize_html


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


def test_markup_read_through_nh3_first_keeps_what_the_text_and_links_need() -> None:
    """html.parser reads only what nh3 rewrote (it is quadratic on "<a <a <a …"): breaks,
    paragraphs, entities, bare "&", skipped script/title, and the rel and class that mark tags."""
    body = (
        '<p>AT&T &copy; 2016<br>next <a href="https://x.org/tags/t" rel="tag">#t</a> '
        '<a href="https://x.org/@b" class="u-url mention">@b</a> '
        '<a href=" https://x.org/l ">l</a><script>bad()</script><title>t</title></p><div>end</div>'
    )
    assert html_to_text(body) == "AT&T © 2016\nnext #t @b l\n\nend"
    assert links_in_html(body) == ["https://x.org/l"]
    assert html_to_text("<a " * 1000 + "x") == ""  # one unfinished tag: no text, and no hang
    assert sanitize_html("a & b &amp; c") == "a &amp; b &amp; c"
