"""Property-based fuzzing of every parser and importer with hostile values (issue 10).

Real payloads (tests/fixtures, through tests/harness.py) have one field replaced by an arbitrary
JSON value, date, number or Unicode text, or removed. Whatever it holds, the page-level entry
point never raises, and the good records beside it always come out as posts.
"""

from __future__ import annotations

import copy
import json
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.archives import post_from_interchange
from connectors.base import Page, reason
from connectors.bluesky import post_from_view
from connectors.mastodon import post_from_status
from connectors.values import storable
from connectors.x import posts_from_v2_page
from tests.harness import HARNESSES, X_PAGE, posts_by_id, quarantined

FUZZ = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
DELETE = object()

# Any Unicode, unpaired surrogates and controls included; a few long runs and known tricks.
TEXT = st.text(st.characters(exclude_categories=()), max_size=40) | st.sampled_from(
    ["", " ", "\x00", "\u202e", "\ud800", "a" * 5000, "(" * 300 + ")" * 300, "https://x.org/a)."]
)
NUMBERS = (
    st.integers()
    | st.integers(min_value=2**62, max_value=2**70)
    | st.sampled_from([10**30, -(10**30), 2**63, 2**63 - 1, -1, 0])
    | st.floats()
)
OFFSETS = st.integers(-23 * 60 + 1, 23 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))
MOMENTS = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=OFFSETS
)
ISO_DATES = MOMENTS.map(datetime.isoformat) | st.sampled_from(
    ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "2016-11-28", "yesterday"]
)
V1_DATES = MOMENTS.map(lambda m: m.strftime("%a %b %d %H:%M:%S %z ") + f"{m.year:04d}")
SCALARS = st.none() | st.booleans() | NUMBERS | TEXT | ISO_DATES
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


def paths(record: Any, prefix: tuple = (), depth: int = 3) -> Iterator[tuple]:
    """Every place in `record` a value can be replaced: keys and list items, `depth` levels down."""
    items = record.items() if isinstance(record, dict) else enumerate(record)
    for key, value in items:
        yield (*prefix, key)
        if depth > 1 and isinstance(value, dict | list) and value:
            yield from paths(value, (*prefix, key), depth - 1)


def replaced(record: Any, path: tuple, value: Any) -> Any:
    record = copy.deepcopy(record)
    target = record
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return record


def mutations(record: Any, values: st.SearchStrategy) -> st.SearchStrategy:
    return st.tuples(st.sampled_from(sorted(paths(record), key=repr)), values | st.just(DELETE))


def read(name: str, records: list[Any]) -> list[Page]:
    with tempfile.TemporaryDirectory() as tmp:
        return HARNESSES[name].read(records, Path(tmp))


def check_page_kept_the_good(name: str, hostile: Any) -> None:
    """Good records on either side of `hostile` are posts; it is a post, quarantined or skipped."""
    harness = HARNESSES[name]
    pages = read(name, [harness.good(1), hostile, harness.good(2)])
    posts, skipped = posts_by_id(pages), quarantined(pages)
    assert {harness.post_id(1), harness.post_id(2)} <= set(posts)
    assert len(posts) <= 3 and len(skipped) <= 1
    for post in posts.values():
        json.dumps(post.raw, allow_nan=False)
        post.text.encode("utf-8")  # storable: no unpaired surrogates left
    for item in skipped:
        assert item.where and item.reason and "\n" not in item.reason and len(item.reason) <= 300
        json.dumps(item.raw, allow_nan=False)


JSON_SOURCES = ["jsonl", "twarc-v1", "twarc-v2-flat", "twarc-v2-page", "mastodon", "bluesky", "x"]


@pytest.mark.parametrize("name", JSON_SOURCES)
@FUZZ
@given(data=st.data())
def test_case_10_a_fuzzed_field_never_costs_the_page(name: str, data: st.DataObject) -> None:
    good = HARNESSES[name].good(99)
    path, value = data.draw(mutations(good, JSON), label="mutation")
    check_page_kept_the_good(name, replaced(good, path, value))


@pytest.mark.parametrize("name", ["jsonl", "mastodon", "bluesky", "x", "twarc-v2-page"])
@FUZZ
@given(record=JSON)
def test_case_10_a_fuzzed_record_in_place_of_a_post_never_costs_the_page(
    name: str, record: Any
) -> None:
    check_page_kept_the_good(name, record)


DATE_FIELDS = {
    "jsonl": ("created_at", ISO_DATES), "mastodon": ("created_at", ISO_DATES),
    "bluesky": ("indexedAt", ISO_DATES), "x": ("created_at", ISO_DATES),
    "twarc-v2-flat": ("created_at", ISO_DATES), "twarc-v1": ("created_at", V1_DATES),
    "tags": ("created_at", V1_DATES),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(DATE_FIELDS))
@FUZZ
@given(data=st.data())
def test_case_40_any_date_is_a_post_in_range_or_a_quarantined_one(
    name: str, data: st.DataObject
) -> None:
    field, dates = DATE_FIELDS[name]
    when = data.draw(dates, label=field)
    harness = HARNESSES[name]
    pages = read(name, [harness.good(1), {**harness.good(99), field: when}])
    posts = posts_by_id(pages)
    assert harness.post_id(1) in posts
    if harness.post_id(99) in posts:
        assert 1970 <= posts[harness.post_id(99)].created_at.year <= 2099
    else:
        assert [q.where for q in quarantined(pages)]


@FUZZ
@given(data=st.data())
def test_case_10_tags_rows_with_any_cells_never_cost_the_sheet(data: st.DataObject) -> None:
    good = HARNESSES["tags"].good(99)
    column = data.draw(st.sampled_from(sorted(good)), label="column")
    check_page_kept_the_good("tags", {**good, column: data.draw(TEXT | ISO_DATES, label="cell")})


FEED_FIELDS = ["title", "link", "guid", "pubDate", "author", "description", "category"]
RFC822 = MOMENTS.map(lambda m: format_datetime(m).replace(f"{m.year:04d}", str(m.year), 1))


@FUZZ
@given(data=st.data())
def test_case_10_feed_entries_with_any_values_never_cost_the_feed(data: st.DataObject) -> None:
    field = data.draw(st.sampled_from(FEED_FIELDS), label="element")
    value = data.draw(TEXT | RFC822 | ISO_DATES, label="value")
    check_page_kept_the_good("feed", {**HARNESSES["feed"].good(99), field: value})


# -- the record parsers themselves: a post storage can hold, or a ValueError-like reason ---------

PARSERS = {
    "interchange": (HARNESSES["jsonl"].good, post_from_interchange),
    "mastodon status": (HARNESSES["mastodon"].good, lambda s: post_from_status(s, "a.example")),
    "bluesky view": (HARNESSES["bluesky"].good, lambda v: post_from_view(v)[0]),
}


@pytest.mark.parametrize("name", sorted(PARSERS))
@FUZZ
@given(data=st.data())
def test_each_record_parser_gives_a_storable_post_or_one_reason(
    name: str, data: st.DataObject
) -> None:
    good, parse = PARSERS[name]
    path, value = data.draw(mutations(good(5), JSON), label="mutation")
    try:
        post = parse(replaced(good(5), path, value))
    except Exception as exc:  # isolate quarantines the record with this reason
        why = reason(exc)
        assert why and "\n" not in why and len(why) <= 300
        return
    if post is None:  # an opted-out account
        return
    try:
        storable(post)
    except ValueError:  # refused with its reason (never another error): quarantined by isolate
        return
    assert post.id.strip() and post.author.strip()
    json.dumps(post.raw, allow_nan=False)


@FUZZ
@given(data=st.data())
def test_posts_from_a_fuzzed_v2_page_keeps_its_good_posts(data: st.DataObject) -> None:
    good = HARNESSES["x"].good
    page = {**X_PAGE, "data": [good(1), good(99), good(2)]}
    path, value = data.draw(mutations(page, JSON), label="mutation")
    if path[:1] == ("data",) and len(path) == 1:
        return  # the whole `data` replaced: the response's failure, tested elsewhere
    fuzzed = replaced(page, path, value)
    try:
        found = posts_from_v2_page(fuzzed)
    except ValueError as exc:  # only when `data` itself is not a list of posts
        assert "data is not a list" in str(exc)
        return
    kept = {p.id for p in found.posts}
    untouched = [g for g in (good(1), good(2)) if g in fuzzed.get("data", [])]
    assert {g["id"] for g in untouched} <= kept
