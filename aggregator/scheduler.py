"""The only module that imports APScheduler."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

__all__ = ["cron_problem", "cron_trigger"]


def cron_trigger(expr: str, timezone: ZoneInfo) -> CronTrigger:
    """A five-field crontab expression in the event's time zone."""
    return CronTrigger.from_crontab(expr, timezone=timezone)


def cron_problem(expr: str, timezone: ZoneInfo) -> str | None:
    """None if `expr` is a valid five-field cron line, else what is wrong with it."""
    if len(expr.split()) != 5:
        return f"{expr!r} must have five fields: minute hour day month weekday (e.g. '0 2 * * *')"
    try:
        cron_trigger(expr, timezone)
    except ValueError as exc:
        return f"{expr!r} is not a valid cron line ({exc})"
    return None
