"""One hostile record costs only itself, in every connector and importer (cases 10 and 40).

Each connector reads a page holding a good record, a hostile one and another good record, in its
real payload shape (tests/harness.py): the good ones become posts, the hostile one is quarantined
with where it was, why, and the record itself.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from connectors.archives import read_jsonl
from connectors.base import ConnectorError, Post
from tests.harness import HARNESSES, X_PAGE, bluesky_pages, posts_by_id, quarantined, x_pages

DELETE = object()
FUTURE = "9999-12-31T23:59:59-05:00"  # past year 9999 once in UTC: OverflowError, unguarded
FUTURE_V1 = "Fri Dec 31 23:59:59 -0500 9999"
HUGE = 10**30
WHERE = {  # where the hostile record (the second of three) is said to be
    "jsonl": "line 2", "twarc-v1": "line 2", "twarc-v2-flat": "line 2",
    "twarc-v2-page": "line 1 tweet ", "tags": "row 3",
    "mastodon": "a.example #CoPro16 status ", "bluesky": "post ", "x": "tweet ",
    "feed": "feed https://blog.example/tag/copro16/feed/ entry 2",
}  # fmt: skip


def short(value: Any) -> str:
    """A test id that is the same in every process (pytest-xdist compares them)."""
    return "(deleted)" if value is DELETE else str(value)[:40]


def changed(record: Any, path: str, value: Any) -> Any:
    """A deep copy of `record` with the value at a dotted path ("a.0.b") set, or removed."""
    record = copy.deepcopy(record)
    *parents, last = path.split(".")
    target = record
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if value is DELETE:
        del target[last]
    else:
        target[int(last) if isinstance(target, list) else last] = value
    return record


def read_with(name: str, hostile: Any, tmp_path: Path) -> tuple[dict[str, Post], list[Any]]:
    harness = HARNESSES[name]
    pages = harness.read([harness.good(1), hostile, harness.good(2)], tmp_path)
    return posts_by_id(pages), quarantined(pages)


def assert_quarantined_alone(
    name: str, hostile: Any, why: str, tmp_path: Path, kept: bool = True
) -> None:
    harness = HARNESSES[name]
    posts, skipped = read_with(name, hostile, tmp_path)
    assert set(posts) == {harness.post_id(1), harness.post_id(2)}
    assert len(skipped) == 1, [str(q) for q in skipped]
    (item,) = skipped
    assert item.where.startswith(WHERE[name]), item.where
    assert why in item.reason, item.reason
    assert "\n" not in item.reason and len(item.reason) <= 300
    json.dumps(item.raw, allow_nan=False)  # kept for inspection as plain JSON
    if not kept:
        assert item.raw is None
    elif name == "tags":
        assert item.raw == hostile  # the row, by column
    elif name != "feed":  # a feed entry is kept as feedparser read it
        assert item.raw == json.loads(json.dumps(hostile))


def hostile(name: str, path: str, value: Any) -> Any:
    return changed(HARNESSES[name].good(99), path, value)


OUT_OF_RANGE = [
    ("jsonl", "created_at", FUTURE, "created_at '9999-12-31T23:59:59-05:00' is out of range"),
    ("jsonl", "created_at", "0001-01-01T00:00:00+05:00", "is out of range"),
    ("jsonl", "created_at", "1969-12-31T23:59:59Z", "is out of range"),
    ("jsonl", "likes", HUGE, "likes 1000000000"),
    ("jsonl", "id", True, "id must be a string or a whole number, got True"),
    ("jsonl", "id", {"nested": 1}, "got {'nested': 1}"),
    ("jsonl", "id", 1.5e3, "got 1500.0"),
    ("jsonl", "id", " ", "id is blank"),
    ("jsonl", "reply_to", False, "reply_to must be a string or a whole number"),
    ("jsonl", "author", " \t", "author is blank"),
    ("twarc-v1", "created_at", FUTURE_V1, "is out of range"),
    ("twarc-v1", "favorite_count", HUGE, "likes 1000"),
    ("twarc-v1", "id_str", True, "no id_str"),
    ("twarc-v1", "user.screen_name", "   ", "user.screen_name is blank"),
    ("twarc-v2-flat", "created_at", FUTURE, "is out of range"),
    ("twarc-v2-flat", "public_metrics.like_count", HUGE, "is out of range"),
    ("twarc-v2-flat", "id", 1.5e3, "is not an id string"),
    ("twarc-v2-flat", "referenced_tweets.0.id", {"nested": 1}, "replied_to id must be"),
    ("twarc-v2-page", "created_at", FUTURE, "is out of range"),
    ("twarc-v2-page", "id", True, "is not an id string"),
    ("twarc-v2-page", "author.username", " ", "is blank"),
    ("tags", "created_at", FUTURE_V1, "is out of range"),
    ("tags", "from_user", "  ", "from_user is empty"),
    ("mastodon", "created_at", FUTURE, "created_at '9999-12-31T23:59:59-05:00' is out of range"),
    ("mastodon", "favourites_count", HUGE, "favourites_count"),
    ("mastodon", "uri", True, "no uri"),
    ("mastodon", "in_reply_to_id", {"nested": 1}, "in_reply_to_id must be"),
    ("mastodon", "account.acct", "  ", "account has no acct"),
    ("bluesky", "indexedAt", FUTURE, "indexedAt '9999-12-31T23:59:59-05:00' is out of range"),
    ("bluesky", "likeCount", HUGE, "likeCount"),
    ("bluesky", "uri", {"nested": 1}, "uri must be a string"),
    ("bluesky", "author.handle", "  ", "author.handle is blank"),
    ("x", "created_at", FUTURE, "is out of range"),
    ("x", "public_metrics.like_count", HUGE, "like"),
    ("x", "id", True, "is not an id string"),
    ("x", "author_id", " ", "is blank"),
    ("feed", "pubDate", "Mon, 01 Jan 1900 00:00:00 +0000", "published '1900-01-01T00:00:00"),
]


@pytest.mark.parametrize(("name", "path", "value", "why"), OUT_OF_RANGE, ids=short)
def test_case_40_an_out_of_range_value_quarantines_its_post_only(
    name: str, path: str, value: Any, why: str, tmp_path: Path
) -> None:
    assert_quarantined_alone(name, hostile(name, path, value), why, tmp_path)


MALFORMED = [
    ("jsonl", "text", {"a": 1}, "text must be a string"),
    ("jsonl", "hashtags", "CoPro16", "hashtags must be a list of strings"),
    ("jsonl", "media", [5], "media must be a list of objects"),
    ("jsonl", "author", DELETE, "missing author"),
    ("jsonl", "created_at", "yesterday", "created_at 'yesterday' is not ISO 8601"),
    ("jsonl", "deleted", "no", "deleted must be true or false"),
    ("twarc-v1", "user", "bob", "no user.screen_name"),
    ("twarc-v1", "entities.hashtags", 5, "TypeError"),
    ("twarc-v2-flat", "entities.hashtags", 5, "TypeError"),
    ("twarc-v2-page", "text", {"a": 1}, "text must be a string"),
    ("twarc-v2-page", "referenced_tweets", 5, "TypeError"),
    ("tags", "created_at", "yesterday", "is not ISO 8601"),
    ("tags", "text", "x" * 200_000, "not a CSV row (field larger than field limit (131072))"),
    ("mastodon", "tags", [5], "TypeError"),
    ("mastodon", "account", DELETE, "missing account"),
    ("mastodon", "reblog", "boost", "reblog is not an object"),
    ("mastodon", "content", ["<p>"], "content must be a string"),
    ("bluesky", "record", "x", "record or author is not an object"),
    ("bluesky", "record.facets", 5, "TypeError"),
    ("x", "entities.hashtags", 5, "TypeError"),
    ("x", "text", None, "text must be a string"),
    ("feed", "guid", DELETE, "no id, guid or link"),
]


@pytest.mark.parametrize(("name", "path", "value", "why"), MALFORMED, ids=short)
def test_case_10_a_malformed_post_is_quarantined_and_its_page_kept(
    name: str, path: str, value: Any, why: str, tmp_path: Path
) -> None:
    record = hostile(name, path, value)
    if name == "feed":  # an entry without a guid and without a link
        record = changed(record, "link", DELETE)
    unread = why.startswith("not a CSV row")  # csv could not split it: no cells to keep
    assert_quarantined_alone(name, record, why, tmp_path, kept=not unread)


@pytest.mark.parametrize("name", ["jsonl", "twarc-v1", "twarc-v2-page", "mastodon", "bluesky", "x"])
@pytest.mark.parametrize("junk", ["a string", 42, None, ["a", "list"]], ids=repr)
def test_case_10_a_record_that_is_not_an_object_is_quarantined(
    name: str, junk: Any, tmp_path: Path
) -> None:
    posts, skipped = read_with(name, junk, tmp_path)
    harness = HARNESSES[name]
    assert set(posts) == {harness.post_id(1), harness.post_id(2)}
    assert [q.reason for q in skipped] == ["not a JSON object"]
    assert skipped[0].raw == junk


def test_case_10_lines_that_are_not_json_are_quarantined_by_line(tmp_path: Path) -> None:
    good = HARNESSES["jsonl"].good
    path = tmp_path / "posts.jsonl"
    nan = json.dumps({**good(3), "score": float("nan")})  # Python writes NaN; JSON has none
    lines = [json.dumps(good(1)), "{oops", nan, "[" * 100_000, json.dumps(good(2))]
    path.write_bytes("\n".join(lines).encode() + b"\n\xff\xfe not utf-8\n")
    pages = list(read_jsonl(path))
    assert set(posts_by_id(pages)) == {"good-1", "good-2"}
    assert [(q.where, q.reason) for q in quarantined(pages)] == [
        ("line 2", "invalid JSON (Expecting property name enclosed in double quotes)"),
        (
            "line 3",
            "raw payload is not plain JSON (Out of range float values are not JSON compliant)",
        ),
        ("line 4", "invalid JSON (nested too deep)"),
        ("line 6", "not UTF-8"),
    ]
    assert quarantined(pages)[0].raw == "{oops"


def test_case_10_a_bad_record_in_a_v2_page_is_named_by_its_id(tmp_path: Path) -> None:
    harness = HARNESSES["twarc-v2-page"]
    bad = changed(harness.good(7), "created_at", "yesterday")
    pages = harness.read([harness.good(1), bad, {"id": {"x": 1}}], tmp_path)
    assert [q.where for q in quarantined(pages)] == [f"line 1 tweet {bad['id']}", "line 1 tweet #3"]


def test_whole_response_problems_still_fail_the_source() -> None:
    """A page that is not a list of posts is the source's failure, not one post's."""
    with pytest.raises(ConnectorError, match="Bluesky search for #CoPro16 answered no list"):
        bluesky_pages({"posts": {"not": "a list"}})
    with pytest.raises(ConnectorError, match="answered a bad page: data is not a list of posts"):
        x_pages({**X_PAGE, "data": 5})
