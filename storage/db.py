"""Engines from a database URL, with SQLite pragmas on every connection. No module-level engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.schema import CreateTable
from sqlmodel import SQLModel, create_engine

from aggregator.errors import AggregatorError
from storage import models  # noqa: F401  (registers the tables on SQLModel.metadata)

__all__ = ["BUSY_TIMEOUT_MS", "StorageError", "make_engine", "open_database", "writer"]

BUSY_TIMEOUT_MS = 30_000


class StorageError(AggregatorError):
    """The database cannot be used; the message says what to fix."""


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer, nor it them
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _autocommit_driver(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None


def _begin(conn: Any) -> None:
    immediate = conn.get_execution_options().get("immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def beside_database(url: str, suffix: str) -> Path | None:
    """For a SQLite file, the path beside it with `suffix` added (`aggregator.db.lock`); None for
    any other database (in memory, a URI, a server), whose callers choose a folder of their own."""
    parsed = make_url(url)
    database = parsed.database or ""
    local_file = database not in ("", ":memory:") and not database.startswith("file:")
    if parsed.get_backend_name() == "sqlite" and local_file:
        db = Path(database)
        return db.with_name(db.name + suffix)
    return None


def writer(engine: Engine) -> Engine:
    """The engine to write through: on SQLite each transaction takes the write lock at BEGIN,
    waiting up to the busy timeout for another writer instead of failing half-way."""
    return engine.execution_options(immediate=True)


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite files get WAL, a busy timeout and foreign keys."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StorageError(
            f"database URL {url!r} is not valid (use a path or a SQLAlchemy URL)"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise StorageError(
            f"database {backend!r} is not supported: use a SQLite file (a path) or PostgreSQL "
            "(postgresql+psycopg://user@host/db)"
        )
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            folder = Path(parsed.database).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(
                    f"cannot create the database folder {folder}: {exc.strerror} (fix [storage] database)"
                ) from None
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's implicit BEGIN is lazy and upgrades to a write lock mid-transaction, where a
        # busy timeout cannot help; we issue BEGIN ourselves: IMMEDIATE for writers (see writer()).
        event.listen(engine, "connect", _autocommit_driver)
        event.listen(engine, "begin", _begin)
        return engine
    try:
        return create_engine(url, pool_pre_ping=True)
    except ModuleNotFoundError as exc:
        raise StorageError(
            f"database driver {exc.name!r} is not installed (for PostgreSQL: pip install '.[postgres]')"
        ) from None


def add_missing_columns(engine: Engine) -> list[str]:
    """Bring a database made by an older version up to date: add columns a newer version
    declares, with their indexes. Only additive changes happen this way; each new column is
    nullable or has a server default, so old rows stay valid, and a column that says how is
    filled from what the database already holds (`_backfill`). Returns 'table.column' for each."""
    missing: list[tuple[str, Any]] = []
    with engine.connect() as conn:  # a reader: opening never waits for a collection's writes
        inspector = inspect(conn)
        for table in SQLModel.metadata.sorted_tables:
            if inspector.has_table(table.name):
                have = {c["name"] for c in inspector.get_columns(table.name)}
                missing += [(table.name, c) for c in table.columns if c.name not in have]
    if not missing:
        return []
    with writer(engine).begin() as conn:
        inspector = inspect(conn)  # again under the write lock: another process may have done it
        added: list[tuple[str, Any]] = []
        for table_name, column in missing:
            if column.name in {c["name"] for c in inspector.get_columns(table_name)}:
                continue
            added.append((table_name, column))
            ddl = f"ALTER TABLE {table_name} ADD COLUMN {column.name} {column.type.compile(conn.dialect)}"
            if column.server_default is not None:
                # Quoted as CREATE TABLE writes it: PostgreSQL takes '0' as false, not 0.
                create = CreateTable(SQLModel.metadata.tables[table_name])
                ddl_compiler = conn.dialect.ddl_compiler(conn.dialect, create)
                ddl += f" DEFAULT {ddl_compiler.get_column_default_string(column)}"
            conn.exec_driver_sql(ddl)
        for table_name in {t for t, _ in missing}:  # and the indexes the new columns carry
            for index in SQLModel.metadata.tables[table_name].indexes:
                index.create(conn, checkfirst=True)
        _backfill(conn, added)
    return [f"{t}.{c.name}" for t, c in missing]


def _backfill(conn: Any, added: list[tuple[str, Any]]) -> None:
    """Fill each added column that says how (`info["backfill"]`, an SQL expression over its own
    row, e.g. a sighting's count from its post) in the transaction that added it."""
    for table_name, column in added:
        fill = column.info.get("backfill")
        if fill is not None:
            table = SQLModel.metadata.tables[table_name]
            conn.execute(table.update().values({column.name: fill}))


def open_database(url: str) -> Engine:
    """make_engine, create missing tables and columns. Raises StorageError with a fix."""
    engine = make_engine(url)
    try:
        SQLModel.metadata.create_all(engine)
        add_missing_columns(engine)
    except OperationalError as exc:
        engine.dispose()
        raise StorageError(f"cannot open database {engine.url!r}: {_one_line(exc.orig)}") from None
    except SQLAlchemyError as exc:
        engine.dispose()
        raise StorageError(f"cannot open database {engine.url!r}: {_one_line(exc)}") from None
    return engine


def _one_line(error: object) -> str:
    """Drivers explain over several lines; our errors are one."""
    return " ".join(str(error).split())
