"""The JSONL interchange reader and a post with no time (connectors.undated): an empty or null
`created_at` is read as no time, so our own export of such a post imports again instead of being
quarantined, and exports again as it was."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from aggregator.config import load_config
from connectors.archives import post_from_interchange, read_jsonl
from connectors.base import Page
from connectors.undated import UNDATED, undated
from storage.db import open_database
from storage.queries import save_page
from tests.helpers import invoke, make_post, shipped_project, write_jsonl

GOOD = {
    "platform": "feed",
    "id": "https://news.example/2016/11/28/copro16",
    "created_at": "2016-11-28T13:05:00Z",
    "author": "news.example",
    "text": "The Transformathon in pictures #CoPro16",
    "url": "https://news.example/2016/11/28/copro16",
}


@pytest.mark.parametrize("written", [None, ""])
def test_an_empty_or_null_created_at_is_no_time(written):
    post = post_from_interchange({**GOOD, "created_at": written})
    assert post.created_at == UNDATED and undated(post.created_at)


@pytest.mark.parametrize("written", ["yesterday", "  ", 0, False])
def test_a_created_at_that_cannot_be_read_is_still_refused(written):
    with pytest.raises(ValueError, match="created_at"):
        post_from_interchange({**GOOD, "created_at": written})


def test_a_line_without_created_at_is_still_refused():
    without = {k: v for k, v in GOOD.items() if k != "created_at"}
    with pytest.raises(ValueError, match="missing created_at"):
        post_from_interchange(without)


def test_a_page_with_posts_kept_with_no_time_says_so_once(tmp_path):
    rows = [{**GOOD, "id": "1", "created_at": None}, {**GOOD, "id": "2", "created_at": ""}, GOOD]
    (page,) = read_jsonl(write_jsonl(tmp_path / "archive.jsonl", rows))
    assert [undated(p.created_at) for p in page.posts] == [True, True, False]
    assert page.rejected == []
    (warning,) = page.warnings
    assert warning.startswith("posts whose created_at is empty, null or 1970-01-01T00:00:00Z kept")
    (plain,) = read_jsonl(write_jsonl(tmp_path / "dated.jsonl", [GOOD]))
    assert plain.warnings == []


def test_our_export_of_a_post_with_no_time_imports_again_and_exports_the_same(tmp_path: Path):
    first = shipped_project(tmp_path / "first")
    engine = open_database(load_config(first / "config.toml").database_url)
    try:
        timeless = make_post(1, platform="feed", created_at=UNDATED, author="news.example")
        save_page(engine, "news", Page([timeless, make_post(2)]))
    finally:
        engine.dispose()
    exported = invoke(first, "export", "--format", "jsonl").output.splitlines()
    assert [json.loads(line)["created_at"] for line in exported].count(None) == 1

    second = shipped_project(tmp_path / "second")
    archive = tmp_path / "exported.jsonl"
    archive.write_text("\n".join(exported) + "\n", encoding="utf-8")
    result = invoke(second, "import", str(archive), "--format", "jsonl")
    assert result.exit_code == 0, result.output
    with sqlite3.connect(second / "data" / "aggregator.db") as conn:
        assert conn.execute("SELECT count(*) FROM quarantine").fetchone() == (0,)
        stored = dict(conn.execute("SELECT post_id, created_at FROM post").fetchall())
    assert stored[timeless.id].startswith("1970-01-01") and len(stored) == 2
    assert invoke(second, "export", "--format", "jsonl").output.splitlines() == exported
