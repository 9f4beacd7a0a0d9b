"""The run log read back: each source's health, gaps, runs a killed process left behind, and the
`status` report (a dict for --json, lines for people). Never prints."""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from aggregator.config import Config, SourceConfig
from storage.db import writer
from storage.models import CollectionRun, SourceOutcome
from storage.queries import as_utc, post_count, recent_runs, storage_errors, utcnow

__all__ = [
    "REACH_BACK_DAYS",
    "SourceHealth",
    "format_status",
    "gap_warnings",
    "recover_interrupted",
    "source_health",
    "status_report",
]

log = logging.getLogger(__name__)
RUNS = CollectionRun.__table__  # type: ignore[attr-defined]
OUTCOMES = SourceOutcome.__table__  # type: ignore[attr-defined]
# How far back a source can still fetch; a longer pause than this loses posts (X recent search: 7 days).
REACH_BACK_DAYS = {"x": 7}
NOT_OK = ("failed", "interrupted", "missed")


@dataclass
class SourceHealth:
    name: str
    type: str
    enabled: bool
    last_success: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    failures_in_a_row: int = 0
    nights_since_new_posts: int | None = None
    warnings: list[str] = field(default_factory=list)  # the latest outcome's gaps and warnings


def _latest(engine: Engine, name: str, *where: Any) -> Any:
    stmt = select(OUTCOMES).where(OUTCOMES.c.source == name, *where)
    with engine.connect() as conn:
        return conn.execute(stmt.order_by(OUTCOMES.c.id.desc()).limit(1)).first()


def source_health(
    engine: Engine, config: Config, now: datetime | None = None
) -> list[SourceHealth]:
    """Every configured source: last success and error, failures in a row, nights since new posts."""
    now = now or utcnow()
    today = now.astimezone(config.event.timezone).date()
    out = []
    for source in config.sources:
        h = SourceHealth(source.name, source.type, source.enabled)
        ok = _latest(engine, source.name, OUTCOMES.c.status == "ok")
        failed = _latest(engine, source.name, OUTCOMES.c.status == "failed")
        fresh = _latest(engine, source.name, OUTCOMES.c.new_posts > 0)
        latest = _latest(engine, source.name)
        h.last_success = as_utc(ok.finished_at) if ok else None
        if failed:
            h.last_error, h.last_error_at = failed.error, as_utc(failed.finished_at)
        with engine.connect() as conn:
            h.failures_in_a_row = conn.execute(
                select(func.count()).where(
                    OUTCOMES.c.source == source.name,
                    OUTCOMES.c.status == "failed",
                    OUTCOMES.c.id > (ok.id if ok else 0),
                )
            ).scalar_one()
        if fresh:
            seen = as_utc(fresh.finished_at) or now
            h.nights_since_new_posts = (today - seen.astimezone(config.event.timezone).date()).days
        h.warnings = list(latest.warnings or []) if latest else []
        out.append(h)
    return out


def gap_warnings(
    engine: Engine, source: SourceConfig, cursor: Any, now: datetime | None = None
) -> list[str]:
    """Gaps to record before collecting: a pause longer than the source can reach back, a lost cursor."""
    now = now or utcnow()
    ok = _latest(engine, source.name, OUTCOMES.c.status == "ok")
    if ok is None:
        return []
    gaps = []
    reach = source.option("reach_back_days", REACH_BACK_DAYS.get(source.type))
    last = as_utc(ok.finished_at) or now
    if isinstance(reach, int | float) and now - last > timedelta(days=reach):
        gaps.append(
            f"gap: the last successful collection was {(now - last).days} days ago, but a "
            f"{source.type} source reaches back only {reach:g} days: posts from "
            f"{last:%Y-%m-%d} to {now - timedelta(days=reach):%Y-%m-%d} may be missing"
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
    return as_utc(value).isoformat() if value else None  # type: ignore[union-attr]


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


def status_report(
    engine: Engine, config: Config, runs: int = 5, running_pid: int | None = None
) -> dict[str, Any]:
    """What `status --json` prints (shape in docs/operations.md)."""
    history = recent_runs(engine, runs)
    health = [
        {**asdict(h), "last_success": _iso(h.last_success), "last_error_at": _iso(h.last_error_at)}
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
        "running_pid": running_pid,
        "ok": not runs_out or runs_out[0]["status"] not in NOT_OK,
        "runs": runs_out,
        "sources": health,
    }


def _local(value: str | None, config: Config) -> str:
    if not value:
        return "never"
    when = datetime.fromisoformat(value).astimezone(config.event.timezone)
    return when.strftime("%Y-%m-%d %H:%M %Z")


def _source_line(s: dict[str, Any], config: Config) -> str:
    if s["failures_in_a_row"]:
        state = (
            f"FAILING {s['failures_in_a_row']} run(s) in a row; last error "
            f"{_local(s['last_error_at'], config)}: {s['last_error']}"
        )
    else:
        state = "ok" if s["last_success"] else "not collected yet"
    nights = s["nights_since_new_posts"]
    fresh = (
        "no new posts yet"
        if nights is None
        else "new posts today"
        if nights == 0
        else f"no new posts for {nights} night(s)"
    )
    enabled = "" if s["enabled"] else " (disabled)"
    return (
        f"  {s['name']} ({s['type']}){enabled}: {state}; last success "
        f"{_local(s['last_success'], config)}; {fresh}"
    )


def format_status(report: dict[str, Any], config: Config) -> list[str]:
    """The report as lines for people: recent runs with what each source did, then each source's health."""
    lines = [f"{report['event']}: {report['posts']} posts stored in {report['database']}"]
    if report["running_pid"]:
        lines.append(f"A collection is running now (pid {report['running_pid']}).")
    if not report["runs"]:
        return [*lines, "No runs yet: try `aggregator run`."]
    for run in report["runs"]:
        note = f" ({run['message']})" if run["message"] and run["status"] != "ok" else ""
        lines.append(
            f"run {run['id']} ({run['command']}) {_local(run['started_at'], config)}: "
            f"{run['status']}{note}"
        )
        for o in run["sources"]:
            detail = (
                f"error: {o['error']}"
                if o["error"]
                else f"{o['new_posts']} new, {o['pages']} pages, {o['waits']} waits"
            )
            lines.append(f"  {o['source']}: {o['status']}, {detail}")
            lines += [f"    ! {w}" for w in o["warnings"] or [] if str(w).startswith("gap")]
    lines.append("Sources:")
    lines += [_source_line(s, config) for s in report["sources"]]
    return lines
