"""Checking a five-field cron line (`[schedule] cron`) when the config is loaded, without the
scheduler library: loading a config must stay light (docs/architecture.md). The scheduler
(aggregator.scheduler, APScheduler) runs the same line; tests/aggregator/test_cron_check.py holds the two to
the same verdict on every form the documentation shows and many it does not.

Semantics are APScheduler 3's CronTrigger, the one that runs it: every field must match (day of
month AND weekday), weekdays counted as cron counts them (0 and 7 are Sunday).

Core layer: standard library only.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, tzinfo

__all__ = ["FIRES_WITHIN", "cron_problem"]

FIRES_WITHIN = timedelta(days=5 * 365)  # a cron line that does not fire by then never will
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # cron's numbering: 0 (and 7) = Sunday
# APScheduler's own day-of-month forms beyond crontab's: "last", "1st mon", "last fri"
DAY_POSITION = re.compile(r"(last|(1st|2nd|3rd|4th|5th|last) (" + "|".join(DAYS) + r"))", re.I)
PART = re.compile(r"(?P<span>\*|\w+(?:-\w+)?)(?:/(?P<step>\d+))?")

# field name, lowest, highest, names (the first name stands for `lowest`)
FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day", 1, 31, ()),
    ("month", 1, 12, MONTHS),
    ("weekday", 0, 7, DAYS),
)


def _values(text: str, name: str, low: int, high: int, names: tuple[str, ...]) -> set[int]:
    """The values one field allows. :raises ValueError: saying what is wrong with it."""
    if text == "?" and name == "weekday":
        text = "*"
    allowed: set[int] = set()
    for part in text.split(","):
        match = PART.fullmatch(part)
        if not match:
            raise ValueError(f"{name} {part!r} is not a number, a range or a step")
        span, step_text = match["span"], match["step"]
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"{name} step {step_text!r} must be 1 or more")

        def value(word: str, span: str = span) -> int:
            word = word.lower()
            if word in names:
                return low + names.index(word) if name == "month" else names.index(word)
            if not word.isdigit() or not low <= int(word) <= high:
                raise ValueError(f"{name} {span!r} is outside {low}-{high}")
            return int(word)

        if span == "*":
            first, last = low, high
        elif "-" in span:
            first, last = (value(w) for w in span.split("-", 1))
            if first > last:
                raise ValueError(f"{name} range {span!r} runs backwards")
        else:
            first = value(span)
            last = high if step_text else first
        allowed.update(range(first, last + 1, step))
    if name == "weekday":
        allowed = {d % 7 for d in allowed}
    return allowed


def _fires(months: set[int], days: set[int] | None, weekdays: set[int], start: date) -> bool:
    """Whether some date from `start` within FIRES_WITHIN has an allowed month, day and weekday
    (days None: APScheduler's positional forms, which some day of every month has)."""
    for n in range(FIRES_WITHIN.days + 1):
        d = start + timedelta(days=n)
        weekday = (d.weekday() + 1) % 7  # Python counts Monday = 0; cron, Sunday = 0
        if d.month in months and (days is None or d.day in days) and weekday in weekdays:
            return True
    return False


def cron_problem(expr: str, timezone: tzinfo, now: datetime | None = None) -> str | None:
    """None if `expr` is a five-field cron line that fires within FIRES_WITHIN of `now`, else
    what is wrong with it, in one line (a line like '0 2 31 2 *' parses but would idle forever)."""
    fields = expr.split()
    if len(fields) != 5:
        return f"{expr!r} must have five fields: minute hour day month weekday (e.g. '0 2 * * *')"
    sets: list[set[int] | None] = []
    try:
        for text, (name, low, high, names) in zip(fields, FIELDS, strict=True):
            if name == "day" and DAY_POSITION.fullmatch(text):
                sets.append(None)
                continue
            sets.append(_values(text, name, low, high, names))
    except ValueError as exc:
        return f"{expr!r} is not a valid cron line ({exc})"
    _, _, days, months, weekdays = sets
    today = (now or datetime.now(UTC)).astimezone(timezone).date()
    if not _fires(months or set(), days, weekdays or set(), today):
        return (
            f"{expr!r} never fires (not once in the next {FIRES_WITHIN.days // 365} years): "
            "check its day and month fields, e.g. '0 2 * * *' for every night at 02:00"
        )
    return None
