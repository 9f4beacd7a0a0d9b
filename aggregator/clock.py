"""Time, once. Inside the program every time is an aware UTC instant: `utcnow`, and `as_utc` for a
value read back from the database (SQLite hands them back naive). Only what is shown converts: the
event's `EventClock` turns an instant into the event's wall-clock time and writes each kind of time
one way wherever it appears (the story, `status`, alerts, exports); `iso_utc` is the one UTC form
machine-readable files and `status --json` use.

Core layer: standard library only.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Literal, overload

__all__ = ["EventClock", "as_utc", "iso_utc", "utcnow"]


def utcnow() -> datetime:
    """Now, as an aware UTC instant."""
    return datetime.now(UTC)


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
@overload
def as_utc(value: datetime | None) -> datetime | None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """Aware UTC, the form every time takes inside the program; a naive value is taken to be UTC
    already (never the machine's zone); None stays None."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.utcoffset() is None else value.astimezone(UTC)


def iso_utc(
    value: datetime | None, precision: Literal["seconds", "milliseconds"] = "seconds"
) -> str | None:
    """ISO 8601 in UTC ending in Z, the one UTC form machine-readable output takes: to the whole
    second in exports and manifests (`2016-11-28T13:05:00Z`), to the millisecond in `status
    --json`, which orders runs a moment apart (`2016-11-28T13:05:00.412Z`). Finer digits are
    dropped, never rounded; None stays None."""
    if value is None:
        return None
    return as_utc(value).isoformat(timespec=precision).replace("+00:00", "Z")


class EventClock:
    """The event's clock: instants shown in the event's time zone, each kind of time in one form.

    Every method takes an instant (aware in any zone, or naive UTC) and converts it itself, so a
    caller never holds a local time it has to convert back. Day and month names are English.
    """

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz

    # instants in the event's zone

    def local(self, instant: datetime) -> datetime:
        """The instant as the event's wall clock reads it (aware, in the event's zone)."""
        return as_utc(instant).astimezone(self.tz)

    def shown(self, instant: datetime) -> datetime:
        """The instant as a view (the story's model) holds it: the event's wall clock to the whole
        second, so a template writing it out agrees with `iso`."""
        return self.local(instant).replace(microsecond=0)

    def day_of(self, instant: datetime) -> date:
        """The event-local date the instant falls on."""
        return self.local(instant).date()

    def day_bounds(self, day: date) -> tuple[datetime, datetime]:
        """The event-local `day` as UTC instants: its first moment and the next day's (23 or 25
        hours apart on a day the clocks change)."""
        return self._midnight(day), self._midnight(day + timedelta(days=1))

    def _midnight(self, day: date) -> datetime:
        return as_utc(datetime.combine(day, time(0), tzinfo=self.tz))

    def hour_start(self, instant: datetime) -> datetime:
        """The UTC instant the event-local hour holding `instant` began (not UTC's own hour: the
        event's zone may be half an hour off it)."""
        return as_utc(self.local(instant).replace(minute=0, second=0, microsecond=0))

    def after(self, instant: datetime, elapsed: timedelta) -> datetime:
        """`elapsed` real time after `instant`, in the event's zone (adding to a local time
        directly counts wall-clock time, an hour out across a clock change)."""
        return self.local(as_utc(instant) + elapsed)

    # the forms a person reads

    def time_of_day(self, instant: datetime) -> str:
        """`14:05`"""
        return f"{self.local(instant):%H:%M}"

    def span(self, start: datetime, end: datetime) -> str:
        """`09:00–09:45`"""
        return f"{self.time_of_day(start)}–{self.time_of_day(end)}"

    def day(self, value: datetime | date, year: bool = True) -> str:
        """`Monday 28 November 2016`, or `Monday 28 November` without the year; `value` is an
        instant or an event-local date."""
        d = self.day_of(value) if isinstance(value, datetime) else value
        return f"{d:%A} {d.day} {d:%B}" + (f" {d.year}" if year else "")

    def days(self, first: date, last: date) -> str:
        """Event-local dates from `first` to `last`: `Monday 28 November 2016` for one day,
        `28–29 November 2016`, `30 November – 1 December 2016`."""
        if first == last:
            return self.day(first)
        if (first.year, first.month) == (last.year, last.month):
            return f"{first.day}–{last.day} {last:%B} {last.year}"
        if first.year == last.year:
            return f"{first.day} {first:%B} – {last.day} {last:%B} {last.year}"
        return f"{first.day} {first:%B} {first.year} – {last.day} {last:%B} {last.year}"

    def short_day(self, instant: datetime) -> str:
        """`28 Nov`: a chart's day tick."""
        d = self.local(instant)
        return f"{d.day} {d:%b}"

    def when(self, instant: datetime, day: date | None) -> str:
        """A post's time: `13:25` on the event-local `day`, else `Fri 25 Nov, 13:25`."""
        at = self.local(instant)
        if at.date() == day:
            return self.time_of_day(at)
        return f"{at:%a} {self.short_day(at)}, {self.time_of_day(at)}"

    def full(self, instant: datetime) -> str:
        """`28 November 2016 at 14:05`: when a report was written or a source last collected."""
        at = self.local(instant)
        return f"{at.day} {at:%B} {at.year} at {self.time_of_day(at)}"

    def stamp(self, instant: datetime | None) -> str:
        """`2016-11-28 14:05 GMT`, with the zone's abbreviation (`status`, alerts, the scheduler);
        `never` for None."""
        return f"{self.local(instant):%Y-%m-%d %H:%M %Z}" if instant is not None else "never"

    # the form a machine reads

    def iso(self, instant: datetime) -> str:
        """ISO 8601 in the event's zone to the whole second, with its offset
        (`2016-11-28T22:05:00+09:00`): story.json, an export's `created_local`."""
        return self.local(instant).isoformat(timespec="seconds")
