"""The two HTML policies (connectors/html.py): STORED_HTML, what a connector keeps of a platform's
HTML (`sanitize_html`), and SHOWN_HTML, what the story shows (`reports.text.sanitise_html`). Each
against hostile HTML, read back the way a browser's tokenizer reads it; what each keeps that the
other does not; and a huge input costs time in proportion to its length (timed as in
tests/test_linear_time.py: growth against a linear baseline, never a wall-clock budget)."""

from __future__ import annotations

import gc
import re
import time
from collections.abc import Callable
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.html import MAX_HTML, SHOWN_HTML, STORED_HTML, HtmlPolicy, sanitize_html
from reports.text import MAX_SHOWN, sanitise_html
from tests.helpers import ROOT

# name -> (policy, the function every caller uses, the characters it reads)
POLICIES: dict[str, tuple[HtmlPolicy, Callable[[str], str | None], int]] = {
    "stored": (STORED_HTML, sanitize_html, MAX_HTML),
    "shown": (SHOWN_HTML, sanitise_html, MAX_SHOWN),
}
# Tags that run, load, submit or restyle anything: neither policy may ever let one through.
DANGEROUS = {
    "script", "style", "iframe", "frame", "object", "embed", "applet", "form", "input", "button",
    "textarea", "select", "svg", "math", "meta", "base", "link", "noscript", "template", "video",
    "audio", "source", "xmp", "plaintext",
}  # fmt: skip
HOSTILE = {
    "script": "<p>hi</p><script>alert(1)</script>",
    "script left open": "<p>hi<script>alert(1)",
    "script in svg": "<svg><script>alert(1)</script></svg>",
    "script in a comment": "<!--<script>alert(1)</script>--><p>after</p>",
    "style element and attribute": (
        "<style>p{background:url(javascript:alert(1))}</style><p style=color:red>x</p>"
    ),
    "onerror": '<img src="https://e.example/x.png" onerror="alert(1)" alt="a">',
    "onclick and onmouseover": '<a href="https://e.example/" onclick="alert(1)" onmouseover=alert(2)>x</a>',
    "svg onload": "<svg onload=alert(1)><circle r=5 /></svg>",
    "javascript: href": '<a href="javascript:alert(1)">x</a>',
    "javascript: disguised": (
        '<a href=" JaVaScRiPt:alert(1)">a</a><a href="jav&#x09;ascript:alert(1)">b</a>'
        '<a href="java\nscript:alert(1)">c</a><a href="&#106;avascript:alert(1)">d</a>'
    ),
    "data: URLs": (
        '<img src="data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=" alt="x">'
        '<a href="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;">d</a>'
    ),
    "vbscript: href": '<a href="vbscript:msgbox(1)">v</a>',
    "iframe with srcdoc": '<iframe src="https://e.example/" srcdoc="<script>alert(1)</script>"></iframe>',
    "form": '<form action="https://e.example/"><input name="a"><button formaction="javascript:alert(1)">b</button></form>',
    "meta refresh, base, link": (
        '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">'
        '<base href="https://e.example/"><link rel="stylesheet" href="https://e.example/s.css">'
    ),
    "mutation through math and style": "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "noscript title": '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "an attribute left open": '<a href="https://ok.example/" <script>alert(1)</script>',
    "tags nested deep and never closed": "<p><b><i><a href='https://ok.example/'>deep" + "<span><em>" * 500,
    "mis-nested": "<b><p>one</b>two</p><ul><li>a<li>b</ul></li></b>",
}  # fmt: skip
# Whose script or style content must not survive even as text.
RUNNING = {"script", "script left open", "script in svg", "script in a comment",
           "style element and attribute", "mutation through math and style"}  # fmt: skip
VOID = {"br", "img"}


class Read(HTMLParser):
    """Sanitised HTML as a tokenizer reads it: each tag with its attributes (entities decoded)."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.ends: list[str] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        self.ends.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def scheme(url: str) -> str | None:
    """A URL's scheme as a browser finds it (controls and spaces ignored), or None if relative."""
    found = re.match(r"([a-z][a-z0-9+.\-]*):", re.sub(r"[\x00-\x20]", "", url).lower())
    return found.group(1) if found else None


def assert_safe(policy: HtmlPolicy, out: str) -> None:
    """Nothing that runs or loads: only the policy's tags, attributes and classes; no event
    handler or style; links and images only with its schemes; every link with its rel."""
    read = Read(out)
    for name, attrs in read.tags:
        assert name in policy.tags and name not in DANGEROUS, (name, attrs)
        assert not [a for a in attrs if a.startswith("on") or a in ("style", "srcdoc")], attrs
        allowed = set(policy.attributes.get(name, ()))
        allowed |= {"class"} if name in policy.classes else set()
        allowed |= {"rel"} if name == "a" else set()
        assert set(attrs) <= allowed, (name, attrs)
        assert set(attrs.get("class", "").split()) <= set(policy.classes.get(name, ())), attrs
        for url in (attrs[k] for k in ("href", "src") if k in attrs):
            assert scheme(url) in {None, *policy.url_schemes}, (name, attrs)
            assert scheme(url) not in ("javascript", "data", "vbscript"), (name, attrs)
        if name == "a" and "href" in attrs:
            assert set(policy.link_rel.split()) <= set(attrs["rel"].split()), attrs
    opened = [name for name, _ in read.tags if name not in VOID]
    assert sorted(opened) == sorted(e for e in read.ends if e not in VOID), out  # all closed


@pytest.mark.parametrize("name", POLICIES)
@pytest.mark.parametrize("case", HOSTILE)
def test_each_policy_lets_nothing_run_through(name, case):
    policy, sanitise, _ = POLICIES[name]
    out = sanitise(HOSTILE[case])
    assert out is not None
    assert_safe(policy, out)
    if case in RUNNING:
        assert "alert" not in out


@pytest.mark.parametrize("name", POLICIES)
def test_each_policy_keeps_the_harmless_text_and_formatting(name):
    _, sanitise, _ = POLICIES[name]
    assert sanitise("<p>hi</p><script>alert(1)</script>") == "<p>hi</p>"
    kept = sanitise('<p><b>Bold</b> <a href="https://ok.example/a?b=1&amp;c=2">link</a></p>')
    assert kept is not None and kept.startswith("<p><b>Bold</b> <a href=")
    assert Read(kept).tags[2][1]["href"] == "https://ok.example/a?b=1&c=2"
    deep = sanitise(HOSTILE["tags nested deep and never closed"])
    assert deep is not None and "".join(Read(deep).text) == "deep"


def test_stored_html_keeps_the_post_as_written_and_the_story_shows_less():
    post = (
        '<h2>Day two</h2><p>Slides <a href="mailto:desk@news.example" title="write">mail us</a> '
        '<img src="https://m.example/p.png" alt="A slide" title="slide"> '
        '<a href="https://m.example/@bob" class="u-url mention">@bob</a></p>'
    )
    stored, shown = Read(sanitize_html(post) or ""), Read(sanitise_html(post))
    assert [t for t, _ in stored.tags] == ["h2", "p", "a", "img", "a"]
    assert stored.tags[2][1]["href"] == "mailto:desk@news.example"
    assert stored.tags[3][1] == {
        "src": "https://m.example/p.png",
        "alt": "A slide",
        "title": "slide",
    }
    assert stored.tags[4][1]["class"] == "u-url mention"
    # The story: no heading, image, mailto, title or class; the words stay; links marked ugc.
    assert [t for t, _ in shown.tags] == ["p", "a", "a"]
    assert "href" not in shown.tags[1][1]
    assert shown.tags[2][1] == {
        "href": "https://m.example/@bob",
        "rel": "noopener noreferrer nofollow ugc",
    }
    assert all(words in "".join(shown.text) for words in ("Day two", "mail us", "@bob"))


def test_the_story_shows_no_hidden_characters_and_the_store_keeps_them():
    post = "<p>safe\u202etxt.exe\u200b</p>"
    assert sanitise_html(post) == "<p>safetxt.exe</p>"
    assert sanitize_html(post) == post


HTML = st.lists(
    st.sampled_from(["<p>", "</p>", "<a href='javascript:x'>", "<a href=https://a.example/>",
                     "</a>", "<img src=x onerror=y>", "<script>", "</script>", "<style>", "<svg>",
                     "<h1>", "<b>", "<span class=h-card>", "&", "&#x6A;", "alert(1)", "<", ">",
                     "'", '"', "=", " on", "<!--", "-->", "<math>", "<li>", "\u00a0", "x"]),
    max_size=40,
).map("".join)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(HTML)
def test_any_mix_of_hostile_pieces_stays_safe_under_both_policies(html):
    for policy, sanitise, _ in POLICIES.values():
        assert_safe(policy, sanitise(html) or "")


def test_no_other_module_calls_nh3():
    packages = ("aggregator", "connectors", "storage", "reports")
    users = {
        path.relative_to(ROOT).as_posix()
        for package in packages
        for path in (ROOT / package).rglob("*.py")
        if re.search(r"^\s*(import nh3|from nh3\b)", path.read_text(encoding="utf-8"), re.M)
    }
    assert users == {"connectors/html.py"}


# -- a huge input ------------------------------------------------------------------------------------
N, GROWTH, REPS, LIMIT = 100_000, 4, 2, 2.5  # as tests/test_linear_time.py
BASELINE = re.compile(r"\w+")
# nh3 takes time quadratic in a text node or attribute of "&", "©" or no-break spaces; a parser
# can be made to read "<a <a <a" or deep nesting again and again.
SHAPES = {
    "&": lambda size: "&" * size,
    "©": lambda size: "<p>" + "©" * size,
    "no-break spaces": lambda size: "\u00a0" * size,
    "<a <a <a": lambda size: "<a " * (size // 3),
    "an attribute of &": lambda size: '<a href="' + "&" * size,
    "nesting": lambda size: "<p><b><i><span>" * (size // 15),
    "every hostile case": lambda size: "".join(HOSTILE.values()) * (size // 12_000),
}


def best(f: Callable[[str], object], value: str) -> float:
    times = []
    for _ in range(REPS):
        start = time.process_time()
        f(value)
        times.append(time.process_time() - start)
    return min(times)


def growth(f: Callable[[str], object], small: str, big: str) -> float:
    """How many times longer `f` takes on `big` than on `small`, relative to the baseline's growth."""
    gc.disable()
    try:
        return (best(f, big) / best(f, small)) / (
            best(BASELINE.findall, big) / best(BASELINE.findall, small)
        )
    finally:
        gc.enable()


@pytest.mark.parametrize("name", POLICIES)
@pytest.mark.parametrize("shape", SHAPES)
def test_a_huge_input_costs_time_in_proportion_to_its_length(name, shape):
    _, sanitise, reads = POLICIES[name]
    small, big = SHAPES[shape](N), SHAPES[shape](N * GROWTH)
    assert len(small) > reads  # past what the policy reads: the rest must cost nothing more
    assert growth(sanitise, small, big) < LIMIT
    out = sanitise(big)
    assert out is not None and out.endswith("…")
