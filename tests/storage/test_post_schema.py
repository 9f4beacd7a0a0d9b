"""The `post` table, built from connectors.base.Post (storage/models.py), is the table the
hand-written model it replaced declared: held to that model's schema as frozen from commit a0527f2 in
tests/fixtures/post_schema/ (a SQLite database's schema as created, the PostgreSQL DDL as compiled,
each column's SQLAlchemy type). A new database lists the columns in the Post's order, so column
order is not compared (every read names its columns); everything else is, exactly."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable

from connectors.base import Page, Post
from storage.db import open_database
from storage.models import POST_TABLE, Sighting, _post_column
from storage.queries import save_page

FROZEN = Path(__file__).resolve().parents[1] / "fixtures" / "post_schema"
T0 = datetime(2016, 11, 28, 13, tzinfo=UTC)
TABLE_CONSTRAINTS = ("PRIMARY KEY", "CONSTRAINT", "UNIQUE", "FOREIGN KEY", "CHECK")


def statements(sql: str) -> list[str]:
    """The statements of SQL text, without comment lines or the ';' ending each."""
    lines = [line for line in sql.splitlines() if not line.startswith("--")]
    return [s.strip() for s in "\n".join([*lines, ""]).split(";\n") if s.strip()]


def of_post(found: list[str]) -> tuple[str, list[str]]:
    """The CREATE TABLE of `post` among `found`, and its CREATE INDEX statements, sorted."""
    (table,) = [s for s in found if s.startswith("CREATE TABLE post (")]
    return table, sorted(s for s in found if s.startswith("CREATE INDEX") and " ON post (" in s)


def shape(create_table: str) -> tuple[str, list[str], list[str]]:
    """A CREATE TABLE as its frame, its column definitions (sorted) and its table constraints."""
    first, *body, last = create_table.splitlines()
    items = [line.strip().removesuffix(",") for line in body]
    constraints = [item for item in items if item.startswith(TABLE_CONSTRAINTS)]
    return first + last, sorted(set(items) - set(constraints)), constraints


def frozen(name: str) -> tuple[str, list[str]]:
    return of_post(statements((FROZEN / name).read_text(encoding="utf-8")))


def sqlite_schema(db: Path) -> list[str]:
    with closing(sqlite3.connect(db)) as conn:
        return [sql for (sql,) in conn.execute("SELECT sql FROM sqlite_master WHERE sql NOT NULL")]


def make_post(n: int, **changes) -> Post:
    post = Post("mastodon", f"https://example.org/statuses/{n}", T0, f"user{n}@example.org",
                f"post {n} #CoPro16", hashtags=["CoPro16"], via="example.org #CoPro16")  # fmt: skip
    return replace(post, **changes)


def test_the_frozen_schema_is_the_whole_post_table():
    table, indexes = frozen("sqlite.sql")
    _, columns, constraints = shape(table)
    assert len(columns) == 30 and "quote_of VARCHAR" in columns and "text TEXT NOT NULL" in columns
    assert constraints == [
        "PRIMARY KEY (id)",
        "CONSTRAINT uq_post_platform_id UNIQUE (platform, post_id)",
    ]
    assert indexes == ["CREATE INDEX ix_post_author ON post (author)",
                       "CREATE INDEX ix_post_created_at ON post (created_at)"]  # fmt: skip


def test_a_new_sqlite_database_has_the_frozen_post_table(tmp_path):
    db = tmp_path / "new.db"
    open_database(f"sqlite:///{db}").dispose()
    table, indexes = of_post(sqlite_schema(db))
    old_table, old_indexes = frozen("sqlite.sql")
    assert shape(table) == shape(old_table)
    assert indexes == old_indexes


def test_the_post_table_on_postgresql_is_the_frozen_one():
    dialect = postgresql.dialect()
    table = str(CreateTable(POST_TABLE).compile(dialect=dialect)).strip()
    indexes = sorted(str(CreateIndex(i).compile(dialect=dialect)) for i in POST_TABLE.indexes)
    old_table, old_indexes = frozen("postgresql.sql")
    assert "created_at TIMESTAMP WITH TIME ZONE NOT NULL" in shape(old_table)[1]
    assert shape(table) == shape(old_table)
    assert indexes == old_indexes


def test_every_post_column_keeps_its_sqlalchemy_type_and_nullability():
    lines = (FROZEN / "columns.txt").read_text(encoding="utf-8").splitlines()
    old = sorted(line for line in lines if line and not line.startswith("#"))
    now = sorted(
        f"{c.name} {type(c.type).__name__} {'NULL' if c.nullable else 'NOT NULL'}"
        + (" PRIMARY KEY" if c.primary_key else "")
        for c in POST_TABLE.columns
    )
    assert "edited_at UTCDateTime NULL" in old and "html Text NULL" in old
    assert now == old


def test_a_database_made_with_the_old_schema_opens_and_upserts(tmp_path):
    db = tmp_path / "old.db"
    with closing(sqlite3.connect(db)) as conn:
        conn.executescript((FROZEN / "sqlite.sql").read_text(encoding="utf-8"))
    engine = open_database(f"sqlite:///{db}")
    try:
        first = save_page(engine, "first", Page([make_post(1), make_post(2)]), now=T0)
        edited = make_post(1, text="post 1, corrected", edited_at=T0 + timedelta(hours=1), likes=5)
        later = T0 + timedelta(hours=2)
        again = save_page(engine, "later", Page([edited, make_post(2, deleted=True)]), now=later)
        with engine.connect() as conn:
            rows = {r.post_id: r for r in conn.execute(select(POST_TABLE))}
    finally:
        engine.dispose()
    assert (first.new, again.new, again.updated) == (2, 0, 2)
    one, two = rows[make_post(1).id], rows[make_post(2).id]
    assert (one.text, one.likes, one.edited_at, one.source) == (
        "post 1, corrected",
        5,
        T0 + timedelta(hours=1),
        "first",
    )
    assert (two.deleted_at, two.collected_at, two.updated_at) == (later, T0, later)
    # Opening added no column to it: SQLite would have rewritten the CREATE TABLE it keeps.
    assert of_post(sqlite_schema(db)) == frozen("sqlite.sql")


def test_every_stored_field_of_a_post_reads_back_and_the_others_go_to_the_sighting(engine):
    plus_two, minus_five = timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))
    post = Post(
        platform="mastodon", id="https://example.org/statuses/9",
        created_at=datetime(2016, 11, 28, 15, tzinfo=plus_two), author="ann@example.org",
        text="Full post", url="https://example.org/@ann/9", author_name="Ann",
        reply_to="https://example.org/statuses/8", repost_of="https://example.org/statuses/7",
        quote_of="https://example.org/statuses/6", likes=1, reposts=2, replies=3, quotes=4,
        lang="en", hashtags=["CoPro16"], mentions=["bob@example.org"],
        links=["https://example.com/"], media=[{"url": "https://example.org/m.png", "type": "image", "alt": "A slide"}],
        html="<p>Full post</p>", edited_at=datetime(2016, 11, 28, 9, tzinfo=minus_five),
        deleted=False, via="example.org #CoPro16", raw={"id": "9"}, local_id="109",
        reply_to_via="example.org",
    )  # fmt: skip
    save_page(engine, "s", Page([post]))
    with engine.connect() as conn:
        row = conn.execute(select(POST_TABLE)).one()._mapping
        sighting = conn.execute(select(Sighting.via, Sighting.local_id)).one()  # type: ignore[call-overload]
    unstored = {"via", "local_id", "deleted"}
    for spec in fields(Post):
        if spec.name not in unstored:
            assert row[spec.metadata.get("column", spec.name)] == getattr(post, spec.name), (
                spec.name
            )
    assert row["created_at"].tzinfo == UTC and row["created_at"] == datetime(
        2016, 11, 28, 13, tzinfo=UTC
    )
    assert row["edited_at"] == datetime(2016, 11, 28, 14, tzinfo=UTC) and row["deleted_at"] is None
    assert unstored.isdisjoint(row.keys()) and tuple(sighting) == ("example.org #CoPro16", "109")


def test_a_post_field_with_no_column_type_is_named_with_the_fix():
    @dataclass
    class Odd:
        ratio: complex

    with pytest.raises(TypeError, match=r"^Post\.ratio: no column type for <class 'complex'>"):
        _post_column(fields(Odd)[0], complex)
