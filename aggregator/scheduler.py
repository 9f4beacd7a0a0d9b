"""The only module that imports APScheduler: cron validation, a DST-safe trigger, and the foreground
scheduler behind `aggregator schedule` (catch-up on start, one run at a time, a clean stop).

Missed runs: APScheduler 3 forgets fire times that passed while the process was down, so the last
fire time dealt with is kept in the database (`schedulestate`). On start, the latest fire time
within the misfire grace is run once (coalesced); older ones are logged and recorded as missed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_MISSED, EVENT_SCHEDULER_STARTED
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select
from sqlalchemy.engine import Engine

from aggregator.clock import EventClock, as_utc, utcnow
from aggregator.errors import AggregatorError
from aggregator.lock import LockHeld
from storage.db import StorageError, writer
from storage.models import ScheduleState
from storage.queries import finish_run, start_run, storage_errors

__all__ = [
    "JOB_ID",
    "NightlyScheduler",
    "NightlyTrigger",
    "StartPlan",
    "cron_problem",
    "cron_trigger",
    "fire_times",
    "plan_start",
]

log = logging.getLogger(__name__)
JOB_ID = "nightly"
TICK = timedelta(microseconds=1)
PROBE_STEP = timedelta(minutes=1)
MAX_PROBES = 24 * 60
FIRES_WITHIN = timedelta(days=5 * 365)  # a cron line that does not fire by then never will
MAX_FIRES = 10_000  # enough to count a long outage of a frequent cron; beyond it we say "at least"
STATE = ScheduleState.__table__  # type: ignore[attr-defined]
Clock = Callable[[], datetime]


def _plus(when: datetime, delta: timedelta) -> datetime:
    """Elapsed-time arithmetic: aware datetimes add wall-clock time, wrong across a clock change."""
    return when.astimezone(UTC) + delta


def _wall(when: datetime, tz: Any) -> datetime:
    return when.astimezone(tz).replace(tzinfo=None)


class NightlyTrigger(CronTrigger):
    """A CronTrigger that never fires twice at one wall-clock time: when the clocks go back, 01:30
    happens twice; a plain CronTrigger fires at both, and from inside the repeated hour it can
    even answer a time already past."""

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        fire = super().get_next_fire_time(previous_fire_time, now)
        probe = now
        for _ in range(MAX_PROBES):
            if fire is None or self._fine(fire, previous_fire_time, now):
                return fire
            # Search again from a minute later (not from the previous fire, which the plain
            # trigger would start from), until out of the repeated hour.
            probe = _plus(max(probe, fire), PROBE_STEP)
            fire = super().get_next_fire_time(None, probe)
        return None

    def _fine(self, fire: datetime, previous: datetime | None, now: datetime) -> bool:
        if previous is None:
            return fire >= now
        return fire > previous and _wall(fire, self.timezone) > _wall(previous, self.timezone)


DAY_NAMES = (
    "sun",
    "mon",
    "tue",
    "wed",
    "thu",
    "fri",
    "sat",
)  # cron's numbering: 0 (and 7) = Sunday


def _cron_weekdays(field: str) -> str:
    """A crontab weekday field as day names. APScheduler 3 counts weekdays from Monday = 0 where
    cron counts from Sunday = 0 (its issue #286), so '1' must reach it as 'mon', never as a number.
    Ranges and steps ('1-5', '*/2', 'sun-tue') are spelled out day by day."""
    if field in ("*", "?"):
        return "*"

    def day(written: str) -> int:  # 7 stays 7 so that '5-7' runs Friday to Sunday
        written = written.strip().lower()
        if written in DAY_NAMES:
            return DAY_NAMES.index(written)
        if not written.isdigit() or int(written) > 7:
            raise ValueError(f"weekday {written!r} is not 0-7 or a day name")
        return int(written)

    days: list[str] = []
    for part in field.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise ValueError(f"weekday step {step_text!r} is not a positive number")
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            first, last = (day(t) for t in span.split("-", 1))
        else:
            first = last = day(span)
            if step:
                last = 6
        if first > last:
            raise ValueError(f"weekday range {span!r} runs backwards")
        days += [DAY_NAMES[d % 7] for d in range(first, last + 1, step or 1)]
    return ",".join(dict.fromkeys(days))


def cron_trigger(expr: str, timezone: ZoneInfo) -> NightlyTrigger:
    """A five-field crontab expression in the event's time zone, weekdays counted as cron does."""
    fields = expr.split()
    if len(fields) == 5:
        fields[4] = _cron_weekdays(fields[4])
    return NightlyTrigger.from_crontab(" ".join(fields), timezone=timezone)


def cron_problem(expr: str, timezone: ZoneInfo, now: datetime | None = None) -> str | None:
    """None if `expr` is a valid five-field cron line that fires within `FIRES_WITHIN` of `now`,
    else what is wrong with it (a line like '0 2 31 2 *' parses but would idle forever)."""
    if len(expr.split()) != 5:
        return f"{expr!r} must have five fields: minute hour day month weekday (e.g. '0 2 * * *')"
    try:
        trigger = cron_trigger(expr, timezone)
    except ValueError as exc:
        return f"{expr!r} is not a valid cron line ({exc})"
    now = now or utcnow()
    fire = trigger.get_next_fire_time(None, now)
    if fire is None or fire > _plus(now, FIRES_WITHIN):
        return (
            f"{expr!r} never fires (not once in the next {FIRES_WITHIN.days // 365} years): "
            "check its day and month fields, e.g. '0 2 * * *' for every night at 02:00"
        )
    return None


def fire_times(
    trigger: CronTrigger, after: datetime, until: datetime, limit: int = MAX_FIRES
) -> list[datetime]:
    """The trigger's fire times in (after, until], oldest first, at most `limit` of them."""
    out: list[datetime] = []
    fire = trigger.get_next_fire_time(None, _plus(after, TICK))
    while fire is not None and fire <= until and len(out) < limit:
        out.append(fire)
        fire = trigger.get_next_fire_time(fire, _plus(fire, TICK))
    return out


@dataclass(frozen=True)
class StartPlan:
    """What to do on start: run once for `catch_up`, and log the `missed` fire times."""

    catch_up: datetime | None = None
    missed: tuple[datetime, ...] = ()


def plan_start(
    trigger: CronTrigger, last: datetime | None, now: datetime, grace: timedelta
) -> StartPlan:
    """Fire times since `last` (the last one dealt with): the latest within `grace` of `now` is
    caught up (once, however many fell in the grace), the ones before it were missed."""
    if last is None:  # first start ever: nothing was due yet
        return StartPlan()
    cut = max(last, _plus(now, -grace - TICK))
    recent = fire_times(trigger, cut, now)
    missed = fire_times(trigger, last, cut) if cut > last else []
    return StartPlan(catch_up=recent[-1] if recent else None, missed=tuple(missed))


def get_last_fire(engine: Engine, job: str = JOB_ID) -> datetime | None:
    """The last fire time the scheduler dealt with (ran, skipped or logged as missed)."""
    with engine.connect() as conn:
        value = conn.execute(select(STATE.c.last_fire).where(STATE.c.job == job)).scalar()
    return as_utc(value)


def set_last_fire(engine: Engine, when: datetime, job: str = JOB_ID) -> None:
    values = {"job": job, "last_fire": when.astimezone(UTC), "updated_at": utcnow()}
    with storage_errors("could not save the scheduler's state"), writer(engine).begin() as conn:
        if conn.execute(select(STATE.c.job).where(STATE.c.job == job)).first():
            conn.execute(STATE.update().where(STATE.c.job == job).values(**values))
        else:
            conn.execute(STATE.insert().values(**values))


class NightlyScheduler:
    """`aggregator schedule`: runs `job` on [schedule] cron in the event's time zone, in the
    foreground, one run at a time; `stop` (SIGTERM/Ctrl-C) ends it after the current page."""

    def __init__(
        self,
        engine: Engine,
        config: Any,
        job: Callable[[], object],
        stop: Callable[[], bool],
        clock: Clock | None = None,
    ) -> None:
        self.engine, self.job, self.stop = engine, job, stop
        self.tz = config.event.timezone
        self.event_clock = EventClock(self.tz)  # how the log says when a run was due
        self.trigger = cron_trigger(config.schedule_cron, self.tz)
        self.grace = timedelta(minutes=getattr(config, "misfire_grace_minutes", 60))
        self.clock = clock or utcnow
        self._busy = threading.Lock()
        self.scheduler = BlockingScheduler(timezone=self.tz)
        self.scheduler.add_job(
            self.fire,
            self.trigger,
            id=JOB_ID,
            name="nightly collect, tag and report",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=max(1, int(self.grace.total_seconds())),
        )
        self.scheduler.add_listener(self._missed_while_up, EVENT_JOB_MISSED)
        self.started = threading.Event()  # set once the schedule loop is running
        self.scheduler.add_listener(lambda _: self.started.set(), EVENT_SCHEDULER_STARTED)

    def catch_up(self) -> StartPlan:
        """On start: record fire times missed beyond the grace; run once for one within it."""
        now = self.clock()
        last = get_last_fire(self.engine)
        plan = plan_start(self.trigger, last, now, self.grace)
        if last is None:
            set_last_fire(self.engine, now)
        if plan.missed:
            self._record_missed(plan.missed, "the scheduler was not running")
            set_last_fire(self.engine, plan.missed[-1])
        if plan.catch_up is not None:
            log.warning(
                "catching up the run due at %s (missed while the scheduler was down)",
                self.event_clock.stamp(plan.catch_up),
            )
            self.fire(plan.catch_up)
        return plan

    def fire(self, due: datetime | None = None) -> None:
        """One scheduled run. Errors are logged, never raised: the scheduler keeps going."""
        due = due or self._due()
        at = self.event_clock.stamp(due)
        with self._busy:
            last = get_last_fire(self.engine)
            if last is not None and _wall(due, self.tz) <= _wall(last, self.tz):
                log.info("the run due at %s already happened; skipped", at)
                return
            try:
                self.job()
            except LockHeld as exc:  # a manual run is going: never two at once
                log.warning("skipped the run due at %s: %s", at, exc)
            except (AggregatorError, OSError) as exc:  # known failures: one line
                log.error("the scheduled run due at %s failed: %s", at, exc)
            except Exception:
                log.exception("the scheduled run due at %s failed", at)
            finally:
                self._remember(due)

    def run(self) -> None:
        """Catch up, then block on the schedule until stopped; returns once the job has stopped."""
        self.catch_up()
        if not self.stop():
            log.info("waiting for the next run, at %s", self.next_run())
            self.scheduler.start()
        with self._busy:  # a job still stopping after its current page finishes first
            pass

    def next_run(self) -> str:
        """When the schedule fires next, in the event's time zone."""
        return self.event_clock.stamp(self.trigger.get_next_fire_time(None, self.clock()))

    def shutdown(self) -> None:
        """Leave the schedule loop (call from a signal handler after setting the stop flag)."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def _due(self) -> datetime:
        now = self.clock()
        recent = fire_times(self.trigger, _plus(now, -self.grace - TICK), now)
        return recent[-1] if recent else now

    def _remember(self, due: datetime) -> None:
        try:
            set_last_fire(self.engine, due)
        except StorageError as exc:
            log.error("%s", exc)

    def _missed_while_up(self, event: Any) -> None:
        self._record_missed((event.scheduled_run_time,), "it was late by more than the grace")

    def _record_missed(self, missed: tuple[datetime, ...], why: str) -> None:
        count = f"at least {len(missed)}" if len(missed) >= MAX_FIRES else str(len(missed))
        first, latest = self.event_clock.stamp(missed[0]), self.event_clock.stamp(missed[-1])
        span = first if len(missed) == 1 else f"{first} to {latest}"
        message = (
            f"missed {count} scheduled run(s) ({span}): {why}; the grace is "
            f"{self.grace.total_seconds() / 60:g} minutes ([schedule] misfire_grace_minutes)"
        )
        log.warning("%s", message)
        try:
            run_id = start_run(self.engine, "schedule", status="missed", started_at=missed[-1])
            finish_run(self.engine, run_id, "missed", message)
        except StorageError as exc:
            log.error("%s", exc)
