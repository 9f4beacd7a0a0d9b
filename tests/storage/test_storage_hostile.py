"""Case 40 at the storage level: a post whose values the database cannot hold is quarantined with its
reason, whatever connector made it, and never costs the rest of its page or the cursor. Also the
quarantine table itself: one transaction with the page, idempotent re-runs, any raw record kept."""

from __future__ import annotations

import itertools
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, assume, given, settings
from sqlalchemy import event, func, select

import storage.queries
from connectors.base import Page, Post, Quarantined
from storage.db import StorageError, make_engine
from storage.guard import CHECKS, RAW_CAP, why_unstorable
from storage.models import PostRow
from storage.queries import get_cursor, iter_quarantine, quarantine_count, save_page
from tests.helpers import HOSTILE_POSTS, HOSTILE_T0, deep, invoke, make_post

POSTS = PostRow.__table__  # type: ignore[attr-defined]
T0 = HOSTILE_T0  # when make_post's posts are dated


def stored_ids(engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(POSTS.c.post_id)).scalars())


HOSTILE = [  # (field, value, what the reason says)
    ("id", True, "id must be text, not bool"),
    ("id", {"a": 1}, "id must be text, not dict"),
    ("id", "", "id is blank"),
    ("id", "x" * 1001, "id is longer than 1000 bytes"),
    ("id", "é" * 501, "id is longer than 1000 bytes"),  # 501 characters, 1002 bytes
    ("author", "  ", "author is blank"),
    ("author", None, "author must be text, not NoneType"),
    ("platform", 7, "platform must be text, not int"),
    ("via", "v" * 1001, "via is longer than 1000 bytes"),
    ("local_id", 12, "local_id must be text, not int"),
    ("created_at", "2016-11-28T13:05Z", "created_at must be a date and time, not str"),
    (
        "created_at",
        datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))),
        "created_at 9999-12-31T23:00:00-05:00 cannot be converted to UTC",
    ),
    (
        "created_at",
        datetime(1, 1, 1, 1, tzinfo=timezone(timedelta(hours=5))),
        "cannot be converted to UTC",
    ),
    ("created_at", datetime(9999, 12, 31, 12), "too near an end of the calendar"),  # naive: UTC
    ("created_at", datetime(1, 1, 1, 23, tzinfo=UTC), "too near an end of the calendar"),
    ("edited_at", datetime(9999, 12, 31, tzinfo=UTC), "edited_at 9999-12-31T00:00:00+00:00 is too"),
    ("text", None, "text must be text, not NoneType"),
    ("text", "half \ud800 a pair", "text has an unpaired surrogate (U+D800)"),
    ("author_name", "\udfff", "author_name has an unpaired surrogate (U+DFFF)"),
    ("likes", 10**30, "likes 1000000000000000000000000000000 is outside the 64-bit range"),
    ("likes", 2**63, "likes 9223372036854775808 is outside the 64-bit range"),
    ("replies", -(2**63) - 1, "is outside the 64-bit range"),
    ("reposts", 10**5000, "reposts (a 16610-bit number) is outside the 64-bit range"),
    ("quotes", True, "quotes must be a whole number, not bool"),
    ("reposts", 1.5, "reposts must be a whole number, not float"),
    ("hashtags", "CoPro16", "hashtags must be a list of text, not str"),
    ("hashtags", ["ok", 5], "hashtags item 1 must be text, not int"),
    ("mentions", ("a@example.org",), "mentions must be a list of text, not tuple"),
    ("links", ["https://x.example/\ud83d"], "links item 0 has an unpaired surrogate"),
    ("media", ["https://x.example/a.png"], "media must be a list of JSON objects"),
    ("media", [{"alt": float("nan")}], "media is not JSON"),
    ("media", [{1: "an int key"}], "media changes when written as JSON"),
    ("raw", [1, 2], "raw must be a JSON object, not list"),
    ("raw", {"seen": {1, 2}}, "raw is not JSON"),
    ("raw", {"text": "\ud800"}, "raw is not JSON"),
    ("raw", {"deep": deep(5000)}, "raw is not JSON"),
    ("raw", {"big": 10**5000}, "raw is not JSON"),
]


@pytest.mark.parametrize(("name", "value", "says"), HOSTILE, ids=[h[2] for h in HOSTILE])
def test_case_40_a_value_the_database_cannot_hold_costs_only_its_own_post(
    engine, name, value, says
):
    bad = replace(make_post(2), **{name: value})
    saved = save_page(engine, "s", Page([make_post(1), bad, make_post(3)], cursor={"page": 1}))

    assert (saved.new, saved.quarantined) == (2, 1)
    assert stored_ids(engine) == [make_post(1).id, make_post(3).id]
    assert get_cursor(engine, "s") == {"page": 1}
    [row] = iter_quarantine(engine)
    assert says in row.reason and row.reason.startswith(f"{name} ")
    assert "\n" not in row.reason and row.source == "s"
    assert [q.reason for q in saved.refused] == [row.reason]


def test_case_40_a_count_of_10_to_the_30_is_kept_in_quarantine_with_the_whole_post(engine):
    saved = save_page(engine, "s", Page([make_post(1), make_post(2, likes=10**30)]))

    [row] = iter_quarantine(engine, "s")
    assert saved.new == 1 and row.location == f"mastodon post {make_post(2).id}"
    assert row.raw["likes"] == 10**30 and row.raw["text"] == "post 2 #CoPro16"
    assert row.raw["created_at"] == "2016-11-28T13:05:00+00:00" and row.raw["raw"] == {"id": "2"}


def test_case_40_odd_ids_still_name_where_the_post_was(engine):
    save_page(engine, "s", Page([make_post(1, id=True), make_post(1, id=""), make_post(1, id=" ")]))
    locations = sorted(r.location for r in iter_quarantine(engine))
    assert locations == ["mastodon post ' '", "mastodon post ''", "mastodon post True"]


BOUNDARIES = [  # values the database holds: stored as given (times as UTC)
    ("likes", 2**63 - 1, 2**63 - 1),
    ("replies", -(2**63), -(2**63)),
    ("created_at", datetime(2016, 11, 28, 13, 5), T0),  # naive: taken as UTC
    ("created_at", datetime(2016, 11, 29, 2, 5, tzinfo=timezone(timedelta(hours=13))), T0),
    ("created_at", datetime(1, 1, 2, tzinfo=UTC), datetime(1, 1, 2, tzinfo=UTC)),
    ("created_at", datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC),
     datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)),
    ("edited_at", datetime(9999, 12, 30, 18, tzinfo=timezone(timedelta(hours=-5))),
     datetime(9999, 12, 30, 23, tzinfo=UTC)),
    ("text", "", ""),
    ("text", "a NUL \x00 is kept on SQLite", "a NUL \x00 is kept on SQLite"),
    ("text", "🎉 emoji, ‮bidi and zero​width", "🎉 emoji, ‮bidi and zero​width"),
    ("author", "é" * 500, "é" * 500),  # 1000 bytes
    ("media", [{"url": "https://x.example/a.png", "nested": {"deep": [[[1]]]}}],
     [{"url": "https://x.example/a.png", "nested": {"deep": [[[1]]]}}]),
    ("raw", {"big": 10**30, "nul": "\x00"}, {"big": 10**30, "nul": "\x00"}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "value", "kept"), BOUNDARIES, ids=[b[0] for b in BOUNDARIES])
def test_case_40_values_the_database_can_hold_are_stored_as_given(engine, name, value, kept):
    saved = save_page(engine, "s", Page([replace(make_post(1), **{name: value})]))
    column = "post_id" if name == "id" else name
    with engine.connect() as conn:
        assert conn.execute(select(POSTS.c[column])).scalar_one() == kept
    assert (saved.new, saved.quarantined) == (1, 0)


def test_case_40_stored_boundary_values_read_back_through_the_exports(project, engine):
    save_page(engine, "s", Page([
        make_post(1, likes=2**63 - 1, created_at=datetime(1, 1, 2, tzinfo=UTC)),
        make_post(2, created_at=datetime(9999, 12, 30, 23, tzinfo=UTC), text="NUL \x00 here"),
    ]))  # fmt: skip
    for args in (["export", "--format", "jsonl", "-o", "-"], ["export", "-o", "-"]):
        result = invoke(project, *args)
        assert result.exit_code == 0, result.output
        assert str(2**63 - 1) in result.stdout


def test_the_guard_checks_every_field_of_post_but_deleted():
    assert set(CHECKS) | {"deleted"} == {f.name for f in fields(Post)}


def test_case_10_a_connectors_quarantined_records_are_kept_and_a_rerun_refreshes_them(engine):
    first, later = T0, T0 + timedelta(days=1)
    page = Page([make_post(1)], cursor={"line": 3})
    page.reject("line 2", "created_at 'yesterday' is not ISO 8601", {"created_at": "yesterday"})
    page.reject("line 3", "missing 'id'", {"text": "no id"})
    assert save_page(engine, "import:a.jsonl", page, now=first).quarantined == 2

    again = Page([make_post(1)], cursor={"line": 3})
    again.reject("line 2", "created_at 'today' is not ISO 8601", {"created_at": "today"})
    assert save_page(engine, "import:a.jsonl", again, now=later).quarantined == 1

    assert quarantine_count(engine) == 2
    rows = {r.location: r for r in iter_quarantine(engine, "import:a.jsonl")}
    assert rows["line 2"].reason == "created_at 'today' is not ISO 8601"
    assert rows["line 2"].raw == {"created_at": "today"}
    assert (rows["line 2"].first_seen, rows["line 2"].last_seen) == (first, later)
    assert (rows["line 3"].first_seen, rows["line 3"].last_seen) == (first, first)
    assert [r.location for r in iter_quarantine(engine)] == ["line 2", "line 3"]  # last seen first
    assert list(iter_quarantine(engine, "another source")) == []


def test_the_same_place_twice_in_one_page_is_one_row(engine):
    page = Page([make_post(1, likes=10**30), make_post(1, likes=10**31)])
    page.reject("mastodon post x", "first", None)
    page.reject("mastodon post x", "second", None)
    assert save_page(engine, "s", page).quarantined == 2
    assert sorted(r.reason.split()[0] for r in iter_quarantine(engine)) == ["likes", "second"]


class Unshowable:
    def __repr__(self) -> str:
        raise RuntimeError("no")


def cycle() -> list:
    loop: list = []
    loop.append(loop)
    return loop


RAWS = [  # a quarantined record as received -> what the quarantine keeps of it
    ({"when": T0, "tags": {"a"}}, {"when": "2016-11-28T13:05:00+00:00", "tags": "{'a'}"}),
    ({"nan": float("nan")}, "{'nan': nan}"),
    ({"s": "half \ud800", "nul": "a\x00b"}, {"s": "half ?", "nul": "a\x00b"}),
    (Unshowable(), "<Unshowable that cannot be shown>"),
    (cycle(), "[[...]]"),
    ({"big": 10**5000}, "<dict that cannot be shown>"),
    (b"\x00bytes", "b'\\x00bytes'"),
    (None, None),
]


@pytest.mark.parametrize(("raw", "kept"), RAWS)
def test_any_raw_record_is_kept_without_raising(engine, raw, kept):
    page = Page([make_post(1)])
    page.quarantined.append(Quarantined("line 1\x00\ud800", "bad\nvalue \x00", raw))
    save_page(engine, "s", page)
    [row] = iter_quarantine(engine)
    assert (row.location, row.reason, row.raw) == ("line 1\\x00\\ud800", "bad value \\x00", kept)


def test_a_huge_raw_record_is_cut_to_the_documented_cap(engine):
    page = Page([])
    page.reject("line 1", "too big", {"text": "x" * (3 * RAW_CAP)})
    save_page(engine, "s", page)
    [row] = iter_quarantine(engine)
    assert row.raw["truncated"] is True and len(row.raw["json_text"]) == RAW_CAP
    assert row.raw["json_text"].startswith('{"text": "xxx')


def test_quarantine_posts_and_cursor_are_one_transaction(engine):
    save_page(engine, "s", Page([make_post(1)], cursor={"page": 1}))
    page = Page([make_post(2), make_post(3, likes=10**30)], cursor={"page": object()})
    page.reject("line 9", "bad", {})
    with pytest.raises(Exception):  # noqa: B017 - the cursor cannot be stored: the page fails whole
        save_page(engine, "s", page)
    assert stored_ids(engine) == [make_post(1).id]
    assert quarantine_count(engine) == 0 and get_cursor(engine, "s") == {"page": 1}


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ({"likes": 10**30}, "OverflowError: Python int too large to convert to SQLite INTEGER"),
        ({"text": "half \ud800"}, "UnicodeEncodeError"),
        ({"media": [{"seen": {1}}]}, "TypeError: Object of type set is not JSON serializable"),
        ({"text": None}, "IntegrityError: NOT NULL constraint failed: post.text"),
    ],
)
def test_a_post_the_database_refuses_is_found_one_by_one(engine, monkeypatch, value, error):
    monkeypatch.setattr(storage.queries, "why_unstorable", lambda post, dialect: None)
    save_page(engine, "s", Page([make_post(0)]))
    page = Page([make_post(0, likes=4), make_post(1), replace(make_post(2), **value), make_post(3)])
    saved = save_page(engine, "s", page, now=T0)

    assert (saved.new, saved.updated, saved.quarantined) == (2, 1, 1)
    assert stored_ids(engine) == [make_post(n).id for n in (0, 1, 3)]
    [row] = iter_quarantine(engine)
    assert row.reason.startswith("the database refused it: ") and error in row.reason


@pytest.mark.parametrize(
    ("pragma", "says"),
    [("query_only = ON", "read-only"), ("max_page_count = {pages}", "disk is full")],
    ids=["read-only", "disk-full"],
)
def test_a_failing_database_fails_the_page_instead_of_quarantining_it(config, engine, pragma, says):
    save_page(engine, "s", Page([make_post(1)], cursor={"page": 1}))
    with engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
    failing = make_engine(config.database_url)  # SQLite ends the transaction itself on a full disk
    event.listen(
        failing, "connect", lambda conn, _: conn.execute(f"PRAGMA {pragma.format(pages=pages)}")
    )
    page = Page([make_post(2, text="x" * 100_000), make_post(3, likes=10**30)], {"page": 2})
    with pytest.raises(StorageError, match=f"could not save posts from 's': .*{says}"):
        save_page(failing, "s", page)
    failing.dispose()
    assert stored_ids(engine) == [make_post(1).id]
    assert quarantine_count(engine) == 0 and get_cursor(engine, "s") == {"page": 1}


# Property: whatever values a connector puts in a post, saving it beside a good post never raises,
# the good post and the cursor are always stored, and the other is stored or quarantined with why.
PAGES = itertools.count()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])  # fmt: skip
@given(hostile=HOSTILE_POSTS)
def test_case_40_any_post_values_never_cost_the_good_post_or_the_cursor(engine, hostile):
    n = next(PAGES)
    good = make_post(f"good-{n}")
    assume(hostile.id != good.id)
    saved = save_page(engine, "prop", Page([good, hostile], cursor={"n": n}))

    assert get_cursor(engine, "prop") == {"n": n}
    with engine.connect() as conn:
        count = select(func.count()).select_from(POSTS)
        assert conn.execute(count.where(POSTS.c.post_id == good.id)).scalar_one() == 1
        if not saved.refused:  # stored: it reads back
            key = (POSTS.c.platform == hostile.platform) & (POSTS.c.post_id == hostile.id)
            assert conn.execute(count.where(key)).scalar_one() == 1
    if saved.refused:
        [refused] = saved.refused
        assert refused.reason == why_unstorable(hostile, "sqlite")  # the guard knew; no fallback
        assert refused.where in {r.location for r in iter_quarantine(engine, "prop")}
    else:
        assert why_unstorable(hostile, "sqlite") is None
