"""`aggregator db copy` (storage/copy.py): the bundled example moved into PostgreSQL and back with
equal counts and equal rows; a copy stopped after some batches and run again ends complete with no
row twice; a target holding other data is refused; ids go on from the copied ones."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest
from sqlalchemy import Table, func, select

from storage.copy import COPY_KEY, copy_database, tables_of
from storage.db import open_database
from storage.models import CollectionRun, Meta
from tests.helpers import EXAMPLE, ROOT, database, invoke, postgres_database

PG_URL = os.environ.get("AGGREGATOR_TEST_POSTGRES_URL")
needs_pg = pytest.mark.skipif(not PG_URL, reason="set AGGREGATOR_TEST_POSTGRES_URL to run it")
RUNS = CollectionRun.__table__  # type: ignore[attr-defined]
META = Meta.__table__  # type: ignore[attr-defined]


def every_row(engine, table: Table) -> list[dict]:
    """Every row of a table in key order, every column as the models read it."""
    key = list(table.primary_key.columns)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(table).order_by(*key))]


def assert_same(source, target) -> dict[str, int]:
    """The two databases hold the same rows in every table; returns the counts."""
    counts = {}
    for table in tables_of(source):
        rows = every_row(source, table)
        copied = every_row(target, table)
        if table.name == "meta":
            copied = [r for r in copied if r["key"] != COPY_KEY]
        assert copied == rows, table.name
        counts[table.name] = len(rows)
    return counts


class Stop(Exception):
    """Raised from the progress callback: the copy ends between two batches, as a kill would."""


def stop_after(batches: int):
    seen = []

    def on_batch(table: str, done: int, total: int) -> None:
        seen.append((table, done, total))
        if len(seen) == batches:
            raise Stop

    return on_batch, seen


def test_an_interrupted_copy_run_again_ends_complete_with_no_row_twice(example_loaded, tmp_path):
    source = open_database(f"sqlite:///{database(example_loaded)}")
    target = open_database(f"sqlite:///{tmp_path / 'copy.db'}")
    try:
        on_batch, seen = stop_after(5)
        with pytest.raises(Stop):
            copy_database(source, target, batch=40, on_batch=on_batch)
        posts = [(done, total) for table, done, total in seen if table == "post"]
        assert seen[-1][0] == "post" and posts == [(40 * n, 400) for n in range(1, len(posts) + 1)]
        with target.connect() as conn:
            assert conn.execute(select(META.c.value).where(META.c.key == COPY_KEY)).scalar()

        again, seen = stop_after(0)
        counts = copy_database(source, target, batch=40, on_batch=again)
        assert all(c.equal for c in counts)
        resumed = [done for table, done, _ in seen if table == "post"]
        assert resumed[0] == posts[-1][0] + 40  # carried on after the posts already there
        assert assert_same(source, target)["post"] == 400
        with target.connect() as conn:  # verified: the mark is gone
            assert conn.execute(select(META.c.value).where(META.c.key == COPY_KEY)).scalar() is None
    finally:
        source.dispose()
        target.dispose()


def test_db_copy_refuses_a_target_holding_other_data(example_loaded, project, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.toml").write_text(
        (project / "config.toml").read_text().replace("The People's Transformathon", "Another")
    )
    (other / "examples").symlink_to(project / "examples")
    assert invoke(other, "import", str(EXAMPLE)).exit_code == 0
    result = invoke(example_loaded, "db", "copy", "--to", str(database(other)))
    assert result.exit_code == 1
    assert "is not empty" in result.stderr and "\n" not in result.stderr.strip()
    with sqlite3.connect(database(other)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM post").fetchone()[0] == 400  # untouched


def test_db_copy_to_a_sqlite_path_prints_equal_counts(example_loaded, tmp_path):
    result = invoke(example_loaded, "db", "copy", "--to", str(tmp_path / "new.db"), "--batch", "64")
    assert result.exit_code == 0, result.output
    assert "every table's rows counted equal" in result.stdout
    post_line = next(line for line in result.stdout.splitlines() if line.startswith("post "))
    assert post_line.split()[1:] == ["400", "400"]


@needs_pg
def test_db_copy_moves_the_example_into_postgresql_and_back(example_loaded, tmp_path):
    assert invoke(example_loaded, "report").exit_code == 0  # the analysis table too
    with postgres_database(PG_URL) as url:
        result = invoke(example_loaded, "db", "copy", "--to", url, "--batch", "100")
        assert result.exit_code == 0, result.output
        source = open_database(f"sqlite:///{database(example_loaded)}")
        target = open_database(url)
        back = open_database(f"sqlite:///{tmp_path / 'back.db'}")
        try:
            counts = assert_same(source, target)
            assert counts["post"] == 400 and counts["postanalysis"] == 400
            with target.begin() as conn:  # the next id follows the copied ones
                largest = conn.execute(select(func.max(RUNS.c.id))).scalar()
                made = conn.execute(
                    RUNS.insert().values(command="t", started_at=func.now()).returning(RUNS.c.id)
                ).scalar()
            assert made == largest + 1

            copy_database(target, back, batch=100)
            assert assert_same(target, back) == {
                **counts,
                "collectionrun": counts["collectionrun"] + 1,
            }
        finally:
            source.dispose()
            target.dispose()
            back.dispose()


@needs_pg
def test_an_interrupted_copy_into_postgresql_resumes(example_loaded):
    with postgres_database(PG_URL) as url:
        source = open_database(f"sqlite:///{database(example_loaded)}")
        target = open_database(url)
        try:
            on_batch, _ = stop_after(6)
            with pytest.raises(Stop):
                copy_database(source, target, batch=50, on_batch=on_batch)
            assert all(c.equal for c in copy_database(source, target, batch=50))
            assert assert_same(source, target)["post"] == 400
        finally:
            source.dispose()
            target.dispose()


@pytest.mark.slow
def test_db_copy_killed_mid_way_and_run_again_ends_complete(example_loaded, tmp_path):
    """A real process copies five batches, then is killed (SIGKILL) while it waits for the next."""
    target = tmp_path / "copy.db"
    script = textwrap.dedent(f"""
        import sys
        from storage.copy import copy_database
        from storage.db import open_database

        def on_batch(table, done, total):
            if table == "post" and done == 100:
                print("copied", flush=True)
                sys.stdin.readline()  # killed here

        source = open_database("sqlite:///{database(example_loaded)}")
        copy_database(source, open_database("sqlite:///{target}"), batch=20, on_batch=on_batch)
    """)
    process = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout.readline().strip() == "copied", process.stderr.read()
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
    finally:
        process.kill()
    with sqlite3.connect(target) as conn:
        assert conn.execute("SELECT COUNT(*) FROM post").fetchone()[0] == 100
    result = invoke(example_loaded, "db", "copy", "--to", str(target))
    assert result.exit_code == 0, result.output
    source = open_database(f"sqlite:///{database(example_loaded)}")
    copied = open_database(f"sqlite:///{target}")
    try:
        assert assert_same(source, copied)["post"] == 400
    finally:
        source.dispose()
        copied.dispose()


@pytest.mark.parametrize("to", ["nonsense://x", "mysql://user@127.0.0.1/x"])
def test_a_target_url_of_no_supported_form_is_a_usage_error_and_nothing_runs(project, to):
    result = invoke(project, "db", "copy", "--to", to)
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("Error: --to: database ") and "is not supported" in line
    assert not (project / "data" / "aggregator.db").exists()  # not even the source was opened
