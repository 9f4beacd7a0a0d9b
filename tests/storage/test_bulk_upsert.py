"""Bulk upserts (issue 15): the fast path keeps every rule of the path it replaced, page for page.

The oracle is `old_upsert`, the upsert as it was before issue 15 (commit 051cf52), kept here
verbatim but for names: every stored copy read whole and merged in Python, written in one
statement a page. Random sequences of pages (edits, deletions, counts from several places, copies
of one post within a page, posts with no time, a post the guard refuses) go through both, each
into its own database; what each page says it did and the posts and sightings left must be the
same. Then the same pages again must add nothing and change no post (idempotent re-runs). On
SQLite, and on PostgreSQL when AGGREGATOR_TEST_POSTGRES_URL is set.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, select, tuple_
from sqlalchemy.engine import Engine

from connectors.base import Page, Post
from connectors.undated import UNDATED, undated
from storage.db import open_database, writer
from storage.guard import why_unstorable
from storage.models import POST_COLUMNS, POST_TABLE, Sighting
from storage.queries import _insert, as_utc, save_page
from tests.helpers import postgres_database

POSTS = POST_TABLE
SIGHTINGS = Sighting.__table__  # type: ignore[attr-defined]
PG_URL = os.environ.get("AGGREGATOR_TEST_POSTGRES_URL", "")
T0 = datetime(2016, 11, 28, 13, 5, tzinfo=UTC)
NOW = datetime(2016, 12, 1, 9, 0, tzinfo=UTC)

# -- the oracle: storage.queries.upsert_posts as it was before issue 15 --------------------------

CONTENT = (
    "text", "html", "author_name", "lang", "hashtags", "mentions", "links", "media", "edited_at",
    "raw",
)  # fmt: skip
COUNTS = ("likes", "reposts", "replies", "quotes")
MUTABLE = (*CONTENT, *COUNTS, "deleted_at", "created_at")
Key = tuple[str, str]
Place = tuple[str, str]
Word = dict[str, Any]


def _post_values(post: Post, source: str, now: datetime) -> dict[str, Any]:
    stored = {column.name: getattr(post, name) for name, column in POST_COLUMNS.items()}
    times = {k: as_utc(v) for k, v in stored.items() if isinstance(v, datetime)}
    return {
        **stored,
        **times,
        "deleted_at": now if post.deleted else None,
        "source": source,
        "collected_at": now,
        "updated_at": now,
    }


def _existing(conn: Connection, keys: Sequence[Key]) -> dict[Key, Any]:
    found: dict[Key, Any] = {}
    for i in range(0, len(keys), 400):
        chunk = keys[i : i + 400]
        rows = conn.execute(
            select(POSTS.c.platform, POSTS.c.post_id, POSTS.c.id, *[POSTS.c[k] for k in MUTABLE])
            .where(tuple_(POSTS.c.platform, POSTS.c.post_id).in_(chunk))
            .with_for_update()
        )
        for row in rows:
            found[(row.platform, row.post_id)] = row
    return found


def _older(incoming: datetime | None, stored: datetime | None) -> bool:
    return stored is not None and (incoming is None or incoming < stored)


def _merge(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(new)
    if _older(new["edited_at"], old["edited_at"]):
        merged.update({k: old[k] for k in CONTENT})
    if old["deleted_at"] is not None:
        merged["deleted_at"] = old["deleted_at"]
    if not undated(old["created_at"]):
        merged["created_at"] = old["created_at"]
    return merged


def _places(conn: Connection, pks: Sequence[int]) -> dict[int, dict[Place, Word]]:
    found: dict[int, dict[Place, Word]] = {}
    for i in range(0, len(pks), 400):
        stmt = select(
            SIGHTINGS.c.post_pk, SIGHTINGS.c.source, SIGHTINGS.c.via,
            *(SIGHTINGS.c[k] for k in COUNTS),
        ).where(SIGHTINGS.c.post_pk.in_(pks[i : i + 400]))  # fmt: skip
        for row in conn.execute(stmt):
            found.setdefault(row.post_pk, {})[(row.source, row.via)] = {
                k: row._mapping[k] for k in COUNTS
            }
    return found


def _tally(stored: Mapping[Place, Word], source: str, said: Mapping[str, Word]) -> dict[str, Any]:
    for via, word in said.items():
        before = stored.get((source, via), {})
        word.update({k: before.get(k) for k in COUNTS if word.get(k) is None})
    others = [w for (src, via), w in stored.items() if src != source or via not in said]
    places = [*others, *said.values()]
    return {k: max((w[k] for w in places if w.get(k) is not None), default=None) for k in COUNTS}


def _changed(old: Mapping[str, Any], merged: Mapping[str, Any]) -> bool:
    return any(old[k] != merged[k] for k in MUTABLE if k != "raw")


def _write(
    conn: Connection, rows: Mapping[Key, dict[str, Any]], vias: Mapping[Key, dict[str, Word]],
    existing: Mapping[Key, Any], source: str, now: datetime,
) -> tuple[int, int]:  # fmt: skip
    fresh = [v for k, v in rows.items() if k not in existing]
    changed = [v for k, v in rows.items() if k in existing and _changed(existing[k]._mapping, v)]
    if fresh or changed:
        stmt = _insert(conn, POSTS)
        update = {k: stmt.excluded[k] for k in (*MUTABLE, "updated_at")}
        conn.execute(
            stmt.on_conflict_do_update(index_elements=["platform", "post_id"], set_=update),
            fresh + changed,
        )
    ids = _existing(conn, list(rows)) if fresh else existing
    sightings = [
        {"post_pk": ids[k].id, "source": source, "via": via, "first_seen": now, **word}
        for k in rows
        for via, word in vias[k].items()
    ]
    stmt = _insert(conn, SIGHTINGS)
    recount = {k: stmt.excluded[k] for k in COUNTS}
    conn.execute(
        stmt.on_conflict_do_update(index_elements=["post_pk", "source", "via"], set_=recount),
        sightings,
    )
    return len(fresh), len(changed)


def old_upsert(
    conn: Connection, posts: Iterable[Post], source: str, now: datetime
) -> tuple[int, int, list[str]]:
    """(new, updated, the guard's reasons for the posts refused)."""
    values: dict[Key, dict[str, Any]] = {}
    vias: dict[Key, dict[str, Word]] = {}
    refused: list[str] = []
    for post in posts:
        if problem := why_unstorable(post, conn.dialect.name):
            refused.append(problem)
            continue
        key = (post.platform, post.id)
        copy = _post_values(post, source, now)
        values[key] = _merge(values[key], copy) if key in values else copy
        word = vias.setdefault(key, {}).setdefault(post.via or "", {"local_id": post.local_id})
        word.update({k: copy[k] for k in COUNTS if copy[k] is not None or k not in word})
    if not values:
        return 0, 0, refused
    existing = _existing(conn, list(values))
    stored = _places(conn, [row.id for row in existing.values()])
    rows = {k: _merge(existing[k]._mapping, v) if k in existing else v for k, v in values.items()}
    for k, row in rows.items():
        row.update(_tally(stored.get(existing[k].id, {}) if k in existing else {}, source, vias[k]))
    new, updated = _write(conn, rows, vias, existing, source, now)
    return new, updated, refused


# -- random pages ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Copy:
    """One copy of a post as a page brings it; `post()` makes a new Post of it for each side."""

    key: Key
    text: str
    created_at: datetime
    edited_at: datetime | None
    deleted: bool
    counts: tuple[int | None, ...]
    via: str | None
    local_id: str | None
    hashtags: tuple[str, ...]
    author: str = "someone@example.org"

    def post(self) -> Post:
        platform, post_id = self.key
        return Post(
            platform, post_id, self.created_at, self.author, self.text,
            **dict(zip(COUNTS, self.counts, strict=True)), hashtags=list(self.hashtags),
            html=f"<p>{self.text}</p>", edited_at=self.edited_at, deleted=self.deleted,
            via=self.via, local_id=self.local_id, raw={"text": self.text, "via": self.via},
        )  # fmt: skip


KEYS = [("mastodon", "1"), ("mastodon", "2"), ("bluesky", "1"), ("bluesky", "at://3")]
COPIES = st.builds(
    Copy,
    key=st.sampled_from(KEYS),
    text=st.sampled_from(["first", "second", "third"]),
    created_at=st.sampled_from([UNDATED, T0, T0 + timedelta(minutes=5)]),
    edited_at=st.sampled_from([None, T0 + timedelta(hours=1), T0 + timedelta(hours=2)]),
    deleted=st.sampled_from([False, False, False, True]),
    counts=st.tuples(*[st.none() | st.integers(0, 9)] * len(COUNTS)),
    via=st.sampled_from([None, "a.example #CoPro16", "b.example #CoPro16"]),
    local_id=st.sampled_from([None, "101", "102"]),
    hashtags=st.lists(st.sampled_from(["CoPro16", "copro16", "Other"]), max_size=2).map(tuple),
    author=st.sampled_from(
        ["someone@example.org"] * 9 + ["  "]
    ),  # now and then one the guard refuses
)
PAGES = st.lists(
    st.tuples(st.sampled_from(["s1", "s2"]), st.lists(COPIES, min_size=1, max_size=7)),
    min_size=1,
    max_size=6,
)

# -- the databases -------------------------------------------------------------------------------

STATE_POSTS = [c for c in POSTS.columns if c.name != "id"]
STATE_SIGHTINGS = ("source", "via", "first_seen", "local_id", *COUNTS)


def state(engine: Engine, but: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every post by its key and every sighting by its post's key and place, ids left out (each
    database numbers rows itself), nor the columns in `but`."""
    with engine.connect() as conn:
        posts = {
            (r.platform, r.post_id): {c.name: r._mapping[c.name] for c in STATE_POSTS
                                      if c.name not in but}
            for r in conn.execute(select(POSTS))
        }  # fmt: skip
        seen = select(POSTS.c.platform, POSTS.c.post_id, *(SIGHTINGS.c[k] for k in STATE_SIGHTINGS))
        sightings = {
            (r.platform, r.post_id, r.source, r.via): tuple(r._mapping[k] for k in STATE_SIGHTINGS)
            for r in conn.execute(seen.join(SIGHTINGS, SIGHTINGS.c.post_pk == POSTS.c.id))
        }
    return {"posts": posts, "sightings": sightings}


def emptied(engine: Engine) -> Engine:
    with writer(engine).begin() as conn:
        for table in ("sighting", "quarantine", "sourcecursor", "post"):
            conn.exec_driver_sql(f"DELETE FROM {table}")
    return engine


@pytest.fixture(params=["sqlite", "postgresql"])
def databases(request, tmp_path) -> Iterator[tuple[Engine, Engine]]:
    """Two empty databases of one kind: the oracle's and the fast path's."""
    if request.param == "postgresql" and not PG_URL:
        pytest.skip("PostgreSQL: set AGGREGATOR_TEST_POSTGRES_URL to run it here too")
    with ExitStack() as stack:
        if request.param == "sqlite":
            urls = [f"sqlite:///{tmp_path / name}.db" for name in ("old", "new")]
        else:
            urls = [stack.enter_context(postgres_database(PG_URL)) for _ in range(2)]
        engines = [open_database(url) for url in urls]
        for engine in engines:
            stack.callback(engine.dispose)
        yield engines[0], engines[1]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])  # fmt: skip
@given(pages=PAGES)
def test_the_bulk_path_does_page_for_page_what_the_old_one_did(databases, pages):
    old, new = (emptied(engine) for engine in databases)
    for n, (source, copies) in enumerate(pages):
        now = NOW + timedelta(minutes=n)
        with writer(old).begin() as conn:
            expected = old_upsert(conn, [c.post() for c in copies], source, now)
        saved = save_page(new, source, Page([c.post() for c in copies]), now=now)
        assert (saved.new, saved.updated, [q.reason for q in saved.refused]) == expected
    assert state(new) == state(old)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])  # fmt: skip
@given(pages=PAGES)
def test_the_same_pages_again_add_nothing_and_leave_every_post_as_it_was(databases, pages):
    # raw is refreshed with a change but is none itself: it is the last copy's that changed
    # something, which a re-run may find in another copy of the same edit.
    but = ("updated_at", "raw")
    _, new = databases
    emptied(new)
    for rerun in (False, True):
        for source, copies in pages:
            saved = save_page(new, source, Page([c.post() for c in copies]), now=NOW)
            if rerun:
                assert saved.new == 0
        if not rerun:
            first = state(new, but=but)
    assert state(new, but=but) == first


def test_a_page_of_more_posts_than_sqlite_binds_at_once_finds_every_stored_one(databases):
    # a page's stored posts are found with their ids as one parameter: never SQLite's limit
    _, new = databases
    emptied(new)
    posts = [Copy(("mastodon", f"n{n}"), "first", T0, None, False, (1, None, None, None), None,
                  None, ()) for n in range(1200)]  # fmt: skip
    assert save_page(new, "s1", Page([c.post() for c in posts]), now=NOW).new == 1200
    again = save_page(new, "s1", Page([replace(c, counts=(2, 1, 0, 0)).post() for c in posts]))

    assert (again.new, again.updated) == (0, 1200)
    counts = {(c["likes"], c["reposts"]) for c in state(new)["posts"].values()}
    assert counts == {(2, 1)}
