"""`aggregator db copy`: every table of one database copied into another (SQLite to PostgreSQL, or
back), in batches, each batch its own transaction, then checked by counting each table's rows.

Resumable: rows go in by primary key and a key already there is left alone, so a batch given
twice adds nothing; a table whose key is an integer resumes after the largest key the target holds,
the others (a few rows each) are read again from the start. The target is marked (`meta`,
`COPY_KEY`) until the copy is verified: it must be empty, or hold such a mark from the same source.
Never prints: progress goes to a callback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, Table, delete, func, inspect, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from aggregator.clock import utcnow
from aggregator.stamp import database_label
from storage import (
    migrations,
    moderation,  # noqa: F401  (registers moderationdecision on the metadata)
)
from storage.db import StorageError, writer
from storage.models import Meta

__all__ = ["BATCH", "COPY_KEY", "Counted", "OnBatch", "copy_database", "tables_of"]

BATCH = 5_000
COPY_KEY = "copy.unfinished"  # in the target's meta while a copy into it is not yet verified
META = Meta.__table__  # type: ignore[attr-defined]
# (table, rows copied so far, the source's rows): after each batch
OnBatch = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Counted:
    """One table's rows in the source and in the target once copied."""

    table: str
    source: int
    target: int

    @property
    def equal(self) -> bool:
        return self.source == self.target


def tables_of(engine: Engine) -> list[Table]:
    """The database's tables in the order their foreign keys need (parents first), as the models
    declare them. :raises StorageError: it holds a table this version does not know."""
    names = {
        name
        for name in inspect(engine).get_table_names()
        if name != migrations.VERSION_TABLE and not migrations.is_foreign(name)
    }
    unknown = sorted(names - set(SQLModel.metadata.tables))
    if unknown:
        raise StorageError(
            f"the database {database_label(engine)} has tables this version does not know "
            f"({', '.join(unknown)}): copy it with the version that made them"
        )
    return [table for table in SQLModel.metadata.sorted_tables if table.name in names]


def copy_database(
    source: Engine, target: Engine, *, batch: int = BATCH, on_batch: OnBatch | None = None
) -> list[Counted]:
    """Copy every table of `source` into `target` (both at the same revision: open them with
    storage.db.open_database) and count each table's rows in both. The target's mark stays
    until every count is equal.

    :raises StorageError: the target holds other data, or a table is unknown.
    """
    tables = tables_of(source)
    missing = {t.name for t in tables} - {t.name for t in tables_of(target)}
    if missing:
        raise StorageError(
            f"the target {database_label(target)} lacks {', '.join(sorted(missing))}"
        )
    _mark(target, tables, database_label(source))
    for table in tables:
        _copy_table(source, target, table, batch, on_batch)
    if target.dialect.name == "postgresql":
        _reset_sequences(target, tables)
    counts = [Counted(t.name, _count(source, t), _count(target, t)) for t in tables]
    if all(c.equal for c in counts):
        with writer(target).begin() as conn:
            conn.execute(delete(META).where(META.c.key == COPY_KEY))
    return counts


def _mark(target: Engine, tables: list[Table], source: str) -> None:
    """Mark the target as a copy in progress from `source`, if it is empty or already so marked.

    :raises StorageError: it holds other data.
    """
    with writer(target).begin() as conn:
        mark = conn.execute(select(META.c.value).where(META.c.key == COPY_KEY)).scalar()
        if mark == source:
            return  # an unfinished copy from the same source: carry on
        held = [
            t.name for t in tables if conn.execute(select(func.count()).select_from(t)).scalar()
        ]
        if held:
            what = f"an unfinished copy from {mark}" if mark else f"rows in {', '.join(held)}"
            raise StorageError(
                f"the target {database_label(target)} is not empty ({what}): copy into a new, empty "
                "database (or drop this one's tables first)"
            )
        conn.execute(META.insert().values(key=COPY_KEY, value=source, updated_at=utcnow()))


def _copy_table(
    source: Engine, target: Engine, table: Table, batch: int, on_batch: OnBatch | None
) -> None:
    """Copy one table a batch at a time in key order, each batch in one transaction."""
    total = _count(source, table)
    key = list(table.primary_key.columns)
    after = _resume_after(target, table)
    done = 0 if after is None else _count(target, table)
    insert = (pg_insert if target.dialect.name == "postgresql" else sqlite_insert)(table)
    statement = insert.on_conflict_do_nothing(index_elements=[c.name for c in key])
    for rows in _batches(source, table, batch, after):
        with writer(target).begin() as conn:
            conn.execute(statement, rows)
        done = min(total, done + len(rows))
        if on_batch is not None:
            on_batch(table.name, done, total)


def _resume_after(target: Engine, table: Table) -> Any:
    """Where a table's copy resumes: after the largest integer key the target holds (batches go
    in key order, each committed whole); None: from the start (other keys compare differently
    across databases, so only integers are trusted)."""
    (key,) = table.primary_key.columns if len(table.primary_key.columns) == 1 else (None,)
    if key is None or not isinstance(key.type, Integer):
        return None
    with target.connect() as conn:
        return conn.execute(select(func.max(key))).scalar()


def _batches(source: Engine, table: Table, size: int, after: Any) -> Iterator[list[dict[str, Any]]]:
    """The source's rows in key order, `size` at a time, each read by its key (keyset paging:
    no OFFSET, so every batch costs the same)."""
    key = list(table.primary_key.columns)
    last: tuple[Any, ...] | None = None if after is None else (after,)
    while True:
        query = select(table).order_by(*key).limit(size)
        if last is not None:
            query = query.where(tuple_(*key) > tuple_(*last))
        with source.connect() as conn:
            rows = [dict(row._mapping) for row in conn.execute(query)]
        if not rows:
            return
        yield rows
        last = tuple(rows[-1][c.name] for c in key)


def _count(engine: Engine, table: Table) -> int:
    query = select(func.count()).select_from(table)
    if table.name == META.name:
        query = query.where(META.c.key != COPY_KEY)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _reset_sequences(target: Engine, tables: list[Table]) -> None:
    """PostgreSQL hands out ids from a sequence the copied rows did not use: each is set past the
    largest id copied, so the next insert gets the next one."""
    with writer(target).begin() as conn:
        for table in tables:
            (key,) = table.primary_key.columns if len(table.primary_key.columns) == 1 else (None,)
            if key is None or not isinstance(key.type, Integer):
                continue
            sequence = conn.execute(
                select(func.pg_get_serial_sequence(table.name, key.name))
            ).scalar()
            if sequence is not None:
                largest = select(func.coalesce(func.max(key), 0)).scalar_subquery()
                conn.execute(select(func.setval(sequence, largest + 1, False)))
