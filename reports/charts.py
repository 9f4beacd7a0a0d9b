"""Activity over time (counts in bins, the peak) and the geometry of the report's inline SVG charts.

Only numbers and short labels here: the templates draw the SVG from them, autoescaped like everything else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

from aggregator.clock import EventClock, as_utc

__all__ = [
    "Activity",
    "Band",
    "Bar",
    "Chart",
    "Segment",
    "day_chart",
    "sentiment_bar",
    "sparkline",
    "spread",
    "window",
]

BIN_WIDTHS = (1, 2, 5, 10, 15, 20, 30, 60, 120, 180, 360, 720, 1440)  # minutes
HOUR = timedelta(hours=1)


@dataclass
class Activity:
    start: datetime  # the first bin, event time zone
    minutes: int  # bin width
    counts: list[int]
    peak: str | None = None  # "13:25", "14:00" or "Friday 25 November"
    peak_unit: str = "minute"  # minute | hour | day
    peak_count: int = 0
    outside: int = 0  # posts outside the window (a session's, looking back later)

    @property
    def clock(self) -> EventClock:
        """The event's clock, whose zone `start` is shown in."""
        return EventClock(self.start.tzinfo or UTC)

    def bin_start(self, i: int) -> datetime:
        """When bin `i` begins, in the event's zone. Bins are real time (one on a day the clocks
        change is still `minutes` long), except daily bins: event-local days, of 23 or 25 hours."""
        if self.peak_unit == "day":
            day = self.start.date() + timedelta(days=i)
            return self.clock.local(self.clock.day_bounds(day)[0])
        return self.clock.after(self.start, timedelta(minutes=self.minutes * i))

    @property
    def end(self) -> datetime:
        return self.bin_start(len(self.counts))

    def seconds(self, when: datetime) -> float:
        """Real seconds from `start` to `when`."""
        return (as_utc(when) - as_utc(self.start)).total_seconds()


def window(
    minutes: Mapping[datetime, int], start: datetime, end: datetime, bins: int, tz: tzinfo
) -> Activity:
    """Per-minute counts in about `bins` bins over [start, end); the peak is the busiest minute inside."""
    wanted = (end - start).total_seconds() / 60 / bins
    width = next((w for w in BIN_WIDTHS if w >= wanted), BIN_WIDTHS[-1])
    span = int((end - start).total_seconds() // 60)
    counts = [0] * max(1, -(-span // width))
    inside = {m: n for m, n in minutes.items() if start <= m < end}
    for minute, n in inside.items():
        counts[int((minute - start).total_seconds() // 60) // width] += n
    peak = min(inside, key=lambda m: (-inside[m], m)) if inside else None
    clock = EventClock(tz)
    return Activity(
        start=clock.local(start),
        minutes=width,
        counts=counts,
        peak=clock.time_of_day(peak) if peak else None,
        peak_count=inside[peak] if peak else 0,
        outside=sum(minutes.values()) - sum(inside.values()),
    )


MAX_DAYS = 120  # daily bins at most: posts beyond the busiest such stretch are counted as outside


def _busiest_days(days: Mapping[date, int], width: int) -> date:
    """The first day of the `width`-day stretch holding the most posts (the earliest such)."""
    ordered = sorted(days)
    best, best_start, total, j = -1, ordered[0], 0, 0
    for i, start in enumerate(ordered):
        while j < len(ordered) and (ordered[j] - start).days < width:
            total += days[ordered[j]]
            j += 1
        if total > best:
            best, best_start = total, start
        total -= days[ordered[i]]
    return best_start


def spread(minutes: Mapping[datetime, int], tz: tzinfo) -> Activity | None:
    """Posts outside the sessions: hourly bins within two days, daily beyond; the peak is a bin.
    Daily bins cover at most MAX_DAYS (the busiest stretch): a post dated decades away must not
    draw thousands of empty days; what falls outside is counted in `outside`."""
    if not minutes:
        return None
    clock = EventClock(tz)
    if max(minutes) - min(minutes) > timedelta(days=2):
        return _daily(minutes, clock)
    floor = clock.hour_start(min(minutes))
    counts = [0] * (int((max(minutes) - floor) / HOUR) + 1)
    for when, n in minutes.items():
        counts[int((when - floor) / HOUR)] += n
    i = counts.index(max(counts))
    return Activity(clock.local(floor), 60, counts, clock.time_of_day(floor + HOUR * i), "hour",
                    counts[i])  # fmt: skip


def _daily(minutes: Mapping[datetime, int], clock: EventClock) -> Activity:
    """Posts per event-local day, over the busiest MAX_DAYS."""
    days: Counter[date] = Counter()
    for when, n in minutes.items():
        days[clock.day_of(when)] += n
    start = _busiest_days(days, MAX_DAYS)
    counts = [0] * ((min(max(days), start + timedelta(days=MAX_DAYS - 1)) - start).days + 1)
    outside = 0
    for day, n in days.items():
        i = (day - start).days
        if 0 <= i < len(counts):
            counts[i] += n
        else:
            outside += n
    i = counts.index(max(counts))
    midnight = clock.local(clock.day_bounds(start)[0])
    return Activity(midnight, 1440, counts, clock.day(start + timedelta(days=i), year=False), "day",
                    counts[i], outside)  # fmt: skip


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int
    label: str  # the bin's start time, for the bar's tooltip


@dataclass
class Band:
    x: float
    width: float
    number: str  # the session's key, drawn on the band; the table under the chart gives it too
    title: str
    shaded: bool


@dataclass
class Tick:
    x: float
    label: str


@dataclass
class Chart:
    width: int
    height: int
    top: float  # plot area, between the band labels and the time axis
    bottom: float
    bars: list[Bar]
    bands: list[Band]
    ticks: list[Tick]
    peak: int  # the tallest bar's count: the y scale


def _scale(activity: Activity, left: float, right: float) -> tuple[float, float]:
    seconds = max(activity.seconds(activity.end), 1)
    return left, (right - left) / seconds


def day_chart(
    activity: Activity, sessions: Sequence[tuple[datetime, datetime, str, str]], width: int = 720,
    height: int = 210,
) -> Chart:  # fmt: skip
    """Bars of posts per bin across the day, over shaded bands for the sessions
    (start, end, title, the key drawn on the band)."""
    top, bottom, left, right = 26.0, height - 24.0, 6.0, width - 6.0
    x0, per_second = _scale(activity, left, right)
    peak = max(activity.counts, default=0)
    slot = (right - left) / max(len(activity.counts), 1)
    clock = activity.clock
    bars = []
    for i, n in enumerate(activity.counts):
        h = (bottom - top) * n / peak if peak else 0.0
        label = clock.time_of_day(activity.bin_start(i))
        bars.append(Bar(round(left + i * slot + 0.5, 2), round(bottom - h, 2),
                        round(max(slot - 1.0, 0.5), 2), round(h, 2), n, label))  # fmt: skip
    bands = []
    for i, (start, end, title, key) in enumerate(sessions):
        a = max(activity.seconds(start), 0) * per_second + x0
        b = min(activity.seconds(end) * per_second + x0, right)
        bands.append(Band(round(a, 2), round(max(b - a, 0), 2), key, title, i % 2 == 0))
    seconds = activity.seconds(activity.end)
    hours = max(int(seconds // 3600), 1)
    step = 1 if hours <= 12 else 2 if hours <= 24 else 24
    ticks = []
    tick = clock.hour_start(activity.start)  # every hour in real time, labelled as the clock reads
    while (after := activity.seconds(tick)) <= seconds:
        if after >= 0 and clock.local(tick).hour % step == 0:
            label = clock.time_of_day(tick) if step < 24 else clock.short_day(tick)
            ticks.append(Tick(round(after * per_second + x0, 2), label))
        tick += HOUR
    return Chart(width, height, top, bottom, bars, bands, ticks, peak)


def sparkline(activity: Activity | None, width: int = 120, height: int = 28) -> list[Bar]:
    """Small bars for a session's activity; drawn aria-hidden next to its text equivalent."""
    if activity is None or not activity.counts:
        return []
    peak = max(activity.counts) or 1
    slot = width / len(activity.counts)
    bars = []
    for i, n in enumerate(activity.counts):
        h = max((height - 2) * n / peak, 1.0 if n else 0.0)
        label = activity.clock.time_of_day(activity.bin_start(i))
        bars.append(Bar(round(i * slot, 2), round(height - h, 2), round(max(slot - 1, 0.5), 2),
                        round(h, 2), n, label))  # fmt: skip
    return bars


@dataclass
class Segment:
    kind: str  # positive | neutral | negative
    x: float  # percent
    width: float  # percent
    share: int  # whole percent, for the label


def sentiment_bar(positive: int, neutral: int, negative: int) -> list[Segment]:
    """A 100-wide stacked bar of the three tones; empty when there is nothing to show."""
    total = positive + neutral + negative
    if not total:
        return []
    out, x = [], 0.0
    for kind, n in (("positive", positive), ("neutral", neutral), ("negative", negative)):
        w = 100 * n / total
        if n:
            out.append(Segment(kind, round(x, 2), round(w, 2), round(w)))
        x += w
    return out
