"""Writes and reads that the pipeline needs: bulk upserts, cursors, runs, assignments, quarantine.

A post is stored once, on (platform, post_id); each later copy of it (another page, instance or
import) may refresh it, by these rules:
- An edit wins over anything older. A copy whose `edited_at` is unset or earlier than the stored
  `edited_at` never replaces the content: text, html, author_name, lang, hashtags, mentions, links,
  media, edited_at and raw stay as the edit left them. A copy edited at the same time or later
  replaces them; when neither was edited, the copy seen last does. The same rule orders two copies
  of one post within a page.
- Engagement counts (likes, reposts, replies, quotes) are kept per sighting, as each place (source
  and via: an instance, a hashtag, a file) last reported them: a later copy from the same place
  replaces what it said (an unlike there counts), a copy without a count never erases one. The
  post's count is the highest of its sightings', so a place that knows less (a remote instance's
  stale copy) never lowers what another place saw.
- A post stored with no time (connectors.undated) takes the time of a later copy that has one; a
  known time never changes.
- A deletion is sticky: a later copy never brings a deleted post back.
- `source` and `collected_at` (who found it first, and when) never change.

A post the database cannot hold (storage/guard.py says which values and why) is set aside into
the `quarantine` table with its reason, in the same transaction as the rest of its page and the
source's cursor: one hostile post never costs the others. So is any post the database itself
refuses when its page is written (found by retrying that page one post at a time).
"""

from __future__ import annotations

import functools
import json
import operator
import sqlite3
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import ARRAY, Connection, Text, any_, bindparam, exists, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
    StatementError,
)
from sqlmodel.sql.sqltypes import UTCDateTime

from aggregator.clock import as_utc, utcnow  # re-exported: callers import them from here
from connectors.base import Page, Post, Quarantined
from connectors.undated import undated
from storage.db import StorageError, writer
from storage.guard import one_line, storable_json, why_unstorable
from storage.models import (
    POST_COLUMNS,
    POST_TABLE,
    Assignment,
    CollectionRun,
    QuarantineRow,
    Sighting,
    SourceCursor,
    SourceOutcome,
)

__all__ = [
    "BulkUpsert",
    "PostFilter",
    "SavedPage",
    "as_utc",
    "backup",
    "explain",
    "finish_run",
    "get_cursor",
    "iter_posts",
    "iter_quarantine",
    "opted_out_filter",
    "quarantine_count",
    "record_outcome",
    "resolve_replies",
    "save_assignments",
    "save_page",
    "start_run",
    "storage_errors",
    "stored_ids",
    "utcnow",
]

POSTS = POST_TABLE
SIGHTINGS = Sighting.__table__  # type: ignore[attr-defined]
CURSORS = SourceCursor.__table__  # type: ignore[attr-defined]
ASSIGNMENTS = Assignment.__table__  # type: ignore[attr-defined]
QUARANTINE = QuarantineRow.__table__  # type: ignore[attr-defined]
# What iter_posts carries of each post's assignment (reports and exports read these by name).
ASSIGNED = ("session_id", "reason", "score", "method", "excluded", "highlight")
# What a later copy of a post may refresh (the module docstring says when); provenance never changes.
CONTENT = (
    "text", "html", "author_name", "lang", "hashtags", "mentions", "links", "media", "edited_at",
    "raw",
)  # fmt: skip
COUNTS = ("likes", "reposts", "replies", "quotes")
MUTABLE = (*CONTENT, *COUNTS, "deleted_at", "created_at")
LOCATION_CAP, REASON_CAP = 300, 500  # characters kept of a quarantined record's place and reason

Key = tuple[str, str]  # (platform, post_id)
Place = tuple[str, str]  # a sighting of a post: (source, via)
Word = dict[str, Any]  # what one place said of a post in a page: its local_id and COUNTS


def explain(exc: OperationalError) -> str:
    """The database's reason, plus the fix for the failures people can act on."""
    reason = str(exc.orig)
    low = reason.lower()
    if "readonly" in low or "read-only" in low:
        return f"{reason} (the database is read-only: check the permissions of the file and its folder)"
    if "disk is full" in low or "no space" in low:
        return f"{reason} (free some disk space, then run again: nothing after the last saved page was kept)"
    return reason


@contextmanager
def storage_errors(action: str) -> Iterator[None]:
    """Turn a failed statement into a StorageError: one line saying what could not be done, and why."""
    try:
        yield
    except OperationalError as exc:
        raise StorageError(f"{action}: {explain(exc)}") from None


@dataclass(frozen=True)
class SavedPage:
    """What saving a page did: posts new and updated, records quarantined (the connector's and
    storage's own), and `refused`: the posts storage set aside, each with its reason."""

    new: int
    updated: int
    quarantined: int = 0
    refused: tuple[Quarantined, ...] = ()


def _insert(conn: Connection, table: Any) -> Any:
    return _dialect_insert(conn.dialect, table)


def _dialect_insert(dialect: Dialect, table: Any) -> Any:
    if dialect.name == "sqlite":
        return sqlite.insert(table)
    if dialect.name == "postgresql":
        return postgresql.insert(table)
    raise StorageError(f"database {dialect.name!r} is not supported: use SQLite or PostgreSQL")


@dataclass(frozen=True)
class BulkUpsert:
    """An INSERT … ON CONFLICT compiled once for a dialect and run through the driver's
    executemany. SQLAlchemy's handling of each row's parameters is most of a bulk write's time, so
    rows go to the driver as it takes them: each value through its column type's bind processor,
    as SQLAlchemy would pass it, and a value every row shares (the page's time) processed once."""

    sql: str
    names: tuple[str, ...]  # the statement's parameters, in its order
    processors: tuple[tuple[int, Callable[[Any], Any]], ...]  # (position, bind processor)
    positional: bool  # the driver takes each row as a tuple (SQLite), else as a dict (psycopg)

    @classmethod
    def compile(cls, stmt: Any, dialect: Dialect, keys: Sequence[str]) -> BulkUpsert:
        compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
        names = tuple(compiled.positiontup or compiled.binds)
        found = [
            compiled.binds[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names
        ]
        processors = tuple((i, p) for i, p in enumerate(found) if p is not None)
        return cls(compiled.string, names, processors, compiled.positional)

    def run(
        self, conn: Connection, rows: Sequence[Mapping[str, Any]], same: Mapping[str, Any]
    ) -> None:
        """Write `rows`, each holding every parameter; those in `same` every row shares, and
        take its value."""
        processor = dict(self.processors)
        fixed = [
            (i, processor[i](same[name]) if i in processor else same[name])
            for i, name in enumerate(self.names)
            if name in same
        ]
        each = [(i, process) for i, process in self.processors if self.names[i] not in same]
        take = operator.itemgetter(*self.names)
        params: list[Any] = []
        for row in rows:
            values = list(take(row))
            for i, process in each:
                values[i] = process(values[i])
            for i, value in fixed:
                values[i] = value
            params.append(
                tuple(values) if self.positional else dict(zip(self.names, values, strict=True))
            )
        conn.exec_driver_sql(self.sql, params)


@functools.cache
def _post_upsert(dialect: Dialect) -> BulkUpsert:
    """Posts in, each new one inserted and each stored one given its merged copy."""
    stmt = _dialect_insert(dialect, POSTS)
    update = {k: stmt.excluded[k] for k in (*MUTABLE, "updated_at")}
    stmt = stmt.on_conflict_do_update(index_elements=["platform", "post_id"], set_=update)
    return BulkUpsert.compile(stmt, dialect, ROW_KEYS)


@functools.cache
def _sighting_upsert(dialect: Dialect) -> BulkUpsert:
    """Sightings in, each found its post by (platform, post_id) in the statement itself; a place
    seen before keeps its first_seen and local id and takes the counts it reports now."""
    post = select(POSTS.c.id).where(
        POSTS.c.platform == bindparam("platform"), POSTS.c.post_id == bindparam("post_id")
    )
    stmt = _dialect_insert(dialect, SIGHTINGS).values(post_pk=post.scalar_subquery())
    recount = {k: stmt.excluded[k] for k in COUNTS}
    stmt = stmt.on_conflict_do_update(index_elements=["post_pk", "source", "via"], set_=recount)
    return BulkUpsert.compile(stmt, dialect, ("source", "via", "first_seen", "local_id", *COUNTS))


# A post's fields that are not its columns, those stored under another name (`id` is `post_id`),
# and its times, converted to aware UTC.
UNSTORED = tuple(f.name for f in fields(Post) if f.name not in POST_COLUMNS)
RENAMED = tuple((name, col.name) for name, col in POST_COLUMNS.items() if col.name != name)
TIMES = tuple(col.name for col in POST_COLUMNS.values() if isinstance(col.type, UTCDateTime))
ROW_KEYS = (*(c.name for c in POST_COLUMNS.values()), "deleted_at", "source", "collected_at",
            "updated_at")  # fmt: skip


def _post_values(post: Post, source: str, now: datetime) -> dict[str, Any]:
    """The row of `post` (its stored fields, times as aware UTC) first stored by `source` at `now`."""
    row = dict(vars(post))
    for name in UNSTORED:
        del row[name]
    for name, column in RENAMED:
        row[column] = row.pop(name)
    for name in TIMES:
        if isinstance(when := row[name], datetime):
            row[name] = as_utc(when)
    row["deleted_at"] = now if post.deleted else None
    row["source"], row["collected_at"], row["updated_at"] = source, now, now
    return row


def _existing(conn: Connection, keys: Sequence[Key]) -> dict[Key, Any]:
    """The stored posts among `keys`, with what the rules merge, found through the (platform,
    post_id) index, one statement a platform; on PostgreSQL locked until the transaction ends,
    so the rules hold between reading them and writing the merged copies."""
    ids: dict[str, list[str]] = {}
    for platform, post_id in keys:
        ids.setdefault(platform, []).append(post_id)
    stmt, arrays = _lookup(conn.dialect), conn.dialect.name == "postgresql"
    found: dict[Key, Any] = {}
    for platform, some in ids.items():
        given = {"platform": platform, "ids": some if arrays else json.dumps(some)}
        for row in conn.execute(stmt, given):
            found[(row.platform, row.post_id)] = row
    return found


@functools.cache
def _lookup(dialect: Dialect) -> Any:
    """The posts of one platform (`:platform`) among some ids (`:ids`), locked: the ids bound as
    one parameter however many they are (an array on PostgreSQL, a JSON array read by json_each
    on SQLite), so one statement does, whatever SQLite's limit on parameters."""
    if dialect.name == "postgresql":
        among = POSTS.c.post_id == any_(bindparam("ids", type_=ARRAY(Text)))
    else:
        each = func.json_each(bindparam("ids", type_=Text)).table_valued("value")
        among = POSTS.c.post_id.in_(select(each.c.value))
    wanted = (POSTS.c.platform, POSTS.c.post_id, POSTS.c.id, *(POSTS.c[k] for k in MUTABLE))
    return select(*wanted).where(POSTS.c.platform == bindparam("platform"), among).with_for_update()


def _older(incoming: datetime | None, stored: datetime | None) -> bool:
    """Whether a copy edited at `incoming` is older than one edited at `stored` (None: unedited)."""
    return stored is not None and (incoming is None or incoming < stored)


def _merge(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """`new`, a later copy of the post `old`, as the module's rules keep it: an older copy keeps
    the edited content, a deletion stays, and a known time stays. Counts are `_tally`'s."""
    merged = dict(new)
    if _older(new["edited_at"], old["edited_at"]):
        merged.update({k: old[k] for k in CONTENT})
    if old["deleted_at"] is not None:
        merged["deleted_at"] = old["deleted_at"]
    if not undated(old["created_at"]):
        merged["created_at"] = old["created_at"]
    return merged


def _places(conn: Connection, pks: Sequence[int]) -> dict[int, dict[Place, Word]]:
    """The counts each stored sighting of the posts `pks` last reported, by post and place."""
    found: dict[int, dict[Place, Word]] = {}
    for i in range(0, len(pks), 400):  # stay under SQLite's bound-parameter limit
        stmt = select(
            SIGHTINGS.c.post_pk,
            SIGHTINGS.c.source,
            SIGHTINGS.c.via,
            *(SIGHTINGS.c[k] for k in COUNTS),
        ).where(SIGHTINGS.c.post_pk.in_(pks[i : i + 400]))
        for row in conn.execute(stmt):
            found.setdefault(row.post_pk, {})[(row.source, row.via)] = {
                k: row._mapping[k] for k in COUNTS
            }
    return found


def _tally(stored: Mapping[Place, Word], source: str, said: Mapping[str, Word]) -> dict[str, Any]:
    """A post's counts from its places. Each place in this page (`said`, by via) keeps what it
    reported before for a count it does not give now (filled in place: these are the sightings
    written); then each count is the highest any place reports, None when none does."""
    if not stored and len(said) == 1:  # a new post seen in one place: that place's counts
        (word,) = said.values()
        return {k: word.get(k) for k in COUNTS}
    for via, word in said.items():
        before = stored.get((source, via), {})
        word.update({k: before.get(k) for k in COUNTS if word.get(k) is None})
    others = [w for (src, via), w in stored.items() if src != source or via not in said]
    places = [*others, *said.values()]
    return {k: max((w[k] for w in places if w.get(k) is not None), default=None) for k in COUNTS}


def _changed(old: Mapping[str, Any], merged: Mapping[str, Any]) -> bool:
    # raw is refreshed with any change but is no change itself: each instance's copy differs.
    return any(old[k] != merged[k] for k in MUTABLE if k != "raw")


def _refused(post: Post, reason: str) -> Quarantined:
    """A post storage sets aside: where (its platform and id, however odd), why, and every field."""
    platform, post_id = (
        repr(v) if isinstance(v, str) and not v.strip() else v for v in (post.platform, post.id)
    )
    where = f"{one_line(platform, 60)} post {one_line(post_id, LOCATION_CAP - 70)}"
    return Quarantined(where, reason, {f.name: getattr(post, f.name) for f in fields(Post)})


def _about_values(exc: Exception) -> bool:
    """Whether a failed write was about the values written (set that post aside) rather than the
    database (locked, full, gone: then the page fails and its cursor stays where it was)."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return False
        if isinstance(exc, (DataError, IntegrityError)):
            return True
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if sqlstate:  # PostgreSQL: bad data, a constraint, a size limit (an index row too big)
            return str(sqlstate)[:2] in ("22", "23", "54")
        return isinstance(exc, ProgrammingError)  # a value the driver cannot bind
    # raised while binding a value (OverflowError, UnicodeEncodeError, a JSON TypeError)
    return isinstance(exc, StatementError) or not isinstance(exc, SQLAlchemyError)


@contextmanager
def _attempt(conn: Connection) -> Iterator[None]:
    """A savepoint, undone when the database refused the values written (the page goes on). Any
    other error is left to the whole transaction: SQLite ends it itself on a full disk."""
    savepoint = conn.begin_nested()
    try:
        yield
    except Exception as exc:
        if _about_values(exc):
            savepoint.rollback()
        raise
    savepoint.commit()


def _write(
    conn: Connection, rows: Mapping[Key, dict[str, Any]], vias: Mapping[Key, dict[str, Word]],
    existing: Mapping[Key, Any], source: str, now: datetime,
) -> tuple[int, int]:  # fmt: skip
    """Upsert `rows` (merged copies) in one statement and their sightings (each place's local id
    and latest counts, `vias`) in another: (new, updated)."""
    fresh = [v for k, v in rows.items() if k not in existing]
    changed = [v for k, v in rows.items() if k in existing and _changed(existing[k]._mapping, v)]
    if fresh or changed:
        _post_upsert(conn.dialect).run(
            conn, fresh + changed, {"collected_at": now, "updated_at": now}
        )
    sightings = [
        {
            "platform": platform,
            "post_id": post_id,
            "source": source,
            "via": via,
            "first_seen": now,
            **word,
        }
        for (platform, post_id) in rows
        for via, word in vias[(platform, post_id)].items()
    ]
    _sighting_upsert(conn.dialect).run(conn, sightings, {"source": source, "first_seen": now})
    return len(fresh), len(changed)


def _write_each(
    conn: Connection, rows: Mapping[Key, dict[str, Any]], vias: Mapping[Key, dict[str, Word]],
    existing: Mapping[Key, Any], copies: Mapping[Key, Post], source: str, now: datetime,
) -> tuple[int, int, list[Quarantined]]:  # fmt: skip
    """`rows` one at a time, each in its own savepoint: those the database refuses are set aside."""
    new = updated = 0
    refused: list[Quarantined] = []
    for key, row in rows.items():
        try:
            with _attempt(conn):
                n, u = _write(conn, {key: row}, vias, existing, source, now)
        except Exception as exc:
            if not _about_values(exc):
                raise
            orig = getattr(exc, "orig", None) or exc
            reason = f"the database refused it: {type(orig).__name__}: {one_line(orig, 300)}"
            refused.append(_refused(copies[key], reason))
        else:
            new, updated = new + n, updated + u
    return new, updated, refused


def upsert_posts(conn: Connection, posts: Iterable[Post], source: str, now: datetime) -> SavedPage:
    """Insert new posts, refresh stored ones by the module's rules, record every sighting. Posts
    the database cannot hold are not written: they come back in `refused`, for the quarantine."""
    values: dict[Key, dict[str, Any]] = {}
    vias: dict[Key, dict[str, Word]] = {}  # via -> the post's local id there and its latest counts
    copies: dict[Key, Post] = {}
    refused: list[Quarantined] = []
    dialect = conn.dialect.name
    for post in posts:
        if problem := why_unstorable(post, dialect):
            refused.append(_refused(post, problem))
            continue
        key = (post.platform, post.id)
        copy = _post_values(post, source, now)
        values[key] = _merge(values[key], copy) if key in values else copy
        places = vias.setdefault(key, {})
        if (word := places.get(post.via or "")) is None:
            places[post.via or ""] = {"local_id": post.local_id, **{k: copy[k] for k in COUNTS}}
        else:
            word.update({k: copy[k] for k in COUNTS if copy[k] is not None})
        copies[key] = post
    if not values:
        return SavedPage(0, 0, refused=tuple(refused))
    existing = _existing(conn, list(values))
    stored = _places(conn, [row.id for row in existing.values()])
    rows = {k: _merge(existing[k]._mapping, v) if k in existing else v for k, v in values.items()}
    for k, row in rows.items():
        row.update(_tally(stored.get(existing[k].id, {}) if k in existing else {}, source, vias[k]))
    try:
        with _attempt(conn):
            new, updated = _write(conn, rows, vias, existing, source, now)
    except Exception as exc:
        if not _about_values(exc):
            raise
        new, updated, more = _write_each(conn, rows, vias, existing, copies, source, now)
        refused += more
    return SavedPage(new, updated, refused=tuple(refused))


def _save_quarantined(
    conn: Connection, source: str, items: Iterable[Quarantined], now: datetime
) -> int:
    """Keep records that could not become posts, one row per (source, location): a record seen
    again refreshes its reason, raw and last_seen, so a re-run adds nothing. Returns the rows."""
    rows: dict[str, dict[str, Any]] = {}
    for item in items:
        location = one_line(item.where, LOCATION_CAP)
        rows[location] = {
            "source": source, "location": location, "reason": one_line(item.reason, REASON_CAP),
            "raw": storable_json(item.raw), "first_seen": now, "last_seen": now,
        }  # fmt: skip
    if not rows:
        return 0
    stmt = _insert(conn, QUARANTINE)
    refresh = {k: stmt.excluded[k] for k in ("reason", "raw", "last_seen")}
    conn.execute(
        stmt.on_conflict_do_update(index_elements=["source", "location"], set_=refresh),
        list(rows.values()),
    )
    return len(rows)


def save_page(engine: Engine, source: str, page: Page, now: datetime | None = None) -> SavedPage:
    """Store a page's posts, its quarantined records and the source's cursor in ONE transaction:
    all or nothing. Posts the database cannot hold join the quarantine; the others are stored."""
    now = now or utcnow()
    try:
        with writer(engine).begin() as conn:
            saved = upsert_posts(conn, page.posts, source, now)
            quarantined = _save_quarantined(conn, source, [*page.quarantined, *saved.refused], now)
            if page.cursor is not None:
                set_cursor(conn, source, page.cursor, now)
            return replace(saved, quarantined=quarantined)
    except OperationalError as exc:
        raise StorageError(f"could not save posts from {source!r}: {explain(exc)}") from None


def set_cursor(conn: Connection, source: str, cursor: Mapping[str, Any], now: datetime) -> None:
    stmt = _insert(conn, CURSORS).values(source=source, cursor=dict(cursor), updated_at=now)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["source"], set_={"cursor": stmt.excluded.cursor, "updated_at": now}
        )
    )


def save_assignments(
    engine: Engine, values: Sequence[Mapping[str, Any]], batch: int = 2000
) -> None:
    """Upsert session assignments in one transaction, `batch` rows per statement."""
    if not values:
        return
    keys = (
        "session_id", "score", "reason", "method", "programme", "tagged_at", "excluded", "highlight",
    )  # fmt: skip
    with storage_errors("could not save session assignments"), writer(engine).begin() as conn:
        for i in range(0, len(values), batch):
            stmt = _insert(conn, ASSIGNMENTS)
            stmt = stmt.on_conflict_do_update(
                index_elements=["post_pk"], set_={k: stmt.excluded[k] for k in keys}
            )
            conn.execute(stmt, list(values[i : i + batch]))


def get_cursor(engine: Engine, source: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(CURSORS.c.cursor).where(CURSORS.c.source == source)).first()
    return dict(row.cursor) if row else None


def start_run(
    engine: Engine,
    command: str,
    pid: int | None = None,
    status: str = "running",
    started_at: datetime | None = None,
) -> int:
    """A new row in the run log; `status`/`started_at` let the scheduler log a missed run."""
    with storage_errors("could not record the run"), writer(engine).begin() as conn:
        result = conn.execute(
            CollectionRun.__table__.insert().values(  # type: ignore[attr-defined]
                command=command, started_at=started_at or utcnow(), status=status, pid=pid
            )
        )
        key = result.inserted_primary_key
        if key is None or key[0] is None:  # a driver that cannot say which row it added
            raise StorageError(
                f"could not record the run: the {conn.dialect.name} driver gave no id for it"
            )
        return int(key[0])


def finish_run(engine: Engine, run_id: int, status: str, message: str | None = None) -> None:
    table = CollectionRun.__table__  # type: ignore[attr-defined]
    with storage_errors("could not record the end of the run"), writer(engine).begin() as conn:
        conn.execute(
            table.update()
            .where(table.c.id == run_id)
            .values(status=status, finished_at=utcnow(), message=message)
        )


def record_outcome(engine: Engine, run_id: int, outcome: Mapping[str, Any]) -> None:
    """Store what one source did in one run (new posts, pages, waits, error, cursor)."""
    table = SourceOutcome.__table__  # type: ignore[attr-defined]
    with storage_errors("could not record the source's outcome"), writer(engine).begin() as conn:
        conn.execute(table.insert().values(run_id=run_id, **outcome))


def recent_runs(engine: Engine, limit: int = 10) -> list[tuple[CollectionRun, list[SourceOutcome]]]:
    """The latest runs, newest first, each with its per-source outcomes."""
    from sqlmodel import Session, col

    with Session(engine) as session:
        runs = (
            session.execute(
                select(CollectionRun).order_by(col(CollectionRun.id).desc()).limit(limit)
            )
            .scalars()
            .all()
        )
        out = []
        for run in runs:
            outcomes = (
                session.execute(
                    select(SourceOutcome)
                    .where(col(SourceOutcome.run_id) == run.id)
                    .order_by(col(SourceOutcome.id))
                )
                .scalars()
                .all()
            )
            out.append((run, list(outcomes)))
        return out


def post_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(POSTS)).scalar_one())


def quarantine_count(engine: Engine) -> int:
    """How many records are in quarantine (each source and place once)."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(QUARANTINE)).scalar_one())


def iter_quarantine(engine: Engine, source: str | None = None) -> Iterator[Any]:
    """The quarantined records (of `source`, or all), last seen first: rows of source, location,
    reason, raw, first_seen, last_seen. Streamed over one connection: read to the end or close it."""
    stmt = select(QUARANTINE).order_by(QUARANTINE.c.last_seen.desc(), QUARANTINE.c.id.desc())
    if source is not None:
        stmt = stmt.where(QUARANTINE.c.source == source)
    with engine.connect() as conn:
        yield from conn.execute(stmt.execution_options(yield_per=500))


@dataclass(frozen=True)
class PostFilter:
    """Which live posts to read; an empty field means no limit. Applied in SQL."""

    sessions: tuple[str | None, ...] = ()  # None: general (no session)
    platforms: tuple[str, ...] = ()
    since: datetime | None = None  # inclusive, aware
    until: datetime | None = None  # exclusive, aware
    hashtags: tuple[str, ...] = ()  # any of these, lower case, without '#'
    exclude_authors: tuple[str, ...] = ()  # lower case, without '@'


def opted_out_filter(accounts: Iterable[str]) -> PostFilter:
    """Leave out posts by these accounts (as in `author`; case and a leading @ ignored)."""
    keys = {a.strip().lstrip("@＠").lower() for a in accounts}
    return PostFilter(exclude_authors=tuple(sorted(k for k in keys if k)))


def _has_hashtag(dialect: str, tags: Sequence[str]) -> Any:
    each = func.json_array_elements_text if dialect == "postgresql" else func.json_each
    tag = each(POSTS.c.hashtags).table_valued("value").alias("tag")
    return exists(select(1).select_from(tag).where(func.lower(tag.c.value).in_(tags)))


def _conditions(dialect: str, f: PostFilter) -> list[Any]:
    # never a deleted post, nor one an organiser or moderator excluded (curation, the wall)
    where: list[Any] = [POSTS.c.deleted_at.is_(None), ASSIGNMENTS.c.excluded.is_not(True)]
    if f.sessions:
        named = ASSIGNMENTS.c.session_id.in_([s for s in f.sessions if s is not None])
        general = ASSIGNMENTS.c.session_id.is_(None)
        where.append(or_(named, general) if None in f.sessions else named)
    if f.platforms:
        where.append(POSTS.c.platform.in_(f.platforms))
    if f.since:
        where.append(POSTS.c.created_at >= f.since)
    if f.until:
        where.append(POSTS.c.created_at < f.until)
    if f.hashtags:
        where.append(_has_hashtag(dialect, f.hashtags))
    if f.exclude_authors:
        where.append(func.lower(func.ltrim(POSTS.c.author, "@")).not_in(f.exclude_authors))
    return where


def iter_posts(
    conn: Connection, batch: int = 1000, filters: PostFilter | None = None
) -> Iterator[Any]:
    """Every live post (matching `filters`) with its assignment, oldest first, streamed in batches."""
    stmt = (
        select(POSTS, *(ASSIGNMENTS.c[k] for k in ASSIGNED))
        .outerjoin(ASSIGNMENTS, ASSIGNMENTS.c.post_pk == POSTS.c.id)
        .where(*_conditions(conn.dialect.name, filters or PostFilter()))
        .order_by(POSTS.c.created_at, POSTS.c.id)
        .execution_options(yield_per=batch)
    )
    yield from conn.execute(stmt)


def resolve_replies(conn: Connection, rows: Sequence[Any]) -> list[Any]:
    """`rows` (posts with `id`, `reply_to`) where a local `reply_to` (a Mastodon status id, with
    the post's `reply_to_via` naming its instance) becomes the parent's `post_id`, found through
    the sighting that saw the parent there. Rows whose parent is not stored are returned as they are."""
    parent = POSTS.alias("parent")
    child = POSTS.alias("child")
    seen_on = func.substr(SIGHTINGS.c.via, 1, func.length(child.c.reply_to_via) + 1)
    stmt = (
        select(child.c.id, parent.c.post_id)
        .select_from(child)
        .join(SIGHTINGS, (SIGHTINGS.c.local_id == child.c.reply_to)
              & (seen_on == child.c.reply_to_via + " "))  # via is "<instance> #<tag>"
        .join(parent, (parent.c.id == SIGHTINGS.c.post_pk) & (parent.c.platform == child.c.platform))
        .where(child.c.reply_to_via.is_not(None))
        .order_by(parent.c.id)
    )  # fmt: skip
    pks = [r.id for r in rows if r.reply_to]
    found: dict[int, str] = {}
    for i in range(0, len(pks), 400):  # stay under SQLite's bound-parameter limit
        for pk, post_id in conn.execute(stmt.where(child.c.id.in_(pks[i : i + 400]))):
            found.setdefault(pk, post_id)
    return [
        SimpleNamespace(**{**r._mapping, "reply_to": found[r.id]}) if r.id in found else r
        for r in rows
    ]


def local_replies(conn: Connection, parent_pks: Sequence[int], columns: Sequence[str]) -> list[Any]:
    """Stored posts replying by an instance-local id (Mastodon) to any of `parent_pks`: each
    sighting of a parent gives its local id on one instance; a reply names both."""
    pairs: set[tuple[str, str]] = set()
    for i in range(0, len(parent_pks), 400):  # stay under SQLite's bound-parameter limit
        stmt = select(SIGHTINGS.c.local_id, SIGHTINGS.c.via).where(
            SIGHTINGS.c.post_pk.in_(parent_pks[i : i + 400]), SIGHTINGS.c.local_id.is_not(None)
        )
        pairs |= {(local, via.split(" ", 1)[0]) for local, via in conn.execute(stmt)}
    found: list[Any] = []
    local_ids = sorted({local for local, _ in pairs})
    for i in range(0, len(local_ids), 400):
        stmt = select(*(POSTS.c[k] for k in columns), POSTS.c.reply_to_via).where(
            POSTS.c.reply_to.in_(local_ids[i : i + 400]), POSTS.c.reply_to_via.is_not(None)
        )
        found += [r for r in conn.execute(stmt) if (r.reply_to, r.reply_to_via) in pairs]
    return found


def backup(engine: Engine, path: Path) -> None:
    """A consistent copy of a SQLite database through VACUUM INTO, safe while a collection writes."""
    if engine.dialect.name != "sqlite":
        raise StorageError(
            f"backup works on SQLite only: for {engine.dialect.name} use its own tools (pg_dump)"
        )
    if path.exists():
        raise StorageError(f"{path} already exists: choose a new file name for the backup")
    raw = engine.raw_connection()  # VACUUM cannot run inside the transaction a Connection begins
    try:
        raw.cursor().execute("VACUUM INTO ?", (str(path),))
    except sqlite3.OperationalError as exc:
        raise StorageError(f"could not back up to {path}: {exc}") from None
    finally:
        raw.close()


def stored_ids(engine: Engine) -> Callable[[str, Collection[str]], set[str]]:
    """Which of some post ids of a platform are stored: lent to a stream (Jetstream) whose
    deletions and edits name a post by its id alone."""

    def stored(platform: str, ids: Collection[str]) -> set[str]:
        found: set[str] = set()
        wanted = sorted(ids)
        with engine.connect() as conn:
            for i in range(0, len(wanted), 400):  # under SQLite's bound-parameter limit
                query = select(POSTS.c.post_id).where(
                    POSTS.c.platform == platform, POSTS.c.post_id.in_(wanted[i : i + 400])
                )
                found.update(conn.scalars(query))
        return found

    return stored
