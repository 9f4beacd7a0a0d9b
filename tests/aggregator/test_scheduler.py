"""`aggregator schedule` driven by a fake clock: catch-up within the grace, missed runs, DST, a
failing job, one run at a time (reliability cases 22, 23 and 25). The SIGTERM stop of a real
`aggregator schedule` process is in test_resume.py."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.events import EVENT_JOB_EXECUTED

from aggregator.lock import RunLock, StopFlag, lock_path
from aggregator.pipeline import run_nightly
from aggregator.scheduler import (
    JOB_ID,
    NightlyScheduler,
    StartPlan,
    cron_problem,
    cron_trigger,
    fire_times,
    get_last_fire,
    plan_start,
)
from storage.queries import recent_runs
from tests.helpers import invoke

LONDON = ZoneInfo("Europe/London")
GRACE = timedelta(minutes=60)
WAIT = 30  # seconds: a guard against a hung test, never an assertion


def at(day: int, hour: int, minute: int = 0, month: int = 5) -> datetime:
    return datetime(2024, month, day, hour, minute, tzinfo=LONDON)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.mark.parametrize(
    "cron", ["0 2 * * *", "30 1 * * *", "0 1 * * *", "59 0 * * *", "15 3 * * *"]
)
@pytest.mark.parametrize(
    "start",
    [
        datetime(2024, 3, 28, 12),
        datetime(2024, 10, 25, 12),
        datetime(2025, 3, 28, 12),
        datetime(2025, 10, 24, 12),
    ],
)
def test_case_25_exactly_one_run_per_night_across_the_clock_changes(cron, start):
    first = start.replace(tzinfo=LONDON)
    fires = fire_times(cron_trigger(cron, LONDON), first, first + timedelta(days=5))
    nights = [f.astimezone(LONDON).date() for f in fires]
    assert nights == [start.date() + timedelta(days=n) for n in range(1, 6)]


def test_case_25_a_frequent_cron_fires_once_per_wall_clock_time_when_the_clocks_go_back():
    day = datetime(2024, 10, 27, tzinfo=LONDON)
    fires = fire_times(
        cron_trigger("*/30 * * * *", LONDON),
        day - timedelta(minutes=1),
        day.replace(hour=23, minute=59),
    )
    walls = [f.astimezone(LONDON).replace(tzinfo=None) for f in fires]
    assert walls == sorted(set(walls))
    assert walls[0] == day.replace(tzinfo=None) and len(walls) == 48


def test_case_35_bad_cron_lines_are_named():
    assert cron_problem("0 2 * *", LONDON) and "five fields" in cron_problem("0 2 * *", LONDON)
    assert "not a valid cron line" in cron_problem("0 25 * * *", LONDON)
    assert cron_problem("0 2 * * *", LONDON) is None


@pytest.mark.parametrize(
    ("now", "plan"),
    [
        (at(2, 1), StartPlan()),  # not due yet
        (at(2, 2, 30), StartPlan(catch_up=at(2, 2))),  # back within the grace: catch up once
        (at(2, 3, 0), StartPlan(catch_up=at(2, 2))),  # exactly at the end of the grace
        (at(2, 3, 30), StartPlan(missed=(at(2, 2),))),  # back too late: missed
        (at(4, 2, 20), StartPlan(catch_up=at(4, 2), missed=(at(2, 2), at(3, 2)))),
    ],
)
def test_case_22_start_plan_after_being_down(now, plan):
    assert plan_start(cron_trigger("0 2 * * *", LONDON), at(1, 2), now, GRACE) == plan


def test_a_first_start_ever_catches_nothing_up():
    assert plan_start(cron_trigger("0 2 * * *", LONDON), None, at(9, 2, 5), GRACE) == StartPlan()


def scheduler(engine, config, job, clock, stop=None) -> NightlyScheduler:
    return NightlyScheduler(engine, config, job, stop or StopFlag(), clock)


def test_case_22_back_within_the_grace_runs_exactly_once(engine, config):
    clock, calls = Clock(at(1, 12)), []
    job = lambda: calls.append(clock.now)  # noqa: E731
    assert scheduler(engine, config, job, clock).catch_up() == StartPlan()  # first start
    assert calls == [] and get_last_fire(engine) == at(1, 12)
    clock.now = at(2, 2, 40)  # the 02:00 run was due while it was down
    scheduler(engine, config, job, clock).catch_up()
    assert calls == [at(2, 2, 40)]
    assert get_last_fire(engine) == at(2, 2)
    scheduler(engine, config, job, clock).catch_up()  # restarted again: nothing more to catch up
    assert len(calls) == 1


def test_case_22_down_past_the_grace_logs_and_records_a_missed_run(engine, config, project, caplog):
    clock, calls = Clock(at(1, 12)), []
    scheduler(engine, config, lambda: calls.append(1), clock).catch_up()
    clock.now = at(3, 3, 30)  # down through two nights, back after the grace
    with caplog.at_level(logging.WARNING):
        scheduler(engine, config, lambda: calls.append(1), clock).catch_up()
    assert calls == []
    assert "missed 2 scheduled run(s) (2024-05-02 02:00 BST to 2024-05-03 02:00 BST)" in caplog.text
    ((run, _),) = recent_runs(engine, 5)
    assert (run.command, run.status) == ("schedule", "missed")
    status = invoke(project, "status")
    assert status.exit_code == 1 and f"the latest run ({run.id}) was missed" in status.output
    scheduler(engine, config, lambda: calls.append(1), clock).catch_up()  # logged once only
    assert len(recent_runs(engine, 5)) == 1


def test_case_25_a_failing_job_is_logged_and_the_next_run_still_happens(engine, config, caplog):
    clock, calls = Clock(at(2, 2)), []

    def job() -> None:
        calls.append(clock.now)
        if len(calls) == 1:
            raise RuntimeError("kaboom")

    s = scheduler(engine, config, job, clock)
    with caplog.at_level(logging.ERROR):
        s.fire()
    assert "the scheduled run due at 2024-05-02 02:00 BST failed" in caplog.text
    assert "kaboom" in caplog.text
    clock.now = at(3, 2)
    s.fire()
    assert calls == [at(2, 2), at(3, 2)]


def test_case_23_a_scheduled_run_while_another_holds_the_lock_is_skipped(engine, config, caplog):
    clock = Clock(at(2, 2))
    job = lambda: run_nightly(config, command="schedule", should_stop=StopFlag())  # noqa: E731  (what `schedule` runs)
    with RunLock(lock_path(config)), caplog.at_level(logging.WARNING):
        scheduler(engine, config, job, clock).fire()
    assert (
        "skipped the run due at 2024-05-02 02:00 BST: a collection is already running"
        in caplog.text
    )
    assert recent_runs(engine, 5) == []
    clock.now = at(3, 2)
    scheduler(engine, config, job, clock).fire()  # the same job, lock free: it runs
    assert [r.command for r, _ in recent_runs(engine, 5)] == ["schedule"]


def test_case_25_the_second_fire_at_a_repeated_wall_clock_time_is_skipped(engine, config):
    calls = []
    s = scheduler(engine, config, lambda: calls.append(1), Clock(at(27, 3, month=10)))
    s.fire(datetime(2024, 10, 27, 0, 30, tzinfo=UTC))  # 01:30 BST
    s.fire(datetime(2024, 10, 27, 1, 30, tzinfo=UTC))  # 01:30 GMT, an hour later: same night
    assert calls == [1]


class Seen(logging.Handler):
    """Sets `event` when a record containing `text` is logged (from any thread)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text, self.event = text, threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


def started(s: NightlyScheduler) -> threading.Thread:
    thread = threading.Thread(target=s.run, daemon=True)
    thread.start()
    assert s.started.wait(WAIT)
    s.scheduler.modify_job(JOB_ID, next_run_time=datetime.now(UTC))  # fire now, on a real clock
    return thread


def stopped(s: NightlyScheduler, stop: StopFlag, thread: threading.Thread) -> None:
    stop.set()
    thread.join(WAIT)
    assert not thread.is_alive()


def test_case_25_apscheduler_runs_one_at_a_time_and_survives_job_errors(engine, config):
    job_conf = scheduler(engine, config, lambda: None, Clock(at(1, 12))).scheduler.get_job(JOB_ID)
    assert (job_conf.coalesce, job_conf.max_instances, job_conf.misfire_grace_time) == (
        True,
        1,
        3600,
    )
    times = iter(at(10, 12) + timedelta(hours=h) for h in range(100))
    calls, stop = [], StopFlag()
    ended = [threading.Event(), threading.Event()]  # APScheduler has seen run 1, run 2 end

    def job() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the first run breaks")

    s = scheduler(engine, config, job, lambda: next(times), stop)
    s.scheduler.add_listener(lambda _: ended[len(calls) - 1].set(), EVENT_JOB_EXECUTED)
    stop.on_stop(s.shutdown)
    thread = started(s)
    assert ended[0].wait(WAIT)  # its instance count is down again: the next fire may run
    s.scheduler.modify_job(JOB_ID, next_run_time=datetime.now(UTC))
    assert ended[1].wait(WAIT)
    stopped(s, stop, thread)
    assert len(calls) == 2  # it raised the first time, and ran again


def test_case_23_a_run_still_going_at_the_next_trigger_is_skipped_with_a_warning(engine, config):
    gate, going, stop = threading.Event(), threading.Event(), StopFlag()
    seen = Seen("maximum number of running instances reached")
    logging.getLogger("apscheduler").addHandler(seen)
    times = iter(at(10, 12) + timedelta(hours=h) for h in range(100))
    s = scheduler(engine, config, lambda: (going.set(), gate.wait(WAIT)), lambda: next(times), stop)
    stop.on_stop(s.shutdown)
    try:
        thread = started(s)
        assert going.wait(WAIT)
        s.scheduler.modify_job(JOB_ID, next_run_time=datetime.now(UTC))  # next trigger, still busy
        assert seen.event.wait(WAIT)
    finally:
        gate.set()
        logging.getLogger("apscheduler").removeHandler(seen)
    stopped(s, stop, thread)


def test_case_38_a_stop_ends_the_schedule_only_once_the_running_job_has_stopped(engine, config):
    stop, going, finished = StopFlag(), threading.Event(), []

    def job() -> None:  # a collection, between pages when the stop comes
        going.set()
        stop.wait(WAIT)  # ends as soon as the stop is requested
        finished.append("saved its last page")

    times = iter(at(10, 12) + timedelta(hours=h) for h in range(100))
    s = scheduler(engine, config, job, lambda: next(times), stop)
    stop.on_stop(s.shutdown)
    thread = started(s)
    assert going.wait(WAIT)
    stopped(s, stop, thread)
    assert finished == ["saved its last page"]
