"""Each source's health read back from the run log: its last success, the progress and errors
since, failures in a row, nights since it last found a new post. A query over storage only: the
status report (aggregator.health), the alerts and the story's sources box all read it from here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.engine import Engine

from aggregator.clock import EventClock, as_utc, utcnow
from aggregator.settings import Config
from storage.models import Sighting, SourceOutcome

__all__ = ["SourceHealth", "latest_outcome", "source_health"]

OUTCOMES = SourceOutcome.__table__  # type: ignore[attr-defined]
SIGHTINGS = Sighting.__table__  # type: ignore[attr-defined]


@dataclass
class SourceHealth:
    name: str
    type: str
    enabled: bool
    last_success: datetime | None = None
    # posts stored since the last success by a run that did not finish well, and how it ended
    last_progress: datetime | None = None
    progress: str | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    failures_in_a_row: int = 0
    nights_since_new_posts: int | None = None
    warnings: list[str] = field(default_factory=list)  # the latest outcome's gaps and warnings


def latest_outcome(engine: Engine, name: str, *where: Any) -> Any:
    stmt = select(OUTCOMES).where(OUTCOMES.c.source == name, *where)
    with engine.connect() as conn:
        return conn.execute(stmt.order_by(OUTCOMES.c.id.desc()).limit(1)).first()


def _last_stored(engine: Engine) -> dict[str, datetime]:
    """When each source last stored a post it had not seen before, whether or not its run
    finished (a killed run leaves no outcome, but its pages are saved)."""
    stmt = select(SIGHTINGS.c.source, func.max(SIGHTINGS.c.first_seen)).group_by(SIGHTINGS.c.source)
    with engine.connect() as conn:
        return {source: as_utc(when) for source, when in conn.execute(stmt)}


def _progress(
    engine: Engine, name: str, success: datetime | None, stored: datetime | None
) -> tuple[datetime, str] | None:
    """When the source last stored posts after its last success, and how that run ended."""
    since = success or datetime.min.replace(tzinfo=UTC)
    saved = or_(OUTCOMES.c.pages > 0, OUTCOMES.c.new_posts > 0, OUTCOMES.c.updated_posts > 0)
    partial = latest_outcome(engine, name, OUTCOMES.c.status != "ok", saved)
    found = []
    if partial is not None and (ended := as_utc(partial.finished_at)) and ended > since:
        found.append((ended, f"{partial.status} after {partial.pages} pages"))
    if stored is not None and stored > since:
        found.append((stored, "in a run that has not finished"))  # killed, or still going
    return max(found, key=lambda f: f[0]) if found else None


def source_health(
    engine: Engine, config: Config, now: datetime | None = None
) -> list[SourceHealth]:
    """Every configured source: last success, later progress and last error, failures in a row,
    nights since new posts."""
    clock = EventClock(config.event.timezone)
    today = clock.day_of(now or utcnow())
    stored = _last_stored(engine)
    out = []
    for source in config.sources:
        h = SourceHealth(source.name, source.type, source.enabled)
        ok = latest_outcome(engine, source.name, OUTCOMES.c.status == "ok")
        failed = latest_outcome(engine, source.name, OUTCOMES.c.status == "failed")
        fresh = latest_outcome(engine, source.name, OUTCOMES.c.new_posts > 0)
        latest = latest_outcome(engine, source.name)
        h.last_success = as_utc(ok.finished_at) if ok else None
        if progress := _progress(engine, source.name, h.last_success, stored.get(source.name)):
            h.last_progress, h.progress = progress
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
        seen = [
            t for t in (as_utc(fresh.finished_at) if fresh else None, stored.get(source.name)) if t
        ]
        if seen:
            h.nights_since_new_posts = (today - clock.day_of(max(seen))).days
        h.warnings = list(latest.warnings or []) if latest else []
        out.append(h)
    return out
