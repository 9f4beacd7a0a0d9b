"""Engines from a database URL, with SQLite pragmas on every connection, and the schema brought to
the revision this code needs (Alembic, storage/migrations). No module-level engine."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.schema import CreateTable
from sqlmodel import create_engine

from aggregator.errors import EXIT_USAGE, AggregatorError
from storage import (
    migrations,
    models,  # noqa: F401  (registers the tables on SQLModel.metadata)
)
from storage.migrations.versions.v0001_baseline import METADATA as BASELINE_TABLES

__all__ = [
    "BUSY_TIMEOUT_MS",
    "LEGACY",
    "SchemaAhead",
    "SchemaBehind",
    "StorageError",
    "check_schema",
    "make_engine",
    "open_database",
    "schema_revision",
    "upgrade_database",
    "writer",
]

log = logging.getLogger("aggregator")

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
    """Bring a database made by a release before migrations up to the baseline's columns (see
    `_add_missing_columns`) in a transaction of its own. Returns 'table.column' for each added."""
    with writer(engine).begin() as conn:
        return _add_missing_columns(conn)


def _add_missing_columns(conn: Connection) -> list[str]:
    """The additive path of the releases before migrations, frozen at the baseline: add the
    columns the baseline declares that an older database lacks, with their indexes. Each is
    nullable or has a server default, so old rows stay valid, and a column that says how is
    filled from what the database already holds (`_backfill`). Returns 'table.column' for each."""
    inspector = inspect(conn)
    added: list[tuple[str, Any]] = []
    for table in BASELINE_TABLES.sorted_tables:
        if not inspector.has_table(table.name):
            continue  # created whole by the caller
        have = {c["name"] for c in inspector.get_columns(table.name)}
        added += [(table.name, c) for c in table.columns if c.name not in have]
    for table_name, column in added:
        ddl = (
            f"ALTER TABLE {table_name} ADD COLUMN {column.name} {column.type.compile(conn.dialect)}"
        )
        if column.server_default is not None:
            # Quoted as CREATE TABLE writes it: PostgreSQL takes '0' as false, not 0.
            create = CreateTable(BASELINE_TABLES.tables[table_name])
            ddl_compiler = conn.dialect.ddl_compiler(conn.dialect, create)
            ddl += f" DEFAULT {ddl_compiler.get_column_default_string(column)}"
        conn.exec_driver_sql(ddl)
    for table_name in {t for t, _ in added}:  # and the indexes the new columns carry
        for index in BASELINE_TABLES.tables[table_name].indexes:
            index.create(conn, checkfirst=True)
    _backfill(conn, added)
    return [f"{t}.{c.name}" for t, c in added]


def _backfill(conn: Connection, added: list[tuple[str, Any]]) -> None:
    """Fill each added column that says how (`info["backfill"]`, an SQL expression over its own
    row, e.g. a sighting's count from its post) in the transaction that added it."""
    for table_name, column in added:
        fill = column.info.get("backfill")
        if fill is not None:
            table = BASELINE_TABLES.tables[table_name]
            conn.execute(table.update().values({column.name: fill}))


class SchemaBehind(StorageError):
    """A reading command met a database older than the code: `aggregator db upgrade` fixes it."""

    exit_code = EXIT_USAGE


class SchemaAhead(StorageError):
    """The database was upgraded by a newer version of the program than this one."""

    exit_code = EXIT_USAGE


# A database no migration has touched: None when it holds none of our tables (a new one),
# LEGACY when a release before migrations made it; else its revision.
LEGACY = "legacy"
# The advisory lock PostgreSQL upgrades take, whichever machine runs them ('aggr').
_PG_LOCK = 0x61676772


def schema_revision(engine: Engine) -> str | None:
    """The database's revision: its alembic_version, LEGACY (tables made by a release before
    migrations), or None (none of our tables yet)."""
    with engine.connect() as conn:
        return _revision(conn)


def _revision(conn: Connection) -> str | None:
    context = MigrationContext.configure(conn, opts={"version_table": migrations.VERSION_TABLE})
    found = context.get_current_revision()
    if found is not None:
        return found
    ours = set(BASELINE_TABLES.tables) & set(inspect(conn).get_table_names())
    return LEGACY if ours else None


def upgrade_database(engine: Engine) -> tuple[str | None, str]:
    """Bring the database to the revision this code needs (`migrations.head()`), in one
    transaction, under the write lock (SQLite) or an advisory lock (PostgreSQL) so that two
    processes never both upgrade; a SQLite file is first copied beside itself with VACUUM INTO
    (`<file>.before-<revision>`). A database from before migrations gets that release's additive
    fix-ups, is checked against the baseline and stamped, then upgraded. Returns the revision
    before and after. :raises SchemaAhead: a newer version upgraded it."""
    before = schema_revision(engine)
    target = migrations.head()
    if before == target:
        return before, target
    _refuse_ahead(engine, before)
    if before is not None:
        _backup_before(engine, target)
    with _foreign_keys_off(engine) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
        now = _revision(conn)  # again under the lock: another process may have done it
        _refuse_ahead(engine, now)
        if now == LEGACY:
            _to_baseline(conn)
        command.upgrade(migrations.config(conn), "head")
        _check_foreign_keys(conn)
    return before, target


def _refuse_ahead(engine: Engine, revision: str | None) -> None:
    if revision not in (None, LEGACY) and not migrations.known(revision):
        raise SchemaAhead(
            f"the database {_label(engine)} was upgraded by a newer version of aggregator "
            f"(revision {revision}; this one knows up to {migrations.head()}): "
            "install that version or a later one"
        )


def check_schema(engine: Engine) -> None:
    """For a reader: the database is at this code's revision, or new (then made at once).
    :raises SchemaBehind: naming `aggregator db upgrade`. :raises SchemaAhead:"""
    revision = schema_revision(engine)
    if revision is None:
        upgrade_database(engine)  # a new database: empty, nothing to keep
        return
    _refuse_ahead(engine, revision)
    if revision != migrations.head():
        was = "made before migrations" if revision == LEGACY else f"at revision {revision}"
        raise SchemaBehind(
            f"the database {_label(engine)} is {was} and this version needs "
            f"{migrations.head()}: run `aggregator db upgrade` (or any writing command) first"
        )


def _to_baseline(conn: Connection) -> None:
    """A database made by a release before migrations: its missing tables and columns added as
    that release would have, then checked against the baseline and stamped with it."""
    BASELINE_TABLES.create_all(conn, checkfirst=True)
    added = _add_missing_columns(conn)
    if added:
        log.info("added %s to a database from before migrations", ", ".join(added))
    inspector = inspect(conn)
    missing = [
        f"{table.name}.{column.name}"
        for table in BASELINE_TABLES.sorted_tables
        for column in table.columns
        if column.name not in {c["name"] for c in inspector.get_columns(table.name)}
    ]
    if missing:
        raise StorageError(
            f"the database {_label(conn.engine)} does not match this program's tables (no "
            f"{', '.join(missing)}): point [storage] database at the event's own database"
        )
    command.stamp(migrations.config(conn), migrations.BASELINE)


def _backup_before(engine: Engine, target: str) -> None:
    """Copy a SQLite file beside itself before upgrading it (kept if an earlier try made it).
    PostgreSQL upgrades in one transaction and is backed up with pg_dump (docs/scaling.md)."""
    path = beside_database(str(engine.url), f".before-{target}")
    if path is None or path.exists() or not Path(engine.url.database or "").exists():
        return
    raw = engine.raw_connection()  # VACUUM cannot run inside a transaction
    try:
        raw.cursor().execute("VACUUM INTO ?", (str(path),))
    except sqlite3.OperationalError as exc:
        raise StorageError(
            f"could not copy the database to {path} before upgrading it: {exc} "
            "(free some disk space and run again)"
        ) from None
    finally:
        raw.close()
    log.info("copied the database to %s before upgrading it", path)


@contextmanager
def _foreign_keys_off(engine: Engine) -> Iterator[Connection]:
    """A connection for migrating: on SQLite with foreign keys off, as its manual says for
    rebuilding a table (dropping the old copy must not cascade to the rows pointing at it);
    they are checked before commit (`_check_foreign_keys`) and on again afterwards."""
    with writer(engine).connect() as conn:
        if conn.dialect.name != "sqlite":
            yield conn
            return
        driver = conn.connection.driver_connection  # outside any transaction, or it is ignored
        assert driver is not None
        driver.execute("PRAGMA foreign_keys=OFF")
        try:
            yield conn
        finally:
            driver.execute("PRAGMA foreign_keys=ON")


def _check_foreign_keys(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
        if broken:
            raise StorageError(
                f"upgrading the database would leave {len(broken)} rows pointing at nothing "
                f"(first in table {broken[0][0]}): nothing was changed; please report this"
            )


def _label(engine: Engine) -> str:
    """The database as people know it: a SQLite file's path, else its URL without the password."""
    if engine.dialect.name == "sqlite" and engine.url.database:
        return engine.url.database
    return engine.url.render_as_string(hide_password=True)


def open_database(url: str, *, upgrade: bool = True) -> Engine:
    """make_engine, then the schema this code needs: with `upgrade` (writers), the database is
    brought to it (`upgrade_database`); without (readers), a new one is made and an older or
    newer one refused (`check_schema`). Raises StorageError with a fix."""
    engine = make_engine(url)
    try:
        if upgrade:
            upgrade_database(engine)
        else:
            check_schema(engine)
    except StorageError:
        engine.dispose()
        raise
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
