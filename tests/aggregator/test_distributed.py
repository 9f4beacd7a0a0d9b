"""Distributed collection (aggregator.distributed) in one process: `run` defers one job per enabled
source and waits for them, a worker (run here with wait=False, inside the run's injected sleep)
collects them into the run's log; a source is never collected by two workers at once; a job left
by a dead worker is retried from the source's saved cursor; `status` shows the queue. The
PostgreSQL tests need AGGREGATOR_TEST_POSTGRES_URL; the real processes are in
tests/cli/test_workers_kill.py."""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import respx
from sqlalchemy import text

pytest.importorskip(
    "procrastinate", reason="the postgres extra is not installed (pip install '.[postgres]')"
)

from aggregator import distributed
from aggregator.config import Config, load_config
from aggregator.distributed import (
    defer_sources,
    ensure_schema,
    make_app,
    retry_stalled,
    run_distributed,
    run_worker,
    source_lock,
)
from aggregator.health import format_status, status_report
from aggregator.lock import PgLock
from aggregator.pipeline import collect
from storage.db import open_database
from storage.queries import start_run
from tests.helpers import FakeInstance, invoke, many, postgres_database

PG_URL = os.environ.get("AGGREGATOR_TEST_POSTGRES_URL", "")
SESSION = (
    '[[sessions]]\nid = "a"\ntitle = "A"\nstart = "2016-11-28T12:00"\nend = "2016-11-28T13:00"\n'
)
INSTANCES = {"a": "https://a.example", "b": "https://b.example", "c": "https://c.example"}


def write_config(folder: Path, database: str, enabled: dict[str, bool]) -> Config:
    text_ = (
        '[event]\nname = "Workers"\ntimezone = "UTC"\nhashtags = ["CoPro16"]\n'
        f'[storage]\ndatabase = "{database}"\n[workers]\ndistributed = true\nstall_seconds = 3\n'
        + SESSION
    )
    for name, on in enabled.items():
        text_ += (f'[[sources]]\nname = "{name}"\ntype = "mastodon"\ninstance = "{INSTANCES[name]}"\n'
                  f"enabled = {str(on).lower()}\nmax_attempts = 1\n")  # fmt: skip
    (folder / "config.toml").write_text(text_, encoding="utf-8")
    return load_config(folder / "config.toml")


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[Config]:
    """Sources a and b enabled, c not, on a new PostgreSQL database."""
    if not PG_URL:
        pytest.skip("set AGGREGATOR_TEST_POSTGRES_URL to run it")
    with postgres_database(PG_URL) as url:
        yield write_config(tmp_path, url, {"a": True, "b": True, "c": False})


@pytest.fixture
def servers() -> Iterator[dict[str, FakeInstance]]:
    """Instance a with 100 statuses (three pages), b with 50, c with 10."""
    instances = {
        "a": FakeInstance(INSTANCES["a"], many(100)),
        "b": FakeInstance(INSTANCES["b"], many(50, start=1000)),
        "c": FakeInstance(INSTANCES["c"], many(10, start=5000)),
    }
    with respx.mock(assert_all_called=False) as router:
        for instance in instances.values():
            instance.mount(router)
        yield instances


def rows(config: Config, sql: str, **params: Any) -> list[Any]:
    engine = open_database(config.database_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params))
    finally:
        engine.dispose()


def stored(config: Config) -> dict[str, int]:
    found = rows(config, "SELECT source, count(*) AS n FROM sighting GROUP BY source")
    return {r.source: r.n for r in found}


def live_worker(conn: Any) -> int:
    """A worker registered elsewhere, alive however slowly this test runs (its heartbeat is an
    hour ahead)."""
    stmt = "INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() + interval '1 hour')"
    return int(conn.execute(text(stmt + " RETURNING id")).scalar())


class Worker:
    """The run's sleep: the first time it is called, note the jobs, then work the queue dry."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.jobs: list[Any] | None = None
        self.calls = 0

    def __call__(self, _seconds: float) -> None:
        self.calls += 1
        if self.jobs is None:
            self.jobs = rows(self.config, "SELECT args, lock, status::text AS status "
                                          "FROM procrastinate_jobs ORDER BY id")  # fmt: skip
        run_worker(self.config, wait=False)


def test_distributed_workers_need_postgresql(tmp_path):
    (tmp_path / "config.toml").write_text(
        '[event]\nname = "W"\ntimezone = "UTC"\nhashtags = ["T"]\n'
        "[workers]\ndistributed = true\n" + SESSION,
        encoding="utf-8",
    )
    for command in ("run", "worker", "status"):
        result = invoke(tmp_path, command)
        assert result.exit_code == 2, result.output
        assert "workers.distributed: needs PostgreSQL" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_a_worker_refuses_a_config_that_is_not_distributed(project):
    result = invoke(project, "worker")
    assert result.exit_code == 2
    assert result.stderr.strip().endswith(
        "aggregator worker needs distributed workers: set [workers] distributed = true in "
        "config.toml (with a PostgreSQL [storage] database; docs/scaling.md)"
    )


def test_run_defers_one_job_per_enabled_source_and_waits_for_them(pg, servers):
    worker = Worker(pg)
    done = run_distributed(pg, sleep=worker, poll=0)

    assert [(j.args["source"], j.lock, j.status) for j in worker.jobs] == [
        ("a", source_lock("a"), "todo"),
        ("b", source_lock("b"), "todo"),
    ]  # fmt: skip  (c is disabled: no job)
    (run,) = rows(pg, "SELECT id, command, status FROM collectionrun")
    assert {j.args["run_id"] for j in worker.jobs} == {run.id}
    assert (run.command, run.status) == ("run", "ok")
    assert [(s.name, s.status, s.new_posts) for s in done.collected.sources] == [
        ("a", "ok", 100), ("b", "ok", 50)
    ]  # fmt: skip
    outcomes = rows(pg, "SELECT source, status FROM sourceoutcome WHERE run_id = :r", r=run.id)
    assert sorted((o.source, o.status) for o in outcomes) == [("a", "ok"), ("b", "ok")]
    assert stored(pg) == {"a": 100, "b": 50}
    assert done.tagged is not None and "html" in done.files  # tagged and reported after
    assert servers["c"].requests == []


def test_run_exits_1_when_a_source_fails_and_the_others_are_collected(pg, servers, monkeypatch):
    servers["a"].status_code = 503
    worker = Worker(pg)
    monkeypatch.setattr(distributed, "run_distributed",
                        functools.partial(run_distributed, sleep=worker, poll=0))  # fmt: skip
    result = invoke(pg.path, "run")

    assert result.exit_code == 1
    assert "✗ a: " in result.stderr and "✓ b: 50 new" in result.output
    assert result.stderr.strip().splitlines()[-1] == "Error: 1 source(s) failed: a"
    (run,) = rows(pg, "SELECT status, message FROM collectionrun")
    assert (run.status, run.message) == ("failed", "a failed")
    assert stored(pg) == {"b": 50}


def test_a_source_collected_elsewhere_is_not_collected_again_at_once(pg, servers):
    engine = open_database(pg.database_url)
    ensure_schema(engine)
    app = make_app(pg)
    with app.open():
        run_id = start_run(engine, "run")
        first = defer_sources(app, pg, run_id)
        second = defer_sources(app, pg, run_id)
        # a worker elsewhere took a's first job: Procrastinate holds a's other job back
        with engine.begin() as conn:
            conn.execute(text("UPDATE procrastinate_jobs SET status = 'doing', worker_id = :w "
                              "WHERE id = :id"), {"w": live_worker(conn), "id": first["a"]})  # fmt: skip
        # and a process elsewhere is collecting b: its advisory lock holds the job back
        with PgLock(pg.database_url, "source:b"):
            run_worker(pg, wait=False)
    states = {r.id: r.status for r in rows(pg, "SELECT id, status::text FROM procrastinate_jobs")}
    engine.dispose()

    assert states[second["a"]] == "todo"  # waits for the first of its source
    assert servers["a"].requests == []
    assert states[first["b"]] == "todo"  # given back, to retry once b is free
    assert len(servers["b"].requests) == 0
    assert states[second["b"]] == "todo"


def test_a_job_left_by_a_dead_worker_is_finished_from_the_saved_cursor(pg, servers):
    engine = open_database(pg.database_url)
    servers["a"].fail_after = 1  # the first page is saved, then the source breaks
    collect(engine, pg, only="a")
    assert stored(pg) == {"a": 40}
    servers["a"].fail_after = None
    asked_before = len(servers["a"].requests)

    ensure_schema(engine)
    app = make_app(pg)
    with app.open():
        run_id = start_run(engine, "run")
        jobs = defer_sources(app, pg, run_id)
    with engine.begin() as conn:  # a worker took a's job, then fell silent an hour ago
        dead = conn.execute(text("INSERT INTO procrastinate_workers (last_heartbeat) "
                                 "VALUES (now() - interval '1 hour') RETURNING id")).scalar()  # fmt: skip
        conn.execute(text("UPDATE procrastinate_jobs SET status = 'doing', worker_id = :w "
                          "WHERE id = :id"), {"w": dead, "id": jobs["a"]})  # fmt: skip

    run_worker(pg, wait=False)  # a worker starting takes it over

    job = rows(pg, "SELECT status::text, attempts FROM procrastinate_jobs WHERE id = :id",
               id=jobs["a"])[0]  # fmt: skip
    assert (job.status, job.attempts) == ("succeeded", 2)
    assert stored(pg) == {"a": 100, "b": 50}  # no gap
    resumed = servers["a"].requests[asked_before:]
    assert resumed and all({"min_id", "max_id"} & set(r) for r in resumed)  # not from the top
    outcomes = rows(pg, "SELECT source, new_posts, updated_posts FROM sourceoutcome "
                        "WHERE run_id = :r AND source = 'a'", r=run_id)  # fmt: skip
    assert [(o.new_posts, o.updated_posts) for o in outcomes] == [(60, 0)]  # nothing twice
    engine.dispose()


def test_retry_stalled_leaves_the_jobs_of_live_workers(pg, servers):
    engine = open_database(pg.database_url)
    ensure_schema(engine)
    app = make_app(pg)
    with app.open():
        jobs = defer_sources(app, pg, start_run(engine, "run"))
    with engine.begin() as conn:
        conn.execute(text("UPDATE procrastinate_jobs SET status = 'doing', worker_id = :w"),
                     {"w": live_worker(conn)})  # fmt: skip
    engine.dispose()

    async def once() -> list[int]:
        async with make_app(pg).open_async() as opened:
            return await retry_stalled(opened, 3)

    assert asyncio.run(once()) == []
    assert {r.status for r in rows(pg, "SELECT status::text FROM procrastinate_jobs")} == {"doing"}
    assert len(jobs) == 2


def test_status_shows_the_workers_and_their_jobs(pg, servers):
    engine = open_database(pg.database_url)
    ensure_schema(engine)
    app = make_app(pg)
    with app.open():
        run_id = start_run(engine, "run")
        jobs = defer_sources(app, pg, run_id)
    with engine.begin() as conn:
        dead = conn.execute(text("INSERT INTO procrastinate_workers (last_heartbeat) "
                                 "VALUES (now() - interval '1 hour') RETURNING id")).scalar()  # fmt: skip
        conn.execute(text("UPDATE procrastinate_jobs SET status = 'doing', worker_id = :w "
                          "WHERE id = :id"), {"w": dead, "id": jobs["a"]})  # fmt: skip
        conn.execute(text("UPDATE procrastinate_jobs SET status = 'failed', attempts = 5 "
                          "WHERE id = :id"), {"id": jobs["b"]})  # fmt: skip
    report = status_report(engine, pg)
    engine.dispose()

    queue = report["workers"]
    assert [(w["id"], w["stalled"]) for w in queue["workers"]] == [(dead, True)]
    assert queue["queued"] == 0
    assert [(j["source"], j["run"], j["worker"]) for j in queue["running"]] == [("a", run_id, dead)]
    assert [(j["source"], j["attempts"]) for j in queue["failed"]] == [("b", 5)]
    lines = format_status(report, pg)
    assert lines[1].startswith("Workers: 1, heartbeats 36") and lines[1].endswith("s ago (STALLED)")
    assert lines[2] == f"Jobs: 0 queued, 1 running: a (worker {dead})"
    assert lines[3] == f"Failed jobs (latest): b (run {run_id}, 5 attempts); see the workers' logs"
