"""Writes and reads that the pipeline needs: bulk upserts, cursors, runs, assignments."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, bindparam, exists, func, or_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from connectors.base import Page, Post
from storage.db import StorageError, writer
from storage.models import (
    Assignment,
    CollectionRun,
    PostAnalysis,
    PostRow,
    Sighting,
    SourceCursor,
    SourceOutcome,
)

__all__ = [
    "PostFilter",
    "SavedPage",
    "as_utc",
    "backup",
    "explain",
    "finish_run",
    "get_cursor",
    "iter_posts",
    "opted_out_filter",
    "record_outcome",
    "resolve_replies",
    "save_analysis",
    "save_assignments",
    "save_page",
    "start_run",
    "storage_errors",
    "utcnow",
]

POSTS = PostRow.__table__  # type: ignore[attr-defined]
SIGHTINGS = Sighting.__table__  # type: ignore[attr-defined]
CURSORS = SourceCursor.__table__  # type: ignore[attr-defined]
ASSIGNMENTS = Assignment.__table__  # type: ignore[attr-defined]
# What iter_posts carries of each post's assignment (reports and exports read these by name).
ASSIGNED = ("session_id", "reason", "score", "method", "excluded", "highlight")
# Fields a later sighting may refresh (edits, counts); first-seen provenance never changes.
MUTABLE = (
    "text", "html", "author_name", "likes", "reposts", "replies", "quotes", "lang", "hashtags",
    "mentions", "links", "media", "edited_at", "deleted_at", "raw",
)  # fmt: skip


def utcnow() -> datetime:
    return datetime.now(UTC)


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


def as_utc(value: datetime | None) -> datetime | None:
    """Aware UTC, the form every stored time takes; naive values are taken to be UTC already."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class SavedPage:
    new: int
    updated: int


def _insert(conn: Connection, table: Any) -> Any:
    dialect = conn.dialect.name
    if dialect == "sqlite":
        return sqlite.insert(table)
    if dialect == "postgresql":
        return postgresql.insert(table)
    raise StorageError(f"database {dialect!r} is not supported: use SQLite or PostgreSQL")


def _post_values(post: Post, source: str, now: datetime) -> dict[str, Any]:
    return {
        "platform": post.platform,
        "post_id": post.id,
        "created_at": as_utc(post.created_at),
        "author": post.author,
        "author_name": post.author_name,
        "text": post.text,
        "html": post.html,
        "url": post.url,
        "reply_to": post.reply_to,
        "reply_to_via": post.reply_to_via,
        "repost_of": post.repost_of,
        "quote_of": post.quote_of,
        "likes": post.likes,
        "reposts": post.reposts,
        "replies": post.replies,
        "quotes": post.quotes,
        "lang": post.lang,
        "hashtags": post.hashtags,
        "mentions": post.mentions,
        "links": post.links,
        "media": post.media,
        "edited_at": as_utc(post.edited_at),
        "deleted_at": now if post.deleted else None,
        "source": source,
        "collected_at": now,
        "updated_at": now,
        "raw": post.raw,
    }


def _existing(conn: Connection, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    found: dict[tuple[str, str], Any] = {}
    for i in range(0, len(keys), 400):  # stay under SQLite's bound-parameter limit
        chunk = keys[i : i + 400]
        rows = conn.execute(
            select(
                POSTS.c.platform, POSTS.c.post_id, POSTS.c.id, *[POSTS.c[k] for k in MUTABLE]
            ).where(tuple_(POSTS.c.platform, POSTS.c.post_id).in_(chunk))
        )
        for row in rows:
            found[(row.platform, row.post_id)] = row
    return found


def _changed(old: Any, values: Mapping[str, Any]) -> bool:
    """Whether a new sighting changes the stored post. A deletion is sticky: a later copy
    (an older archive, a cached page) never brings a deleted post back."""
    if old.deleted_at is not None:
        values["deleted_at"] = old.deleted_at
    # raw is refreshed with any change but is no change itself: each instance's copy differs.
    return any(getattr(old, k) != values[k] for k in MUTABLE if k != "raw")


def upsert_posts(conn: Connection, posts: Iterable[Post], source: str, now: datetime) -> SavedPage:
    """Insert new posts, refresh changed ones, record every sighting. One statement per batch."""
    values: dict[tuple[str, str], dict[str, Any]] = {}
    vias: dict[tuple[str, str], dict[str, str | None]] = {}  # via -> the post's local id there
    for post in posts:
        key = (post.platform, post.id)
        values[key] = _post_values(post, source, now)  # a later copy in the same page wins
        vias.setdefault(key, {}).setdefault(post.via or "", post.local_id)
    if not values:
        return SavedPage(0, 0)
    existing = _existing(conn, list(values))
    fresh = [v for k, v in values.items() if k not in existing]
    changed = [v for k, v in values.items() if k in existing and _changed(existing[k], v)]
    if fresh or changed:
        stmt = _insert(conn, POSTS)
        update = {k: stmt.excluded[k] for k in (*MUTABLE, "updated_at")}
        conn.execute(
            stmt.on_conflict_do_update(index_elements=["platform", "post_id"], set_=update),
            fresh + changed,
        )
    ids = _existing(conn, list(values)) if fresh else existing
    sightings = [
        {"post_pk": ids[k].id, "source": source, "via": via, "first_seen": now, "local_id": local}
        for k, vs in vias.items()
        for via, local in vs.items()
    ]
    conn.execute(_insert(conn, SIGHTINGS).on_conflict_do_nothing(), sightings)
    return SavedPage(new=len(fresh), updated=len(changed))


def save_page(engine: Engine, source: str, page: Page, now: datetime | None = None) -> SavedPage:
    """Store a page's posts and the source's cursor in ONE transaction: both or neither."""
    now = now or utcnow()
    try:
        with writer(engine).begin() as conn:
            saved = upsert_posts(conn, page.posts, source, now)
            if page.cursor is not None:
                set_cursor(conn, source, page.cursor, now)
            return saved
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


def save_analysis(engine: Engine, values: Sequence[Mapping[str, Any]]) -> None:
    """Store posts' text features and sentiment in one transaction. Each value: post_pk, terms,
    question, action, analyser, analysed_at, polarity, subjectivity. `updated_at` is left alone."""
    if not values:
        return
    table = PostAnalysis.__table__  # type: ignore[attr-defined]
    keys = ("terms", "question", "action", "analyser", "analysed_at")
    rows = [{"post_pk": v["post_pk"], **{k: v[k] for k in keys}} for v in values]
    scores = [{"pk": v["post_pk"], "pol": v["polarity"], "subj": v["subjectivity"]} for v in values]
    with storage_errors("could not save the text analysis"), writer(engine).begin() as conn:
        stmt = _insert(conn, table)
        update = {k: stmt.excluded[k] for k in keys}
        conn.execute(stmt.on_conflict_do_update(index_elements=["post_pk"], set_=update), rows)
        conn.execute(
            POSTS.update().where(POSTS.c.id == bindparam("pk"))
            .values(sentiment_polarity=bindparam("pol"), sentiment_subjectivity=bindparam("subj")),
            scores,
        )  # fmt: skip


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
        return int(result.inserted_primary_key[0])


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
    from sqlmodel import Session

    with Session(engine) as session:
        runs = (
            session.execute(
                select(CollectionRun).order_by(CollectionRun.id.desc()).limit(limit)  # type: ignore[union-attr]
            )
            .scalars()
            .all()
        )
        out = []
        for run in runs:
            outcomes = (
                session.execute(
                    select(SourceOutcome)
                    .where(SourceOutcome.run_id == run.id)
                    .order_by(SourceOutcome.id)
                )
                .scalars()
                .all()
            )
            out.append((run, list(outcomes)))
        return out


def post_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(POSTS)).scalar_one())


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
    where = [POSTS.c.deleted_at.is_(None)]
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
