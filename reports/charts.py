"""Activity over time (counts in bins, the peak) and the geometry of the report's inline SVG charts.

Only numbers and short labels here: the templates draw the SVG from them, autoescaped like everything else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

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
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.minutes * len(self.counts))


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
    return Activity(
        start=start.astimezone(tz),
        minutes=width,
        counts=counts,
        peak=f"{peak.astimezone(tz):%H:%M}" if peak else None,
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
    local = {m.astimezone(tz): n for m, n in minutes.items()}
    first, last = min(local), max(local)
    daily = last - first > timedelta(days=2)
    unit = timedelta(days=1) if daily else timedelta(hours=1)
    floor = first.replace(minute=0, second=0, microsecond=0)
    if daily:
        days: dict[date, int] = {}
        for when, n in local.items():
            days[when.date()] = days.get(when.date(), 0) + n
        start = _busiest_days(days, MAX_DAYS)
        floor = floor.replace(year=start.year, month=start.month, day=start.day, hour=0)
        last = min(last, floor + timedelta(days=MAX_DAYS) - timedelta(minutes=1))
    counts = [0] * (int((last - floor) / unit) + 1)
    outside = 0
    for when, n in local.items():
        i = int((when - floor) / unit) if when >= floor else -1
        if 0 <= i < len(counts):
            counts[i] += n
        else:
            outside += n
    i = counts.index(max(counts))
    at = floor + unit * i
    label = f"{at:%A} {at.day} {at:%B}" if daily else f"{at:%H:%M}"
    return Activity(floor, int(unit.total_seconds() // 60), counts, label,
                    "day" if daily else "hour", counts[i], outside)  # fmt: skip


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
    seconds = max((activity.end - activity.start).total_seconds(), 1)
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
    bars = []
    for i, n in enumerate(activity.counts):
        h = (bottom - top) * n / peak if peak else 0.0
        when = activity.start + timedelta(minutes=activity.minutes * i)
        bars.append(Bar(round(left + i * slot + 0.5, 2), round(bottom - h, 2),
                        round(max(slot - 1.0, 0.5), 2), round(h, 2), n, f"{when:%H:%M}"))  # fmt: skip
    bands = []
    for i, (start, end, title, key) in enumerate(sessions):
        a = max((start - activity.start).total_seconds(), 0) * per_second + x0
        b = min((end - activity.start).total_seconds() * per_second + x0, right)
        bands.append(Band(round(a, 2), round(max(b - a, 0), 2), key, title, i % 2 == 0))
    hours = max(int((activity.end - activity.start).total_seconds() // 3600), 1)
    step = 1 if hours <= 12 else 2 if hours <= 24 else 24
    ticks = []
    tick = activity.start.replace(minute=0, second=0, microsecond=0)
    while tick <= activity.end:
        if tick >= activity.start and tick.hour % step == 0:
            x = (tick - activity.start).total_seconds() * per_second + x0
            ticks.append(
                Tick(round(x, 2), f"{tick:%H:%M}" if step < 24 else f"{tick.day} {tick:%b}")
            )
        tick += timedelta(hours=1)
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
        when = activity.start + timedelta(minutes=activity.minutes * i)
        bars.append(Bar(round(i * slot, 2), round(height - h, 2), round(max(slot - 1, 0.5), 2),
                        round(h, 2), n, f"{when:%H:%M}"))  # fmt: skip
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
