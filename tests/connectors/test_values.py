"""connectors/values.py and the record-level helpers of connectors/base.py: what a post may hold."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from connectors.archives import post_from_interchange
from connectors.base import Page, Post, isolate, parse_time
from connectors.values import MAX_COUNT, account, count, optional_id, post_id, storable
from tests.harness import jsonl_good

WHEN = datetime(2016, 11, 28, 12, tzinfo=UTC)


def test_parse_time_turns_overflow_into_a_clear_reason() -> None:
    with pytest.raises(ValueError) as caught:
        parse_time("9999-12-31T23:59:59-05:00", "created_at")
    assert str(caught.value) == (
        "created_at '9999-12-31T23:59:59-05:00' is out of range "
        "(dates from 1970 to 2099 are accepted)"
    )
    with pytest.raises(ValueError, match="out of range"):
        parse_time("0001-01-01T00:00:00+05:00")  # before year 1 once in UTC


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2016-11-28T13:05:00+01:00", datetime(2016, 11, 28, 12, 5, tzinfo=UTC)),
        ("2016-11-28T12:05:00z", datetime(2016, 11, 28, 12, 5, tzinfo=UTC)),
        ("2016-11-28 12:05", datetime(2016, 11, 28, 12, 5, tzinfo=UTC)),  # naive: UTC
        ("1970-01-01T00:00:00Z", datetime(1970, 1, 1, tzinfo=UTC)),
        ("2099-12-31T23:59:59Z", datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_parse_time_reads_iso_8601_within_the_window(value: str, expected: datetime) -> None:
    assert parse_time(value) == expected


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("1969-12-31T23:59:59Z", "is out of range"),
        ("2100-01-01T00:00:00Z", "is out of range"),
        ("2099-12-31T23:00:00-05:00", "is out of range"),  # 2100 in UTC
        ("yesterday", "is not ISO 8601"),
        (20161128, "is not ISO 8601"),
        (None, "is not ISO 8601"),
        ("x" * 10_000, "is not ISO 8601"),
    ],
)
def test_parse_time_names_the_field_and_shows_the_value_briefly(value: object, why: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_time(value, "edited_at")
    message = str(caught.value)
    assert message.startswith("edited_at ") and why in message and len(message) < 150


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1097", "1097"), (1097, "1097"), ("at://did:plc:x/y/z", "at://did:plc:x/y/z")],
)
def test_ids_are_strings_or_whole_numbers(value: object, expected: str) -> None:
    assert post_id(value) == expected


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (True, "id must be a string or a whole number, got True"),
        ({"nested": 1}, "got {'nested': 1}"),
        (1.5e3, "got 1500.0"),
        ([1], "got [1]"),
        (None, "got None"),
        ("", "id is blank"),
        (" \t\n", "id is blank"),
        ("9" * 1001, "id is longer than 1000 bytes"),
    ],
)
def test_ids_of_another_type_blank_or_huge_are_refused(value: object, why: str) -> None:
    with pytest.raises(ValueError) as caught:
        post_id(value)
    assert why in str(caught.value)


def test_references_may_be_absent_but_not_of_another_type() -> None:
    assert optional_id(None, "reply_to") is None and optional_id("", "reply_to") is None
    assert optional_id(42, "reply_to") == "42"
    with pytest.raises(ValueError, match="reply_to must be a string or a whole number"):
        optional_id(False, "reply_to")


def test_an_author_is_a_string_that_is_not_blank() -> None:
    assert account("a@example.org") == "a@example.org"
    for bad, why in ((" ", "author is blank"), (5, "author must be a string")):
        with pytest.raises(ValueError, match=why):
            account(bad)


def test_counts_must_fit_in_64_bits() -> None:
    assert count(MAX_COUNT, "likes") == MAX_COUNT
    assert count(MAX_COUNT, "likes", strict=True) == MAX_COUNT
    for strict in (False, True):
        with pytest.raises(ValueError, match=r"likes 1000+… is out of range"):
            count(10**30, "likes", strict=strict)
        with pytest.raises(ValueError, match="out of range"):
            count(-(10**30), "likes", strict=strict)


def test_a_platform_count_of_the_wrong_type_is_none_and_ours_an_error() -> None:
    for quirk in ("12", 1.5, True, -3, [1]):
        assert count(quirk, "likes") is None
    assert count("12", "likes", strict=True) == 12
    assert count("0" * 40 + "7", "likes", strict=True) == 7
    for bad in ("١٢", "1.5", 1.0, True, -3, "9" * 5000):
        with pytest.raises(ValueError, match="likes"):
            count(bad, "likes", strict=True)


def test_the_interchange_rejects_loose_values_it_once_stored_as_text() -> None:
    """Before: true, {"nested": 1} and 1.5e3 were stored as "True", "{'nested': 1}", "1500.0"."""
    good = jsonl_good(1)
    for key, value in [("id", True), ("id", {"nested": 1}), ("id", 1.5e3), ("reply_to", True),
                       ("quote_of", {"a": 1}), ("repost_of", 2.5), ("author", "  "),
                       ("likes", 10**30), ("author_name", 5), ("url", {"u": 1})]:  # fmt: skip
        with pytest.raises(ValueError, match=key):
            post_from_interchange({**good, key: value})
    assert post_from_interchange({**good, "id": 1097, "reply_to": 1000}).reply_to == "1000"


def post(**changes: object) -> Post:
    values = {"platform": "jsonl", "id": "1", "created_at": WHEN, "author": "a", "text": "hi"}
    return Post(**{**values, **changes})  # type: ignore[arg-type]


def test_storable_repairs_unpaired_surrogates_in_text_and_raw() -> None:
    checked = storable(post(text="a\ud800b", links=["https://x.org/\udfff"], raw={"t": "\ud83d"}))
    assert checked.text == "a\ufffdb" and checked.links == ["https://x.org/\ufffd"]
    assert checked.raw == {"t": "\ufffd"}
    json.dumps(checked.raw, ensure_ascii=False).encode("utf-8")  # now writable as UTF-8
    assert storable(post(text="NUL\x00 and \u202e stay")).text == "NUL\x00 and \u202e stay"


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"id": "a\ud800"}, "id 'a\\ud800' is not valid Unicode"),
        ({"author": " "}, "author is blank"),
        ({"likes": -1}, "likes must be a whole number"),
        ({"likes": True}, "likes must be a whole number"),
        ({"likes": 2**63}, "out of range"),
        ({"text": None}, "text must be a string"),
        ({"lang": 5}, "lang must be a string"),
        ({"hashtags": ["a", 5]}, "hashtags must be a list of strings"),
        ({"media": ["x"]}, "media must be a list of objects"),
        ({"raw": {"x": float("nan")}}, "raw payload is not plain JSON"),
        ({"raw": {"x": object()}}, "raw payload is not plain JSON"),
        ({"created_at": datetime(2016, 1, 1)}, "is not an aware datetime"),
        ({"created_at": datetime(1960, 1, 1, tzinfo=UTC)}, "created_at"),
        ({"edited_at": datetime(9999, 12, 31, 23, tzinfo=timezone(-timedelta(hours=5)))},
         "edited_at"),
        ({"deleted": "no"}, "deleted must be true or false"),
    ],
)  # fmt: skip
def test_storable_names_the_first_value_storage_cannot_hold(changes: dict, why: str) -> None:
    with pytest.raises(ValueError) as caught:
        storable(post(**changes))
    assert why in str(caught.value)


def test_isolate_quarantines_any_exception_but_never_an_interrupt() -> None:
    def parse(item: object) -> Post:
        if item == "overflow":
            raise OverflowError("date value out of range")
        if item == "missing":
            return {}["account"]  # type: ignore[return-value]
        return post(id=str(item))

    page = Page([])
    posts = isolate(["1", "overflow", "missing", "2"], parse, lambda n, _: f"#{n}", page)
    assert [p.id for p in posts] == ["1", "2"]
    assert page.rejected == ["#1: OverflowError: date value out of range", "#2: missing account"]
    assert [q.raw for q in page.quarantined] == ["overflow", "missing"]
    for stop in (KeyboardInterrupt, SystemExit):

        def interrupted(_: object, stop: type[BaseException] = stop) -> Post:
            raise stop()

        with pytest.raises(stop):
            isolate(["1"], interrupted, lambda n, _: "x", Page([]))


def test_a_quarantined_record_is_kept_as_plain_json() -> None:
    page = Page([])
    page.reject("line 3", "bad", {"x": float("nan")})
    page.reject("line 4", "bad", {"fine": [1, "a"]})
    assert page.quarantined[0].raw == "{'x': nan}"  # JSON has no NaN: kept as its repr
    assert page.quarantined[1].raw == {"fine": [1, "a"]}
