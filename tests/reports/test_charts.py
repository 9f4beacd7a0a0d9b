"""reports/charts.py: activity in bins with its peak, and the geometry the templates draw as SVG."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from reports.charts import day_chart, sentiment_bar, sparkline, spread, window

LONDON = ZoneInfo("Europe/London")
NOON = datetime(2016, 11, 28, 12, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return NOON + timedelta(minutes=minutes)


def test_window_bins_counts_and_finds_the_busiest_minute():
    minutes = {at(0): 1, at(4): 2, at(25): 3, at(26): 3, at(70): 5}
    a = window(minutes, NOON, at(60), 12, LONDON)
    assert a.minutes == 5 and len(a.counts) == 12
    assert a.counts[0] == 3 and a.counts[5] == 6 and sum(a.counts) == 9
    assert a.peak == "12:25" and a.peak_count == 3  # the earlier of two equal minutes
    assert a.outside == 5  # looked back on later, outside the session
    assert a.start.tzinfo == LONDON


def test_window_with_no_posts_has_no_peak():
    a = window({}, NOON, at(30), 24, LONDON)
    assert a.peak is None and a.peak_count == 0 and set(a.counts) == {0}


def test_window_reads_the_event_time_zone():
    a = window({at(5): 1}, NOON, at(60), 12, ZoneInfo("America/New_York"))
    assert a.peak == "07:05"


def test_spread_uses_days_over_a_long_build_up_and_hours_otherwise():
    days = spread({at(-60 * 24 * 5): 2, at(-60 * 24 * 3): 7, at(-30): 1}, LONDON)
    assert days is not None and days.peak_unit == "day" and days.peak == "Friday 25 November"
    assert sum(days.counts) == 10 and days.peak_count == 7
    hours = spread({at(600): 1, at(630): 2, at(700): 1}, LONDON)
    assert hours is not None and hours.peak_unit == "hour" and hours.peak == "22:00"
    assert spread({}, LONDON) is None


def test_day_chart_scales_bars_to_the_tallest_and_draws_sessions_as_bands():
    a = window({at(m): 1 + m % 3 for m in range(0, 180, 7)}, at(-60), at(240), 60, LONDON)
    sessions = [(at(0), at(60), "Opening", "OP"), (at(60), at(180), "Second", "2")]
    chart = day_chart(a, sessions, width=600, height=200)
    assert len(chart.bars) == len(a.counts)
    tallest = max(chart.bars, key=lambda b: b.count)
    assert tallest.count == chart.peak and abs(tallest.height - (chart.bottom - chart.top)) < 0.01
    for bar in chart.bars:
        assert 0 <= bar.x <= 600 and chart.top - 0.01 <= bar.y <= chart.bottom
        assert abs(bar.height - (chart.bottom - chart.top) * bar.count / chart.peak) < 0.01
    first, second = chart.bands
    assert first.number == "OP" and second.number == "2" and second.title == "Second"
    assert first.x < second.x and abs(first.x + first.width - second.x) < 0.01
    assert abs(second.width - 2 * first.width) < 0.01
    assert [t.label for t in chart.ticks][:3] == ["11:00", "12:00", "13:00"]


def test_day_chart_without_posts_has_flat_bars_not_errors():
    chart = day_chart(window({}, NOON, at(120), 24, LONDON), [(NOON, at(60), "Only", "1")])
    assert chart.peak == 0 and all(b.height == 0 for b in chart.bars)


def test_sparkline_marks_every_busy_bin_and_nothing_for_no_activity():
    a = window({at(1): 4, at(30): 1}, NOON, at(60), 12, LONDON)
    bars = sparkline(a, width=120, height=28)
    assert len(bars) == 12 and bars[0].height == 26 and bars[6].height > 0 and bars[3].height == 0
    assert sparkline(None) == []


def test_sentiment_bar_fills_the_width_in_proportion():
    segments = sentiment_bar(3, 1, 0)
    assert [s.kind for s in segments] == ["positive", "neutral"]
    assert segments[0].width == 75 and segments[1].x == 75 and segments[0].share == 75
    assert sentiment_bar(0, 0, 0) == []


def test_a_post_dated_decades_away_does_not_draw_thousands_of_days():
    from reports.charts import MAX_DAYS

    tz = ZoneInfo("Asia/Tokyo")
    event = datetime(2016, 11, 20, 3, tzinfo=UTC)
    minutes = {event + timedelta(days=d): 3 for d in range(10)}
    minutes[datetime(2099, 12, 31, 12, tzinfo=UTC)] = 1  # a far-future date a source let through
    minutes[datetime(1970, 1, 2, tzinfo=UTC)] = 2
    activity = spread(minutes, tz)
    assert activity is not None and activity.peak_unit == "day"
    assert len(activity.counts) <= MAX_DAYS
    assert sum(activity.counts) == 30 and activity.outside == 3
    assert activity.start.date() == event.astimezone(tz).date()
