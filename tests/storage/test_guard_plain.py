"""storage.guard's one-pass check of the common post (issue 15): it may only ever say "storable"
when every check in CHECKS says so, and why_unstorable says exactly what CHECKS say."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.base import Post
from storage import guard
from storage.guard import CHECKS, KEY_BYTES, why_unstorable
from tests.helpers import HOSTILE_POSTS, deep, make_post

DIALECTS = ("sqlite", "postgresql")


def every_check(post: Post, dialect: str) -> str | None:
    """The first problem CHECKS find, field by field, as the guard said before its one pass."""
    for name, check in CHECKS.items():
        if problem := check(getattr(post, name, None), dialect):
            return f"{name} {problem}"
    return None


def test_the_one_pass_looks_at_every_field_the_checks_do():
    assert guard.PLAIN_COVERS_ALL  # a new field checked in CHECKS alone would turn it off


class Text(str):
    """Text of a subclass: stored as text, but not of the plain kind."""


def cycle() -> list:
    loop: list = []
    loop.append(loop)
    return loop


# Values a common post may hold, and values next to them that storage cannot hold (or that need
# a closer look): JSON that reads back changed, text JSON cannot write, counts past 32 bits.
PLAIN = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
ODD = st.sampled_from(
    [
        (1, 2), {1: "a"}, {"a": (1,)}, float("nan"), float("-inf"), "half \ud800", {"\udfff": 1},
        Text("a"), True, 2**31, 2**63, 10**30, 10**5000, "NUL \x00", cycle(), [[[[[[[[]]]]]]]],
        datetime(2016, 11, 28, tzinfo=timezone(timedelta(hours=5))), datetime(2016, 11, 28),
        datetime(1, 1, 1, tzinfo=UTC), " ", "", "k" * (KEY_BYTES // 4 + 1),
        "é" * (KEY_BYTES // 2 + 1),
    ]
)  # fmt: skip
FIELD = st.sampled_from([name for name in CHECKS if name not in ("raw", "media")])


@st.composite
def common_posts(draw) -> Post:
    """make_post with plain JSON in raw and media, and now and then an odd value anywhere."""
    keys = st.text(max_size=4)
    post = make_post(draw(st.integers(0, 99)), raw=draw(st.dictionaries(keys, PLAIN)),
                     media=draw(st.lists(st.dictionaries(keys, PLAIN), max_size=2)),
                     likes=draw(st.none() | st.integers(0, 2**40)))  # fmt: skip
    for _ in range(draw(st.integers(0, 2))):
        where = draw(st.sampled_from(["field", "raw", "media"]))
        odd = draw(ODD)
        if where == "field":
            post = replace(post, **{draw(FIELD): odd})
        elif where == "raw":
            post = replace(post, raw={**post.raw, "odd": odd})
        else:
            post = replace(post, media=[*post.media, {"odd": odd}])
    return post


@settings(max_examples=400, deadline=None)
@given(post=common_posts() | HOSTILE_POSTS, dialect=st.sampled_from(DIALECTS))
def test_the_guard_says_what_every_check_says(post, dialect):
    expected = every_check(post, dialect)
    if guard._plainly_storable(post, dialect):
        assert expected is None
    assert why_unstorable(post, dialect) == expected


@pytest.mark.parametrize("dialect", DIALECTS)
def test_common_posts_are_told_storable_in_one_pass(dialect):
    edited = datetime(2016, 11, 28, 14, tzinfo=UTC)
    post = make_post(1, raw={"a": [1, 2.5, None, True, {"b": "é👏"}]}, media=[{"url": "u"}],
                     likes=3, edited_at=edited, via="file.jsonl")  # fmt: skip
    assert guard._plainly_storable(post, dialect)
    assert why_unstorable(post, dialect) is None


@pytest.mark.parametrize(
    ("change", "dialect", "says"),
    [
        ({"raw": {"a": (1, 2)}}, "sqlite", "raw changes when written as JSON"),
        ({"media": [{1: "a"}]}, "sqlite", "media changes when written as JSON"),
        ({"raw": {"n": float("nan")}}, "sqlite", "raw is not JSON"),
        ({"raw": {"n": 10**5000}}, "sqlite", "raw is not JSON"),
        ({"raw": {"k\ud800": 1}}, "sqlite", "raw is not JSON"),
        ({"raw": {"loop": cycle()}}, "sqlite", "raw is not JSON"),
        ({"likes": 2**31}, "postgresql", "likes 2147483648 is outside the 32-bit range"),
        ({"text": "NUL \x00"}, "postgresql", "text has a NUL character"),
        ({"hashtags": ["a", 1]}, "sqlite", "hashtags item 1 must be text, not int"),
        ({"author": " "}, "sqlite", "author is blank"),
    ],
)
def test_what_the_one_pass_cannot_vouch_for_is_named_by_the_checks(change, dialect, says):
    post = replace(make_post(1), **change)
    assert not guard._plainly_storable(post, dialect)
    assert (why_unstorable(post, dialect) or "").startswith(says)


@pytest.mark.parametrize(
    "change",
    [
        {"created_at": datetime(2016, 11, 28, 13, tzinfo=timezone(timedelta(hours=1)))},
        {"id": "k" * KEY_BYTES},
        {"raw": {"big": 2**80}},
        {"raw": {"deep": deep(100)}},
        {"text": Text("a subclass of text")},
    ],
    ids=["offset", "long-key", "big-number", "deep-json", "text-subclass"],
)
def test_storable_posts_the_one_pass_leaves_to_the_checks_are_still_storable(change):
    post = replace(make_post(1), **change)
    assert not guard._plainly_storable(post, "sqlite")
    assert why_unstorable(post, "sqlite") is None
