"""Cron weekdays count from Sunday = 0, as in crontab(5); APScheduler 3 counts from Monday = 0."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from aggregator.scheduler import cron_problem, cron_trigger

LONDON = ZoneInfo("Europe/London")
# Wednesday 1 July 2026, noon in London (UTC+1 in summer)
NOW = datetime(2026, 7, 1, 12, 0, tzinfo=LONDON)


def fires(expr: str, count: int = 7) -> list[str]:
    """The weekday names of the next `count` fire times, as the trigger computes them."""
    trigger, previous, out = cron_trigger(expr, LONDON), None, []
    when = NOW
    for _ in range(count):
        when = trigger.get_next_fire_time(previous, when)
        out.append(f"{when:%a}")
        previous, when = when, when.replace(second=1)
    return out


@pytest.mark.parametrize(
    ("expr", "days"),
    [
        ("0 2 * * 1", {"Mon"}),
        ("0 2 * * 0", {"Sun"}),
        ("0 2 * * 7", {"Sun"}),
        ("0 2 * * 1-5", {"Mon", "Tue", "Wed", "Thu", "Fri"}),
        ("0 2 * * 0,6", {"Sat", "Sun"}),
        ("0 2 * * 5-7", {"Fri", "Sat", "Sun"}),
        ("0 2 * * */2", {"Sun", "Tue", "Thu", "Sat"}),
        ("0 2 * * sun-tue", {"Sun", "Mon", "Tue"}),
        ("0 2 * * mon-fri", {"Mon", "Tue", "Wed", "Thu", "Fri"}),
    ],
)
def test_weekdays_fire_on_the_days_cron_means(expr, days):
    assert set(fires(expr, 14)) == days


def test_every_night_still_fires_every_night():
    assert len(set(fires("0 2 * * *"))) == 7


@pytest.mark.parametrize("expr", ["0 2 * * 8", "0 2 * * 5-1", "0 2 * * funday", "0 2 * * 1/0"])
def test_a_bad_weekday_is_a_config_problem(expr):
    problem = cron_problem(expr, LONDON, NOW)
    assert problem is not None and expr in problem
