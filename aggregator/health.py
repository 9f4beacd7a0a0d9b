"""The run log read back: each source's health, gaps, runs a killed process left behind, and the
`status` report (a dict for --json, lines for people). Never prints."""

from __future__ import annotations

import logging
import os
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import Engine

from aggregator.clock import EventClock, iso_utc
from aggregator.config import Config, SourceConfig
from aggregator.logs import printable
from aggregator.media import archive_counts
from storage.db import writer
from storage.models import CollectionRun, Sighting, SourceOutcome
from storage.queries import (
    as_utc,
    post_count,
    quarantine_count,
    recent_runs,
    storage_errors,
    utcnow,
)
from storage.runlog import SourceHealth, latest_outcome, source_health

__all__ = [
    "REACH_BACK_DAYS",
    "SourceHealth",
    "format_status",
    "gap_warnings",
    "recover_interrupted",
    "source_health",
    "status_report",
    "workers_report",
]

log = logging.getLogger(__name__)
RUNS = CollectionRun.__table__  # type: ignore[attr-defined]
OUTCOMES = SourceOutcome.__table__  # type: ignore[attr-defined]
SIGHTINGS = Sighting.__table__  # type: ignore[attr-defined]
# How far back a source can still fetch; a longer pause than this loses posts (X recent search: 7 days).
REACH_BACK_DAYS = {"x": 7}
NOT_OK = ("failed", "interrupted", "missed")


def gap_warnings(
    engine: Engine, source: SourceConfig, cursor: Any, clock: EventClock,
    now: datetime | None = None,
) -> list[str]:  # fmt: skip
    """Gaps to record before collecting: a pause longer than the source can reach back, a lost
    cursor. The days a gap may have lost are the event's (`clock`)."""
    now = now or utcnow()
    ok = latest_outcome(engine, source.name, OUTCOMES.c.status == "ok")
    if ok is None:
        return []
    gaps = []
    reach = source.reach_back_days or REACH_BACK_DAYS.get(source.type)
    last = as_utc(ok.finished_at) or now
    if reach is not None and now - last > timedelta(days=reach):
        reached = now - timedelta(days=reach)
        gaps.append(
            f"gap: the last successful collection was {(now - last).days} days ago, but a "
            f"{source.type} source reaches back only {reach:g} days: posts from "
            f"{clock.day_of(last)} to {clock.day_of(reached)} may be missing"
        )
    if cursor is None and ok.cursor:
        gaps.append("gap: the saved cursor is gone (reset); collecting again from the start")
    return gaps


def recover_interrupted(engine: Engine) -> list[int]:
    """Mark runs left 'running' by a process that has ended as interrupted; returns their ids.

    Call it holding the writers' lock: no other run can be going then, so a row still 'running'
    was left by a killed process (a live pid on it is a reused one), unless it is this process's.
    """
    with engine.connect() as conn:
        rows = conn.execute(select(RUNS.c.id, RUNS.c.pid).where(RUNS.c.status == "running")).all()
    stale = [r for r in rows if r.pid != os.getpid()]
    if not stale:
        return []
    with storage_errors("could not update the run log"), writer(engine).begin() as conn:
        for run in stale:
            message = (
                f"interrupted: its process (pid {run.pid}) ended before the run finished "
                "(killed, or the machine went down); the next run resumed from the saved cursors"
            )
            conn.execute(
                RUNS.update()
                .where(RUNS.c.id == run.id, RUNS.c.status == "running")
                .values(status="interrupted", finished_at=utcnow(), message=message)
            )
            log.warning(
                "run %d was interrupted (its process, pid %s, is gone); resuming from "
                "the saved cursors",
                run.id,
                run.pid,
            )
    return [r.id for r in stale]


def _iso(value: datetime | None) -> str | None:
    """A time as `status --json` writes it: UTC to the millisecond, so runs a moment apart keep
    their order."""
    return iso_utc(value, "milliseconds")


def _run(run: Any, outcomes: list[Any]) -> dict[str, Any]:
    keys = (
        "source",
        "status",
        "new_posts",
        "updated_posts",
        "pages",
        "waits",
        "rejected",
        "error",
        "warnings",
        "cursor",
    )
    return {
        "id": run.id,
        "command": run.command,
        "status": run.status,
        "pid": run.pid,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "message": run.message,
        "sources": [{k: getattr(o, k) for k in keys} for o in outcomes],
    }


FAILED_JOBS_SHOWN = 10
WORKER_PROCESSES = text(
    "SELECT DISTINCT substr(application_name, 19) AS process FROM pg_stat_activity "
    "WHERE application_name LIKE 'aggregator-worker:%' AND datname = current_database() "
    "ORDER BY process"
)
JOBS = text(
    "SELECT id, status::text AS status, args, attempts, worker_id FROM procrastinate_jobs "
    "WHERE status IN ('todo', 'doing') OR id IN (SELECT id FROM procrastinate_jobs "
    "WHERE status = 'failed' ORDER BY id DESC LIMIT :failed) ORDER BY id"
)


def workers_report(engine: Engine, stall_seconds: float) -> dict[str, Any]:
    """The job queue of distributed workers (PostgreSQL; aggregator.distributed), as `status`
    shows it: each worker with the seconds since its heartbeat (`stalled` past `stall_seconds`:
    its jobs go to another worker), the worker processes connected now (pid@host), the jobs
    queued, those running, and the latest failed ones."""
    with engine.connect() as conn:
        if conn.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is None:
            return {"workers": [], "processes": [], "queued": 0, "running": [], "failed": []}
        beats = conn.execute(text(
            "SELECT id, extract(epoch FROM now() - last_heartbeat) AS age "
            "FROM procrastinate_workers ORDER BY id"
        )).all()  # fmt: skip
        processes = [row.process for row in conn.execute(WORKER_PROCESSES)]
        jobs = conn.execute(JOBS, {"failed": FAILED_JOBS_SHOWN}).all()

    def job(row: Any) -> dict[str, Any]:
        return {"id": row.id, "source": row.args.get("source"), "run": row.args.get("run_id"),
                "worker": row.worker_id, "attempts": row.attempts}  # fmt: skip

    return {
        "workers": [
            {
                "id": w.id,
                "seconds_since_heartbeat": round(float(w.age), 1),
                "stalled": float(w.age) > stall_seconds,
            }
            for w in beats
        ],
        "processes": processes,
        "queued": sum(j.status == "todo" for j in jobs),
        "running": [job(j) for j in jobs if j.status == "doing"],
        "failed": [job(j) for j in reversed(jobs) if j.status == "failed"],
    }


def status_report(
    engine: Engine, config: Config, runs: int = 5, running_pid: int | None = None,
    running_host: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """What `status --json` prints (shape in docs/operations.md). `running_pid` (on
    `running_host`, for PostgreSQL's lock) holds the writers' lock now; with [workers]
    distributed, `workers` is the job queue (`workers_report`)."""
    history = recent_runs(engine, runs)
    times = ("last_success", "last_progress", "last_error_at")
    health = [
        {**asdict(h), **{k: _iso(getattr(h, k)) for k in times}}
        for h in source_health(engine, config)
    ]
    runs_out = [_run(run, outcomes) for run, outcomes in history]
    for run in runs_out:
        if run["status"] == "running" and running_pid is None:  # nothing holds the lock
            run["status"] = "interrupted"
            run["message"] = (
                f"its process (pid {run['pid']}) ended before the run finished; "
                "the next run resumes from the saved cursors"
            )
    return {
        "event": config.event.name,
        "database": engine.url.render_as_string(hide_password=True),
        "posts": post_count(engine),
        "quarantined": quarantine_count(engine),
        "media": archive_counts(config),
        "running_pid": running_pid,
        "running_host": running_host,
        "workers": (
            workers_report(engine, config.workers.stall_seconds)
            if config.workers.distributed
            else None
        ),
        "ok": not runs_out or runs_out[0]["status"] not in NOT_OK,
        "runs": runs_out,
        "sources": health,
    }


def _local(value: str | None, clock: EventClock) -> str:
    """A time from the report (UTC, as `status --json` writes it) as the event's clock shows it."""
    return clock.stamp(datetime.fromisoformat(value) if value else None)


def _source_line(s: dict[str, Any], clock: EventClock) -> str:
    if s["failures_in_a_row"]:
        state = (
            f"FAILING {s['failures_in_a_row']} run(s) in a row; last error "
            f"{_local(s['last_error_at'], clock)}: {s['last_error']}"
        )
    elif s["last_progress"]:
        state = "interrupted"
    else:
        state = "ok" if s["last_success"] else "not collected yet"
    if s["last_success"] or not s["last_progress"]:
        worked = f"last success {_local(s['last_success'], clock)}"
    else:  # posts were stored: never "never"
        worked = "no complete run yet"
    if s["last_progress"]:
        worked += f"; last progress {_local(s['last_progress'], clock)} ({s['progress']})"
    nights = s["nights_since_new_posts"]
    fresh = (
        "no new posts yet"
        if nights is None
        else "new posts today"
        if nights == 0
        else f"no new posts for {nights} night(s)"
    )
    enabled = "" if s["enabled"] else " (disabled)"
    return f"  {s['name']} ({s['type']}){enabled}: {state}; {worked}; {fresh}"


def _warnings(outcome: dict[str, Any], latest: bool) -> list[str]:
    """An outcome's warnings, one line each: every one for a source's latest outcome (gaps, a
    feed date that cannot be read, X media not found, withheld authors, records skipped…), only
    its gaps for an older one (the days they name may be missing for good)."""
    return [
        f"    ! {printable(w, 500)}"
        for w in outcome["warnings"] or []
        if latest or str(w).startswith("gap")
    ]


def _worker_lines(queue: dict[str, Any]) -> list[str]:
    """The job queue for people: workers, then jobs."""
    beats = [
        f"{w['seconds_since_heartbeat']:g} s ago{' (STALLED)' if w['stalled'] else ''}"
        for w in queue["workers"]
    ]
    workers = f"Workers: {len(beats)}" + (f", heartbeats {', '.join(beats)}" if beats else
                                          " (start `aggregator worker`: docs/scaling.md)")  # fmt: skip
    if queue["processes"]:
        workers += f"; connected: {', '.join(queue['processes'])}"
    running = ", ".join(f"{j['source']} (worker {j['worker']})" for j in queue["running"])
    jobs = f"Jobs: {queue['queued']} queued, {len(queue['running'])} running"
    jobs += f": {running}" if running else ""
    lines = [workers, jobs]
    if queue["failed"]:
        failed = ", ".join(f"{j['source']} (run {j['run']}, {j['attempts']} attempts)"
                           for j in queue["failed"])  # fmt: skip
        lines.append(f"Failed jobs (latest): {failed}; see the workers' logs")
    return lines


def format_status(report: dict[str, Any], config: Config) -> list[str]:
    """The report as lines for people: recent runs with what each source did and its warnings,
    then each source's health; times in the event's zone."""
    clock = EventClock(config.event.timezone)
    lines = [f"{report['event']}: {report['posts']} posts stored in {report['database']}"]
    if report["quarantined"]:
        lines.append(
            f"{report['quarantined']} record(s) quarantined: they could not become posts and are "
            "kept as received in the database's `quarantine` table (columns source, location, "
            "reason, raw)"
        )
    if media := report.get("media"):
        given_up = f"; {media['failed']} image(s) given up on" if media["failed"] else ""
        lines.append(f"Media archive: {media['images']} thumbnail(s), "
                     f"{media['bytes'] / 1e6:.1f} MB, in {media['folder']}{given_up}")  # fmt: skip
    if report["running_pid"]:
        host = f" on {report['running_host']}" if report.get("running_host") else ""
        lines.append(f"A collection is running now (pid {report['running_pid']}{host}).")
    if report.get("workers") is not None:
        lines += _worker_lines(report["workers"])
    if not report["runs"]:
        return [*lines, "No runs yet: try `aggregator run`."]
    shown: set[str] = set()  # sources whose latest outcome is listed (runs come newest first)
    for run in report["runs"]:
        note = f" ({run['message']})" if run["message"] and run["status"] != "ok" else ""
        lines.append(
            f"run {run['id']} ({run['command']}) {_local(run['started_at'], clock)}: "
            f"{run['status']}{note}"
        )
        for o in run["sources"]:
            detail = (
                f"error: {o['error']}"
                if o["error"]
                else f"{o['new_posts']} new, {o['pages']} pages, {o['waits']} waits"
            )
            lines.append(f"  {o['source']}: {o['status']}, {detail}")
            lines += _warnings(o, latest=o["source"] not in shown)
            shown.add(o["source"])
    lines.append("Sources:")
    lines += [_source_line(s, clock) for s in report["sources"]]
    return lines
