"""Migrations (storage/migrations, storage/db.py): the revisions build exactly the models' schema on
SQLite and PostgreSQL; a database made by the last release without migrations (tests/fixtures/
migrations, SOURCES.md says how) upgrades in place with every row kept; readers refuse a database
behind or ahead in one line; an upgrade that fails leaves the database as it was."""

from __future__ import annotations

import importlib
import os
import pkgutil
import shutil
import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, create_engine, inspect, text
from sqlmodel import SQLModel

import storage
import storage.db
from storage import migrations
from storage.db import LEGACY, open_database, schema_revision
from tests.helpers import EXAMPLE, invoke, postgres_database

FIXTURES = Path(__file__).parent.parent / "fixtures" / "migrations"
RELEASED_DB = FIXTURES / "released-8343dd1.db"
RELEASED_SQL = FIXTURES / "released-8343dd1.sql"
# Every table of the release, with its key: the rows compared before and after an upgrade.
KEYS = {"post": "id", "sighting": "id", "assignment": "post_pk", "postanalysis": "post_pk",
        "collectionrun": "id", "sourceoutcome": "id", "sourcecursor": "source", "meta": "key",
        "quarantine": "id", "erasure": "id", "schedulestate": "job"}  # fmt: skip
PG_URL = os.environ.get("AGGREGATOR_TEST_POSTGRES_URL")
needs_pg = pytest.mark.skipif(not PG_URL, reason="set AGGREGATOR_TEST_POSTGRES_URL to run it")


def every_model() -> None:
    """Import every storage module, so each table the code declares is on the metadata."""
    for module in pkgutil.iter_modules(storage.__path__):
        importlib.import_module(f"storage.{module.name}")


def differences(url: str, metadata: MetaData = SQLModel.metadata) -> list:
    """What `metadata` (the models) declares that the migrated database at `url` lacks or has
    otherwise, as Alembic's operations (what the missing revision would do)."""
    every_model()
    engine = open_database(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={
                "compare_type": True, "compare_server_default": True,
                "include_name": lambda name, kind, _: not (kind == "table" and (
                    name == migrations.VERSION_TABLE or migrations.is_foreign(name))),
            })  # fmt: skip
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


def test_the_revisions_build_the_models_schema_on_sqlite(tmp_path):
    found = differences(f"sqlite:///{tmp_path / 'new.db'}")
    assert found == [], f"a model changed without a revision in storage/migrations: {found}"


@needs_pg
def test_the_revisions_build_the_models_schema_on_postgresql():
    with postgres_database(PG_URL) as url:
        found = differences(url)
    assert found == [], f"a model changed without a revision in storage/migrations: {found}"


def test_a_model_change_without_a_revision_is_found(tmp_path):
    every_model()
    changed = MetaData()
    for table in SQLModel.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["post"].append_column(Column("added_later", Integer))
    found = differences(f"sqlite:///{tmp_path / 'new.db'}", changed)
    assert [(d[0], d[2], d[3].name) for d in found] == [("add_column", "post", "added_later")]


# -- a database made by the released version ------------------------------------------------------


def rows(conn, table: str) -> list[tuple]:
    return [tuple(r) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY {KEYS[table]}"))]


def snapshot(engine) -> dict[str, list[tuple]]:
    """Every row of every table of the release, in key order, every column as stored."""
    with engine.connect() as conn:
        return {table: rows(conn, table) for table in KEYS}


def project_on(tmp_path: Path, url: str) -> Path:
    """A copy of the shipped project whose [storage] database is `url`."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copytree(Path(__file__).parents[2] / "examples", project / "examples")
    config = (Path(__file__).parents[2] / "config.toml").read_text()
    lines = [f'database = "{url}"' if line.startswith("database =") else line
             for line in config.splitlines()]  # fmt: skip
    (project / "config.toml").write_text("\n".join(lines) + "\n")
    return project


def released_sqlite(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "aggregator.db"
    path.parent.mkdir()
    shutil.copy(RELEASED_DB, path)
    return path


def test_the_released_fixture_holds_every_table_with_rows():
    with sqlite3.connect(RELEASED_DB) as conn:
        counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in KEYS}
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert names == set(KEYS)  # no alembic_version: made before migrations
    assert counts["post"] > 50 and counts["quarantine"] == counts["erasure"] == 1


def test_a_sqlite_database_of_the_released_version_upgrades_with_every_row(tmp_path):
    path = released_sqlite(tmp_path)
    old = create_engine(f"sqlite:///{path}")
    before = snapshot(old)
    old.dispose()
    assert schema_revision(create_engine(f"sqlite:///{path}")) == LEGACY

    engine = open_database(f"sqlite:///{path}")
    try:
        assert schema_revision(engine) == migrations.head()
        after = snapshot(engine)
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {t: len(r) for t, r in after.items()} == {t: len(r) for t, r in before.items()}
    assert after == before
    assert {"moderationdecision", "alembic_version"} <= tables
    backup = path.with_name(f"aggregator.db.before-{migrations.head()}")
    with sqlite3.connect(backup) as conn:  # the copy taken before, as it was
        assert conn.execute("SELECT COUNT(*) FROM post").fetchone()[0] == len(before["post"])
        assert not conn.execute(
            "SELECT 1 FROM sqlite_master WHERE name='alembic_version'"
        ).fetchall()

    project = project_on(tmp_path, str(path))
    assert invoke(project, "import", str(EXAMPLE)).exit_code == 0  # a writing command works on it
    assert invoke(project, "tag").exit_code == 0
    with sqlite3.connect(path) as conn:
        posts = conn.execute("SELECT COUNT(*) FROM post").fetchone()[0]
    assert posts == 400  # the example's 400 posts (the forgotten one again), none twice


@needs_pg
def test_a_postgresql_database_of_the_released_version_upgrades_with_every_row(tmp_path):
    dump = "\n".join(line for line in RELEASED_SQL.read_text().splitlines()
                     if not line.startswith("\\"))  # psql's own commands (\restrict)  # fmt: skip
    with postgres_database(PG_URL) as url:
        loader = create_engine(url)
        with loader.begin() as conn:  # (the dump empties this session's search path)
            conn.exec_driver_sql(dump)
        loader.dispose()
        released = create_engine(url)
        before = snapshot(released)
        released.dispose()
        engine = open_database(url)
        try:
            assert schema_revision(engine) == migrations.head()
            after = snapshot(engine)
        finally:
            engine.dispose()
        assert {t: len(r) for t, r in after.items()} == {t: len(r) for t, r in before.items()}
        assert after == before and len(after["post"]) > 50
        project = project_on(tmp_path, url)
        assert invoke(project, "import", str(EXAMPLE)).exit_code == 0
        check = create_engine(url)
        with check.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM post")).scalar() == 400
        check.dispose()


def test_a_reading_command_refuses_a_database_behind_in_one_line(tmp_path):
    path = released_sqlite(tmp_path)
    project = project_on(tmp_path, str(path))
    result = invoke(project, "status")
    assert result.exit_code == 2
    message = result.stderr.strip()
    assert "\n" not in message and "aggregator db upgrade" in message
    assert schema_revision(create_engine(f"sqlite:///{path}")) == LEGACY  # left as it was


def test_db_upgrade_then_current_say_the_revision(tmp_path):
    path = released_sqlite(tmp_path)
    project = project_on(tmp_path, str(path))
    behind = invoke(project, "db", "current")
    assert behind.exit_code == 0 and "aggregator db upgrade" in behind.stdout
    upgraded = invoke(project, "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert f"from before migrations to revision {migrations.head()}" in upgraded.stdout
    assert invoke(project, "db", "upgrade").stdout.startswith("Already at revision")
    current = invoke(project, "db", "current")
    assert current.stdout.strip().endswith("up to date")
    assert invoke(project, "status").exit_code == 0


def test_a_database_from_a_newer_version_is_refused_by_readers_and_writers(tmp_path):
    project = project_on(tmp_path, "data/aggregator.db")
    assert invoke(project, "import", str(EXAMPLE)).exit_code == 0
    with sqlite3.connect(project / "data" / "aggregator.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    for command in (["status"], ["import", str(EXAMPLE)]):
        result = invoke(project, *command)
        assert result.exit_code == 2, command
        assert "newer version of aggregator (revision 9999" in result.stderr


def test_a_failed_upgrade_leaves_the_database_as_it_was(tmp_path, monkeypatch):
    path = released_sqlite(tmp_path)
    with sqlite3.connect(path) as conn:  # older still: the fix-ups will add these back
        conn.execute("ALTER TABLE assignment DROP COLUMN excluded")
    old = create_engine(f"sqlite:///{path}")
    before = snapshot(old)
    old.dispose()

    def broken(*_args, **_kwargs):
        raise RuntimeError("the disk went away")

    monkeypatch.setattr(storage.db.command, "upgrade", broken)  # after the fix-ups and the stamp
    with pytest.raises(RuntimeError):
        open_database(f"sqlite:///{path}")
    with sqlite3.connect(path) as conn:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(assignment)")}
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "excluded" not in columns and "alembic_version" not in tables
    monkeypatch.undo()
    engine = open_database(f"sqlite:///{path}")  # and the next try upgrades it
    try:
        with engine.connect() as conn:
            assert rows(conn, "post") == before["post"]
            assert (
                conn.execute(text("SELECT COUNT(*) FROM assignment WHERE excluded")).scalar() == 0
            )
    finally:
        engine.dispose()
