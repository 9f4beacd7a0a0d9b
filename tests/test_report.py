from __future__ import annotations

import html
import json
import re

from aggregator.pipeline import collect, tag
from connectors.base import Page, Post
from reports.render import md_escape, write_report
from reports.story import build_story
from storage.queries import save_page
from tests.conftest import EXAMPLE

HOSTILE = (
    "<script>alert(1)</script><img src=x onerror=alert(2)> [x](javascript:alert(3)) **bold** # head"
)


def report(engine, config):
    collect(engine, config)
    tag(engine, config)
    return write_report(build_story(engine, config), config.report_output)


def test_every_session_in_programme_order_with_its_posts(engine, config):
    files = report(engine, config)
    page = files["html"].read_text()
    positions = [page.index(f'id="{s.id}"') for s in config.sessions]
    assert positions == sorted(positions)
    with EXAMPLE.open(encoding="utf-8") as fh:
        expected = [json.loads(line) for line in fh]
    per_session = {
        s.id: sum(r["expected_session"] == s.id for r in expected) for s in config.sessions
    }
    for sid, n in per_session.items():
        section = page[page.index(f'id="{sid}"') :]
        shown = int(re.search(r"(\d+) posts from", section).group(1))
        assert abs(shown - n) <= 2, sid
    markdown = files["markdown"].read_text()
    for s in config.sessions:
        assert f"## {md_escape(s.title)}" in markdown


def test_hostile_post_text_stays_inert(engine, config):
    save_page(engine, "evil", Page([Post("mastodon", "evil-1", config.sessions[0].start, "evil@example.org",
                                         HOSTILE, url="javascript:alert(4)")]))  # fmt: skip
    files = report(engine, config)
    page = files["html"].read_text()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert html.escape(HOSTILE, quote=False) in page or "&lt;script&gt;" in page
    assert 'href="javascript:' not in page
    assert "Content-Security-Policy" in page
    markdown = files["markdown"].read_text()
    assert "<script>" not in markdown and "](javascript:" not in markdown
    assert "javascript:alert(4)" not in markdown
