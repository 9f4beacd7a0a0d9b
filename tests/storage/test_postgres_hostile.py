"""Cases 40 and 41 on PostgreSQL, where the database is stricter than SQLite: NUL characters,
32-bit counts, the size of an index row, and an aborted transaction that only a savepoint recovers.

Runs only when AGGREGATOR_TEST_POSTGRES_URL names a server (a role allowed to CREATE DATABASE);
each test gets a new, empty database that is dropped afterwards. .ci/run starts one on 127.0.0.1.
"""

from __future__ import annotations

import itertools
import os
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

URL = os.environ.get("AGGREGATOR_TEST_POSTGRES_URL", "")
if not URL:
    pytest.skip(
        "PostgreSQL tests skipped: set AGGREGATOR_TEST_POSTGRES_URL="
        "postgresql+psycopg://USER:PASSWORD@127.0.0.1/DB (a role that may create databases)",
        allow_module_level=True,
    )

from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from sqlalchemy import select  # noqa: E402

import storage.queries  # noqa: E402
from connectors.base import Page  # noqa: E402
from storage.db import open_database  # noqa: E402
from storage.guard import why_unstorable  # noqa: E402
from storage.models import PostRow  # noqa: E402
from storage.queries import get_cursor, iter_quarantine, save_page  # noqa: E402
from tests.helpers import HOSTILE_POSTS, make_post, postgres_database  # noqa: E402

POSTS = PostRow.__table__  # type: ignore[attr-defined]
T0 = datetime(2016, 11, 28, 13, 5, tzinfo=UTC)


@pytest.fixture
def pg_url():
    """A new empty database on the test server, dropped (connections and all) afterwards."""
    with postgres_database(URL) as url:
        yield url


@pytest.fixture
def engine(pg_url):
    engine = open_database(pg_url)
    yield engine
    engine.dispose()


def stored_ids(engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(POSTS.c.post_id)).scalars())


def incompressible(n_bytes: int, seed: int) -> str:
    """Random CJK text of about `n_bytes` UTF-8 bytes: an index cannot compress it below its size."""
    rng = random.Random(seed)
    return "".join(chr(rng.randrange(0x4E00, 0x9FA0)) for _ in range(n_bytes // 3))


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("text", "a NUL \x00 here", "text has a NUL character, which PostgreSQL cannot store"),
        ("author_name", "\x00", "author_name has a NUL character"),
        ("hashtags", ["Co\x00Pro16"], "hashtags item 0 has a NUL character"),
        ("likes", 2**31, "likes 2147483648 is outside the 32-bit range"),
        ("replies", -(2**31) - 1, "is outside the 32-bit range"),
        ("id", incompressible(1003, 1), "id is longer than 1000 bytes"),
    ],
    ids=["nul-text", "nul-name", "nul-hashtag", "int4-high", "int4-low", "long-id"],
)
def test_case_40_what_postgresql_cannot_hold_is_quarantined(engine, name, value, says):
    bad = replace(make_post(2), **{name: value})
    saved = save_page(engine, "s", Page([make_post(1), bad, make_post(3)], cursor={"page": 1}))

    assert (saved.new, saved.quarantined) == (2, 1)
    assert stored_ids(engine) == [make_post(1).id, make_post(3).id]
    assert get_cursor(engine, "s") == {"page": 1}
    [row] = iter_quarantine(engine)
    assert says in row.reason and row.reason.startswith(f"{name} ")


def test_case_40_the_largest_values_postgresql_holds_are_stored(engine):
    platform, post_id = incompressible(999, 2), incompressible(999, 3)
    edge = make_post(1, platform=platform, id=post_id, via=incompressible(999, 4),
                     author=incompressible(999, 5), likes=2**31 - 1, replies=-(2**31),
                     created_at=datetime(9999, 12, 30, 23, 59, tzinfo=UTC),
                     raw={"nul": "\x00", "big": 10**30})  # fmt: skip
    early = make_post(2, created_at=datetime(1, 1, 2, tzinfo=UTC))
    assert save_page(engine, "s", Page([edge, early])).new == 2
    with engine.connect() as conn:
        row = conn.execute(select(POSTS).where(POSTS.c.post_id == post_id)).one()
    assert (row.platform, row.likes, row.replies) == (platform, 2**31 - 1, -(2**31))
    assert row.raw == {"nul": "\x00", "big": 10**30}


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Etc/GMT+12"])  # +14:00 and -12:00
def test_case_40_times_at_the_calendar_edges_read_back_in_any_session_zone(
    pg_url, engine, monkeypatch, zone
):
    ends = [datetime(1, 1, 2, tzinfo=UTC), datetime(9999, 12, 30, 23, 59, tzinfo=UTC)]
    save_page(engine, "s", Page([make_post(n, created_at=when) for n, when in enumerate(ends)]))
    monkeypatch.setenv("PGTZ", zone)
    reader = open_database(pg_url)
    try:
        with reader.connect() as conn:
            times = conn.execute(select(POSTS.c.created_at).order_by(POSTS.c.id)).scalars().all()
    finally:
        reader.dispose()
    assert times == ends


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ({"text": "NUL \x00"}, "DataError"),
        ({"likes": 2**31}, "NumericValueOutOfRange"),
        ({"id": incompressible(3000, 6)}, "ProgramLimitExceeded"),  # an index row too big
    ],
    ids=["nul", "int4", "index-row"],
)
def test_a_post_postgresql_refuses_is_set_aside_and_the_transaction_goes_on(
    engine, monkeypatch, value, error
):
    monkeypatch.setattr(storage.queries, "why_unstorable", lambda post, dialect: None)
    page = Page([make_post(1), replace(make_post(2), **value), make_post(3)], cursor={"p": 2})
    saved = save_page(engine, "s", page)

    assert (saved.new, saved.quarantined) == (2, 1)
    assert stored_ids(engine) == [make_post(1).id, make_post(3).id]
    assert get_cursor(engine, "s") == {"p": 2}
    [row] = iter_quarantine(engine)
    assert row.reason.startswith("the database refused it: ") and error in row.reason


def test_case_41_an_older_copy_keeps_the_edit_on_postgresql(engine):
    edited = make_post(1, text="corrected", edited_at=T0 + timedelta(hours=1), likes=3)
    save_page(engine, "a", Page([make_post(1)]))
    save_page(engine, "b", Page([edited]))
    stale = save_page(engine, "c", Page([edited, make_post(1, likes=7)]))  # original last

    assert (stale.new, stale.updated) == (0, 1)  # the count refreshed; the content did not
    with engine.connect() as conn:
        row = conn.execute(select(POSTS)).one()
    assert (row.text, row.edited_at, row.likes, row.source) == (
        "corrected",
        edited.edited_at,
        7,
        "a",
    )


def test_quarantine_is_refreshed_not_repeated_on_postgresql(engine):
    for n, now in enumerate([T0, T0 + timedelta(days=1)]):
        page = Page([make_post(1)])
        page.reject("line 2", f"bad {n}", {"text": "NUL \x00 and \ud800", "n": n})
        save_page(engine, "import:a.jsonl", page, now=now)
    [row] = iter_quarantine(engine)
    assert (row.reason, row.raw) == ("bad 1", {"text": "NUL \x00 and ?", "n": 1})
    assert (row.first_seen, row.last_seen) == (T0, T0 + timedelta(days=1))


PAGES = itertools.count()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])  # fmt: skip
@given(hostile=HOSTILE_POSTS)
def test_case_40_any_post_values_never_cost_the_good_post_on_postgresql(engine, hostile):
    n = next(PAGES)
    good = make_post(f"good-{n}")
    assume(hostile.id != good.id)
    saved = save_page(engine, "prop", Page([good, hostile], cursor={"n": n}))

    assert get_cursor(engine, "prop") == {"n": n}
    assert good.id in stored_ids(engine)
    reason = saved.refused[0].reason if saved.refused else None
    assert reason == why_unstorable(hostile, "postgresql")  # the guard knew; no fallback needed
