"""The writers' lock on PostgreSQL is an advisory lock (aggregator.lock.PgLock): two writers on one
database exclude each other whichever machine they run on, the refusal names the holder's pid and
host, and the server frees it when its holder lets go or its connection ends; SQLite keeps its
file lock. The PostgreSQL tests need AGGREGATOR_TEST_POSTGRES_URL."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from aggregator.config import Config, load_config
from aggregator.lock import LockError, LockHeld, PgLock, RunLock, lock_holder, writers_lock
from aggregator.pipeline import writing
from tests.helpers import invoke, postgres_database

PG_URL = os.environ.get("AGGREGATOR_TEST_POSTGRES_URL", "")
needs_pg = pytest.mark.skipif(not PG_URL, reason="set AGGREGATOR_TEST_POSTGRES_URL to run it")
HERE = f"(pid {os.getpid()} on {socket.gethostname()})"


def pg_config(folder: Path, url: str) -> Config:
    (folder / "config.toml").write_text(
        '[event]\nname = "Locks"\ntimezone = "UTC"\nhashtags = ["CoPro16"]\n'
        f'[storage]\ndatabase = "{url}"\n'
        '[[sessions]]\nid = "a"\ntitle = "A"\nstart = "2016-11-28T12:00"\nend = "2016-11-28T13:00"\n',
        encoding="utf-8",
    )
    return load_config(folder / "config.toml")


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[Config]:
    if not PG_URL:
        pytest.skip("set AGGREGATOR_TEST_POSTGRES_URL to run it")
    with postgres_database(PG_URL) as url:
        yield pg_config(tmp_path, url)


@needs_pg
def test_two_writers_on_one_database_exclude_each_other(pg):
    with writing(pg):
        with pytest.raises(LockHeld) as refused, writing(pg):
            pytest.fail("a second writer got in")
        assert str(refused.value) == f"a collection is already running {HERE}"
        assert (refused.value.pid, refused.value.host) == (os.getpid(), socket.gethostname())
        assert lock_holder(pg) is not None and lock_holder(pg).pid == os.getpid()
    assert lock_holder(pg) is None  # released when the writer ends
    with writing(pg):  # and free for the next one
        pass


@needs_pg
def test_the_lock_is_the_databases_not_the_config_folders(pg, tmp_path):
    other = tmp_path / "elsewhere"  # another machine's copy of the config, same database
    other.mkdir()
    copy = pg_config(other, pg.database_url)
    with writing(pg), pytest.raises(LockHeld), writing(copy):
        pytest.fail("a writer with another config folder got in")
    assert (
        not (other / ".aggregator.lock").exists() and not (tmp_path / ".aggregator.lock").exists()
    )


@needs_pg
def test_the_server_frees_the_lock_when_its_holders_connection_dies(pg):
    held = PgLock(pg.database_url)
    held.acquire()
    admin = create_engine(pg.database_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:  # what a SIGKILL or a lost machine does to its session
            ended = conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = :me AND pid <> pg_backend_pid()"
            ), {"me": f"aggregator:{os.getpid()}@{socket.gethostname()}"}).scalars().all()  # fmt: skip
    finally:
        admin.dispose()
    assert ended == [True]
    with PgLock(pg.database_url):  # free again, with no one releasing it
        assert lock_holder(pg) is not None  # held by this new one
    held.release()  # its connection is gone: releasing is harmless


@needs_pg
def test_status_names_the_holder_and_its_host(pg):
    with writing(pg):
        result = invoke(pg.path, "status")
    assert f"A collection is running now {HERE}." in result.output
    assert invoke(pg.path, "status", "--json").exit_code == 0


def test_a_database_that_cannot_be_reached_is_one_line_without_its_password():
    pytest.importorskip("psycopg", reason="the postgres extra is not installed")
    lock = PgLock("postgresql+psycopg://aggregator:s3cret@127.0.0.1:1/nowhere")
    with pytest.raises(LockError) as failed:
        lock.acquire()
    message = str(failed.value)
    assert message.startswith(
        "cannot take the writers' lock in postgresql+psycopg://aggregator:***@"
    )
    assert "s3cret" not in message and "\n" not in message


def test_sqlite_keeps_the_file_lock(config):
    lock = writers_lock(config)
    assert isinstance(lock, RunLock)
    with lock:
        assert lock_holder(config) is not None and lock_holder(config).pid == os.getpid()
        assert lock.path.exists() and lock.path.parent == Path(config.database_url[10:]).parent
    assert lock_holder(config) is None
