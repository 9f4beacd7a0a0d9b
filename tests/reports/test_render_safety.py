"""Hostile post content stays inert in every output: reliability cases 28-31, one test each.

Posts are stored pinned (so the report shows them) in a real SQLite file; the HTML and the Markdown
rendered from them (with markdown-it, a CommonMark renderer that passes raw HTML through) are parsed
and checked tag by tag, not searched for one spelling of an attack.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from sqlalchemy import update

from aggregator.pipeline import analyse, tag
from connectors.base import Page, Post
from reports.render import html_environment, markdown_environment, write_report
from reports.story import build_story
from storage.models import Assignment
from storage.queries import save_page

TEMPLATES = Path(__file__).resolve().parents[2] / "reports" / "templates"
DANGEROUS_TAGS = {
    "script",
    "iframe",
    "object",
    "embed",
    "img",
    "link",
    "base",
    "form",
    "frame",
    "style",
}


class Tags(HTMLParser):
    """Every start tag and its attributes, as a browser would see them (entities decoded)."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    handle_startendtag = handle_starttag


class Shown(HTMLParser):
    """The text a browser shows of a page: entities decoded, tags gone."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.feed(page)
        self.close()

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def shown_text(page: str) -> str:
    return "".join(Shown(page).parts)


def assert_inert(page: str, allow_style_element: bool = False, rel: bool = True) -> None:
    """No tag that runs or loads anything, no event handler, no style attribute, only http(s) links
    (with rel=noopener noreferrer in our own HTML; a blog's Markdown renderer makes its own links)."""
    tags = Tags(page).tags
    for name, attrs in tags:
        if not (name == "style" and allow_style_element):
            assert name not in DANGEROUS_TAGS, (name, attrs)
        assert not [a for a in attrs if a.startswith("on")], (name, attrs)
        if name in ("th", "td") and re.fullmatch(
            r"text-align:(left|right|center)", attrs.get("style", "")
        ):
            attrs = {
                k: v for k, v in attrs.items() if k != "style"
            }  # markdown-it's table alignment
        assert "style" not in attrs and "src" not in attrs and "srcdoc" not in attrs, (name, attrs)
        href = re.sub(r"[\x00-\x20]", "", attrs.get("href", "#")).lower()
        assert href.startswith(("https://", "http://", "#")), (name, attrs)
        if rel and name == "a" and href.startswith("http"):
            assert {"noopener", "noreferrer"} <= set(attrs.get("rel", "").split()), attrs
    assert [t for t, _ in tags].count("style") == (1 if allow_style_element else 0)


def pinned_report(engine, config, tmp_path, notes=None, **fields):
    """Store one post (pinned by the organisers, so it is shown), then write the report."""
    fields.setdefault("text", "A post")
    when = config.sessions[0].start + timedelta(minutes=5)
    save_page(engine, "evil", Page([Post("mastodon", "evil-1", when, fields.pop("author", "evil@example.org"),
                                         url=fields.pop("url", "https://example.org/@evil/1"), **fields)]))  # fmt: skip
    tag(engine, config)
    analyse(engine)
    with engine.begin() as conn:
        conn.execute(update(Assignment.__table__).values(highlight=True))
    files = write_report(build_story(engine, config, notes), tmp_path / "site")
    return {fmt: path.read_text(encoding="utf-8") for fmt, path in files.items()}


POST_HTML = {
    "script": "<p>hi</p><script>alert(1)</script>",
    "img-onerror": '<img src=x onerror="alert(1)">',
    "svg-onload": "<svg onload=alert(1)><circle r=5 /></svg>",
    "iframe": '<iframe src="https://evil.example/" srcdoc="<script>alert(1)</script>"></iframe>',
    "style": '<p style="position:fixed;inset:0;background:red">cover the page</p>',
    "mixed-case-javascript": '<a href="JaVaScRiPt:alert(1)">click</a>',
    "entity-encoded-javascript": '<a href="&#106;&#x61;vascript&colon;alert(1)">click</a>',
    "tab-split-javascript": '<a href="jav&#x09;ascript:alert(1)">click</a>',
    "data-url": '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">click</a>',
    "vbscript": '<a href="VBScript:MsgBox(1)">click</a>',
    "opener": '<a href="https://ok.example/" target="_blank" rel="opener">fine link</a>',
}


@pytest.mark.parametrize("attack", POST_HTML.values(), ids=POST_HTML.keys())
def test_case_28_hostile_post_html_is_sanitised_and_links_get_noopener(
    engine, config, tmp_path, attack
):
    out = pinned_report(engine, config, tmp_path, text="plain text of the post", html=attack)
    assert_inert(out["html"], allow_style_element=True)
    assert "alert(1)" not in out["html"] and "MsgBox" not in out["html"]
    if "fine link" in attack:
        assert 'href="https://ok.example/"' in out["html"]
    story = json.loads(out["json"])
    shown = story["parts"][1]["highlights"][0]
    assert_inert(shown["html"])  # story.json carries the sanitised HTML, never the raw payload


POST_TEXT = {
    "raw-html": "<script>alert(1)</script><img src=x onerror=alert(2)> <iframe src=//evil.example>",
    "javascript-link": "[click me](javascript:alert(3)) and [x](JAVASCRIPT:alert(4))",
    "image": "![tracker](https://evil.example/pixel.png)",
    "autolink": "<javascript:alert(5)> <data:text/html,hi>",
    "reference-link": "[x][1]\n\n[1]: javascript:alert(6)",
    "emphasis-and-headings": "# Heading\n---\n**bold** _it_ `code` | table |\n> quote\n1. list",
    "entities": "&lt;script&gt;alert(7)&lt;/script&gt; &#x3C;img src=x onerror=alert(8)&#x3E;",
}


@pytest.mark.parametrize("attack", POST_TEXT.values(), ids=POST_TEXT.keys())
def test_case_29_markdown_escapes_raw_html_and_links_in_post_text(engine, config, tmp_path, attack):
    out = pinned_report(engine, config, tmp_path, text=attack, url="javascript:alert(9)")
    rendered = MarkdownIt("commonmark").enable("table").render(out["markdown"])
    assert_inert(rendered, rel=False)
    for word in ("alert(", "evil.example"):
        assert word not in "".join(f"{t}{a}" for t, a in Tags(rendered).tags)
    assert (
        "<h1>Heading" not in rendered
        and "<strong>bold" not in rendered
        and "<code>code" not in rendered
    )
    assert "javascript:alert(9)" not in out["markdown"] and "javascript:alert(9)" not in out["html"]
    assert_inert(out["html"], allow_style_element=True)


HOSTILE = "<b>x</b>\"'&{{7*7}}*[y](javascript:z)"


def test_case_30_every_template_autoescapes_and_only_sanitiser_output_is_marked_safe(
    engine, config, tmp_path
):
    html_env, md_env = html_environment(), markdown_environment()
    names = html_env.list_templates()
    assert {"report.html.j2", "report.md.j2"} <= set(names)
    for name in names:
        source = (TEMPLATES / name).read_text(encoding="utf-8")
        assert not re.search(r"\|\s*safe\b|Markup|autoescape\s+false", source), name
        if name.endswith(".html.j2"):
            assert html_env.select_template([name]).environment.autoescape(name) is True
    assert md_env.finalize is not None and md_env.finalize(HOSTILE) != HOSTILE

    first = config.sessions[0]
    hostile_session = replace(first, title=HOSTILE, description=HOSTILE, speakers=(HOSTILE,))
    config = replace(config, sessions=(hostile_session, *config.sessions[1:]))
    out = pinned_report(engine, config, tmp_path, notes={first.id: HOSTILE}, text=HOSTILE,
                        author=HOSTILE, author_name=HOSTILE, links=[HOSTILE],
                        media=[{"url": HOSTILE, "type": "image", "alt": HOSTILE}])  # fmt: skip
    assert "<b>x" not in out["html"] and "<b>x" not in out["markdown"]
    markdown = MarkdownIt("commonmark").enable("table").render(out["markdown"])
    for page in (out["html"], markdown):  # shown as written: escaped, and {{7*7}} never run
        assert HOSTILE in shown_text(page)
    assert_inert(out["html"], allow_style_element=True)
    assert_inert(markdown, rel=False)
    assert json.loads(out["json"])["parts"][1]["title"] == HOSTILE  # data stays data in JSON


def test_case_31_bidi_zero_width_and_nul_are_removed_and_the_page_loads_nothing(
    engine, config, tmp_path
):
    sneaky = "invoice\u202egnp.exe\u200b\u200c\x00\ufeff\u2066 done\u2069"
    out = pinned_report(engine, config, tmp_path, text=sneaky, author_name=sneaky,
                        html=f"<p>{sneaky}</p>")  # fmt: skip
    for fmt, page in out.items():
        for char in "\u202e\u200b\u200c\x00\ufeff\u2066\u2069":
            assert char not in page, (fmt, hex(ord(char)))
        assert "invoicegnp.exe" in page
    page = out["html"]
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', page)
    assert csp and "default-src 'none'" in csp.group(1) and "script-src" not in csp.group(1)
    assert "base-uri 'none'" in csp.group(1) and "form-action 'none'" in csp.group(1)
    assert "<script" not in page.lower() and "@import" not in page and "url(" not in page
    assert_inert(page, allow_style_element=True)
