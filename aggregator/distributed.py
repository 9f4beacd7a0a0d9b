"""Distributed collection on PostgreSQL (`[workers] distributed = true`; docs/scaling.md).

Procrastinate, a job queue living in the same PostgreSQL database, carries the work: `run`
(`run_distributed`) takes the writers' lock (so two runs exclude each other), records the run,
defers one `collect_source` job per enabled source and waits for them; any number of
`aggregator worker` processes (`run_worker`), on any machines, take the jobs. Each job collects its
source exactly as `aggregator collect --source` would (pipeline.collect with the run's id: its
outcome joins the run's log) under two locks: Procrastinate's per-source job lock (jobs of one
source run one after the other) and an advisory lock per source (`PgLock`), which also holds when
a job is retried while a worker thought dead still runs it. Workers beat every third of
`[workers] stall_seconds`; a job whose worker fell silent longer is retried by another worker,
from the source's saved cursor (pages and cursors are saved in one transaction: nothing lost,
nothing stored twice). Once every job has ended, `run` archives media, tags and writes the report
itself, on its own machine (where the report belongs), and finishes the run as `run_nightly`
does, alerts included.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from aggregator.config import Config
from aggregator.errors import UsageError

try:  # the postgres extra: a machine that never runs workers need not install it
    from procrastinate import App, PsycopgConnector, RetryStrategy
    from procrastinate.exceptions import ConnectorException
    from procrastinate.schema import SchemaManager
except ModuleNotFoundError as missing:
    raise UsageError(
        f"distributed workers need {missing.name!r}, which is not installed: "
        "pip install '.[postgres]' (Procrastinate and the PostgreSQL driver)"
    ) from None
from aggregator.lock import APP_PREFIX, NAMESPACE, PgLock, lock_key
from aggregator.pipeline import (
    CollectSummary,
    NightlySummary,
    SourceSummary,
    StopCheck,
    archive_new_media,
    collect,
    run_nightly,
)
from storage.db import StorageError, open_database, writer
from storage.queries import record_outcome, utcnow

__all__ = [
    "COLLECT_TASK",
    "QUEUE",
    "conninfo",
    "defer_sources",
    "ensure_schema",
    "make_app",
    "run_distributed",
    "run_worker",
    "source_lock",
    "wait_for_jobs",
]

log = logging.getLogger(__name__)
QUEUE = "aggregator"
COLLECT_TASK = "aggregator.collect_source"
WORKER_APP = "aggregator-worker:"  # application_name of a worker's connections: PREFIX PID@HOST
FINAL = {"succeeded", "failed", "cancelled", "aborted"}  # a job in one of these will not run again
MAX_ATTEMPTS = 5  # a job raising (the database gone, its source busy) runs at most this often
Sleep = Callable[[float], None]


def conninfo(url: str) -> str:
    """The database URL as libpq takes it: postgresql+psycopg://… -> postgresql://…"""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def source_lock(name: str) -> str:
    """The lock a source's jobs share: Procrastinate runs them one after the other."""
    return f"aggregator:source:{name}"


@contextmanager
def _queue_errors(config: Config) -> Iterator[None]:
    """The job queue's database failing, as one line (no password in it)."""
    try:
        yield
    except ConnectorException as exc:
        where = make_url(config.database_url).render_as_string(hide_password=True)
        reason = " ".join(str(exc.__cause__ or exc).split()) or type(exc).__name__
        raise StorageError(f"the job queue in {where} cannot be used: {reason}") from None


def _require_distributed(config: Config, command: str) -> None:
    if not config.workers.distributed:
        raise UsageError(
            f"{command} needs distributed workers: set [workers] distributed = true in "
            f"{config.path.name} (with a PostgreSQL [storage] database; docs/scaling.md)"
        )


def ensure_schema(engine: Engine) -> bool:
    """Procrastinate's tables (its own, procrastinate_*), created if they are not there yet, in one
    transaction under an advisory lock so that processes starting together create them once.
    Returns whether they were created."""
    with writer(engine).begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:ns, :key)"),
                     {"ns": NAMESPACE, "key": lock_key("procrastinate schema")})  # fmt: skip
        if conn.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is not None:
            return False
        conn.connection.driver_connection.execute(SchemaManager.get_schema())  # type: ignore[union-attr]
    log.info("created the job queue's tables (procrastinate_*)")
    return True


def make_app(config: Config, engine: Engine | None = None) -> App:
    """The Procrastinate app for the config's database, with the `collect_source` task. A worker
    passes the `engine` its jobs write through; `run` only defers and needs none."""
    role = WORKER_APP if engine is not None else APP_PREFIX  # `status` lists the workers'
    name = f"{role}{os.getpid()}@{socket.gethostname()}"[:63]
    connector = PsycopgConnector(conninfo=conninfo(config.database_url),
                                 kwargs={"application_name": name})  # fmt: skip
    app = App(connector=connector)
    stall = config.workers.stall_seconds
    retry = RetryStrategy(max_attempts=MAX_ATTEMPTS, wait=max(1, stall // 3))

    @app.task(name=COLLECT_TASK, queue=QUEUE, retry=retry)
    def collect_source(run_id: int, source: str) -> str:
        if engine is None:
            raise UsageError("this app only defers jobs: a worker makes its own with an engine")
        return _collect_job(engine, config, run_id, source)

    return app


def _collect_job(engine: Engine, config: Config, run_id: int, name: str) -> str:
    """One source of run `run_id`, collected here from its saved cursor, its outcome recorded
    in the run's log as `collect` records it; its status.

    :raises LockHeld: another process is collecting it (the job is retried later)."""
    if config.source(name) is None:
        _record_missing(engine, run_id, name, "failed",
                        f"{name!r} is not a source in this worker's config ({config.path}): "
                        "give every machine the same config.toml")  # fmt: skip
        return "failed"
    with PgLock(config.database_url, f"source:{name}"):
        done = collect(engine, config, only=name, run_id=run_id)
    return done.sources[0].status if done.sources else "interrupted"


def _record_missing(engine: Engine, run_id: int, name: str, status: str, error: str) -> None:
    """An outcome for a source whose job ended without collecting it."""
    now = utcnow()
    record_outcome(engine, run_id, {"source": name, "status": status, "error": error,
                                    "warnings": [], "started_at": now, "finished_at": now})  # fmt: skip


def defer_sources(app: App, config: Config, run_id: int) -> dict[str, int]:
    """One `collect_source` job per enabled source, each under its source's lock; job ids by
    source name. The app must be open."""
    return {
        s.name: app.configure_task(COLLECT_TASK, lock=source_lock(s.name)).defer(
            run_id=run_id, source=s.name
        )
        for s in config.sources
        if s.enabled
    }


def _statuses(engine: Engine, ids: list[int]) -> dict[int, str]:
    stmt = text("SELECT id, status::text AS status FROM procrastinate_jobs WHERE id = ANY(:ids)")
    with engine.connect() as conn:
        return {row.id: row.status for row in conn.execute(stmt, {"ids": ids})}


def _live_workers(engine: Engine, stall_seconds: int) -> int:
    stmt = text(
        "SELECT count(*) FROM procrastinate_workers "
        "WHERE last_heartbeat >= now() - make_interval(secs => :stall)"
    )
    with engine.connect() as conn:
        return int(conn.execute(stmt, {"stall": stall_seconds}).scalar() or 0)


def wait_for_jobs(
    engine: Engine, app: App, config: Config, jobs: Mapping[str, int],
    should_stop: StopCheck | None = None, sleep: Sleep = time.sleep, poll: float = 1.0,
) -> tuple[dict[str, str], bool]:  # fmt: skip
    """Each job's final status by source, polling every `poll` seconds (`sleep`), and whether a
    stop ended the wait: then the jobs not started yet are cancelled, and those running finish
    their source and record it in the run."""
    warned = False
    while True:
        found = _statuses(engine, list(jobs.values()))
        states = {name: found.get(job, "cancelled") for name, job in jobs.items()}
        if all(s in FINAL for s in states.values()):
            return states, False
        if should_stop is not None and should_stop():
            for name, job in jobs.items():
                if states[name] == "todo":
                    with suppress(Exception):  # a worker took it meanwhile: it finishes
                        app.job_manager.cancel_job_by_id(job)
            return states, True
        if not warned and not _live_workers(engine, config.workers.stall_seconds):
            warned = True
            log.warning("no worker is running: the run waits for `aggregator worker` to take "
                        "its jobs (docs/scaling.md)")  # fmt: skip
        sleep(poll)


def _summary(engine: Engine, run_id: int, names: list[str]) -> list[SourceSummary]:
    """Each source's latest outcome in run `run_id`, in `names`' order."""
    stmt = text(
        "SELECT source, status, new_posts, updated_posts, pages, waits, error, warnings, cursor "
        "FROM sourceoutcome WHERE run_id = :run ORDER BY id"
    )
    with engine.connect() as conn:
        latest = {row.source: row for row in conn.execute(stmt, {"run": run_id})}
    return [
        SourceSummary(
            name,
            o.status,
            o.new_posts,
            o.updated_posts,
            o.pages,
            o.waits,
            warnings=list(o.warnings or []),
            error=o.error,
            cursor=o.cursor,
        )
        for name in names
        if (o := latest.get(name)) is not None
    ]


def _collect_distributed(
    engine: Engine, config: Config, run_id: int, should_stop: StopCheck | None,
    sleep: Sleep, poll: float,
) -> CollectSummary:  # fmt: skip
    app = make_app(config)
    with _queue_errors(config), app.open():
        jobs = defer_sources(app, config, run_id)
        log.info("run %d: %d job(s) deferred, one per source", run_id, len(jobs))
        states, stopped = wait_for_jobs(engine, app, config, jobs, should_stop, sleep, poll)
    done = {s.name for s in _summary(engine, run_id, list(jobs))}
    for name, state in states.items():
        if name in done or state in ("doing", "succeeded"):  # it records its outcome itself
            continue
        if state == "failed":
            _record_missing(engine, run_id, name, "failed",
                            f"its job failed {MAX_ATTEMPTS} times: see the workers' logs")  # fmt: skip
        elif state != "succeeded":  # cancelled by a stop, or not started yet
            _record_missing(engine, run_id, name, "interrupted", "stopped before it was collected")
    return CollectSummary(run_id, _summary(engine, run_id, list(jobs)), stopped=stopped)


def run_distributed(
    config: Config,
    *,
    command: str = "run",
    should_stop: StopCheck | None = None,
    env: Mapping[str, str] | None = None,
    clock: Callable[[], datetime] | None = None,
    sleep: Sleep = time.sleep,
    poll: float = 1.0,
) -> NightlySummary:
    """The nightly job with distributed workers: `run_nightly` (its run log, exit status and
    alerts; tagging and the report here), its sources collected by `aggregator worker`
    processes (the module's docstring). `sleep` and `poll` pace the wait for the jobs; the rest
    as for `run_nightly`.

    :raises UsageError: [workers] distributed is off. :raises LockHeld: another run is writing.
    """
    _require_distributed(config, "distributed runs")

    def by_workers(engine: Engine, run_id: int) -> CollectSummary:
        """The jobs deferred and waited for, then the media archive, as `collect` ends."""
        ensure_schema(engine)
        collected = _collect_distributed(engine, config, run_id, should_stop, sleep, poll)
        if not collected.stopped:
            collected.media, collected.stopped = archive_new_media(engine, config, None)
        return collected

    return run_nightly(config, command=command, env=env, clock=clock, collector=by_workers)


async def retry_stalled(app: App, stall_seconds: float) -> list[int]:
    """Put back in the queue each job whose worker has sent no heartbeat for `stall_seconds`
    (killed, or its machine gone), and forget such workers; the ids of the jobs queued again."""
    stalled = await app.job_manager.get_stalled_jobs(
        queue=QUEUE, seconds_since_heartbeat=stall_seconds
    )
    retried = []
    for job in stalled:
        try:
            await app.job_manager.retry_job(job)
        except Exception as exc:  # another worker retried it first
            log.debug("job %s: not retried here: %s", job.id, exc)
            continue
        retried.append(job.id)
        log.warning("job %s (%s) was left by a worker silent for %g s: queued again",
                    job.id, job.task_kwargs.get("source"), stall_seconds)  # fmt: skip
    await app.job_manager.prune_stalled_workers(stall_seconds)
    return [j for j in retried if j is not None]


async def _watch_stalled(app: App, stall_seconds: float) -> None:
    """`retry_stalled` at once, then every third of `stall_seconds`, until cancelled."""
    while True:
        await retry_stalled(app, stall_seconds)
        await asyncio.sleep(stall_seconds / 3)


def run_worker(config: Config, concurrency: int | None = None, *, wait: bool = True) -> None:
    """`aggregator worker`: run jobs, `concurrency` at once (default [workers] concurrency),
    until SIGTERM or Ctrl-C (the jobs running finish first); with `wait=False`, until the queue
    is empty (for tests and one-off catch-ups). Also retries the jobs of stalled workers.

    :raises UsageError: [workers] distributed is off."""
    _require_distributed(config, "aggregator worker")
    # workers never change the schema: `run` (or `db upgrade`) does, under the writers' lock
    engine = open_database(config.database_url, upgrade=False)
    try:
        ensure_schema(engine)
        with _queue_errors(config):
            asyncio.run(_work(make_app(config, engine), config, concurrency, wait))
    finally:
        engine.dispose()


async def _work(app: App, config: Config, concurrency: int | None, wait: bool) -> None:
    stall = config.workers.stall_seconds
    async with app.open_async():
        await retry_stalled(app, stall)  # what dead workers left, before taking new jobs
        watch = asyncio.create_task(_watch_stalled(app, stall))
        try:
            await app.run_worker_async(
                queues=[QUEUE], name=f"worker {os.getpid()}@{socket.gethostname()}",
                concurrency=concurrency or config.workers.concurrency, wait=wait,
                update_heartbeat_interval=stall / 3, stalled_worker_timeout=stall,
                install_signal_handlers=wait, listen_notify=wait,
            )  # fmt: skip
        finally:
            watch.cancel()
            with suppress(asyncio.CancelledError):
                await watch
