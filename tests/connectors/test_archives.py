from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from connectors.archives import JsonlConnector, post_from_interchange, read_jsonl
from connectors.base import SourceSpec
from connectors.settings import FileSettings
from tests.helpers import EXAMPLE

GOOD = {
    "platform": "mastodon",
    "id": "1",
    "created_at": "2016-11-28T13:05:00+01:00",
    "author": "a@example.org",
    "text": "Hello #CoPro16 from @b@example.org https://example.org/x",
    "url": "https://example.org/@a/1",
}


def test_interchange_fields_and_derived_lists():
    post = post_from_interchange({**GOOD, "likes": 3, "lang": "en", "custom": {"k": 1}})
    assert post.created_at == datetime(2016, 11, 28, 12, 5, tzinfo=UTC)
    assert post.hashtags == ["CoPro16"]
    assert post.mentions == ["b@example.org"]
    assert post.links == ["https://example.org/x"]
    assert post.likes == 3 and post.lang == "en"
    assert post.raw["custom"] == {"k": 1}  # unknown keys are kept in the raw payload


def test_bad_lines_are_reported_with_their_line_number_and_good_lines_kept(tmp_path):
    path = tmp_path / "posts.jsonl"
    lines = [
        json.dumps(GOOD),
        "{not json",
        json.dumps({**GOOD, "id": "2", "created_at": "yesterday"}),
        "",
        json.dumps({k: v for k, v in GOOD.items() if k != "author"}),
        json.dumps({**GOOD, "id": "3", "likes": "many"}),
        json.dumps({**GOOD, "id": "4"}),
    ]
    path.write_text("\n".join(lines) + "\n")
    pages = list(read_jsonl(path))
    assert [p.id for page in pages for p in page.posts] == ["1", "4"]
    rejected = [r for page in pages for r in page.rejected]
    assert [r.split(":")[0] for r in rejected] == ["line 2", "line 3", "line 5", "line 6"]
    assert "author" in rejected[2]


def test_connector_resumes_after_what_it_read_and_restarts_on_a_new_file(tmp_path):
    path = tmp_path / "posts.jsonl"
    path.write_text(json.dumps(GOOD) + "\n")
    conn = JsonlConnector(SourceSpec("f", FileSettings(), path=path))
    first = list(conn.fetch(None))
    cursor = first[-1].cursor
    with path.open("a") as fh:
        fh.write(json.dumps({**GOOD, "id": "2"}) + "\n")
    again = list(conn.fetch(cursor))
    assert [p.id for page in again for p in page.posts] == ["2"]
    path.write_text(json.dumps({**GOOD, "id": "9", "text": "replaced file"}) + "\n")
    replaced = list(conn.fetch(again[-1].cursor))
    assert [p.id for page in replaced for p in page.posts] == ["9"]


def test_bundled_example_parses_cleanly():
    pages = list(read_jsonl(EXAMPLE))
    assert sum(len(p.posts) for p in pages) == 400
    assert not any(p.rejected for p in pages)


@given(st.text(max_size=200))
def test_any_text_parses_or_is_rejected_with_a_reason(text):
    try:
        post = post_from_interchange({**GOOD, "text": text})
    except ValueError as exc:  # pragma: no cover - text alone never makes a post invalid
        raise AssertionError(exc) from exc
    assert post.text == text
    assert all("#" not in h for h in post.hashtags)


def test_url_may_be_null_or_empty_but_must_be_present():
    assert post_from_interchange({**GOOD, "url": None}).url is None
    assert post_from_interchange({**GOOD, "url": ""}).url is None
    without = {k: v for k, v in GOOD.items() if k != "url"}
    try:
        post_from_interchange(without)
    except ValueError as exc:
        assert "url" in str(exc)
    else:
        raise AssertionError("a line without url was accepted")
