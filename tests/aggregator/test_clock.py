"""aggregator/clock.py: aware UTC inside, and the event's clock showing it in every form, in zones
off UTC and across the clocks changing."""

from __future__ import annotations

import ast
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

import storage.guard
import storage.queries
from aggregator.clock import EventClock, as_utc, iso_utc, utcnow
from tests.helpers import ROOT

TOKYO = EventClock(ZoneInfo("Asia/Tokyo"))
LONDON = EventClock(ZoneInfo("Europe/London"))
ST_JOHNS = EventClock(ZoneInfo("America/St_Johns"))  # -03:30: its hours are not UTC's hours
POSTED = datetime(2016, 11, 28, 13, 5, 17, 549000, tzinfo=UTC)  # a Monday


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_as_utc_takes_a_naive_value_as_utc_and_converts_an_aware_one():
    assert as_utc(datetime(2016, 11, 28, 13, 5)) == utc(2016, 11, 28, 13, 5)
    assert as_utc(datetime(2016, 11, 28, 13, 5)).tzinfo is UTC  # type: ignore[union-attr]
    tokyo = datetime(2016, 11, 28, 22, 5, tzinfo=ZoneInfo("Asia/Tokyo"))
    converted = as_utc(tokyo)
    assert converted is not None and converted.tzinfo is UTC
    assert (converted.hour, converted.minute) == (13, 5)
    assert as_utc(None) is None


def test_utcnow_is_aware_utc():
    assert utcnow().tzinfo is UTC


def test_storage_hands_out_the_clock_s_functions_not_copies():
    assert storage.guard.as_utc is as_utc and storage.queries.as_utc is as_utc
    assert storage.queries.utcnow is utcnow


def test_iso_utc_is_one_precision_ending_in_z():
    assert iso_utc(POSTED) == "2016-11-28T13:05:17Z"  # the fraction dropped, not rounded
    assert iso_utc(utc(2016, 11, 28, 13, 5)) == "2016-11-28T13:05:00Z"
    assert iso_utc(datetime(2016, 11, 28, 22, 5, tzinfo=ZoneInfo("Asia/Tokyo"))) == (
        "2016-11-28T13:05:00Z"
    )
    assert iso_utc(datetime(2016, 11, 28, 13, 5)) == "2016-11-28T13:05:00Z"  # naive is UTC
    assert iso_utc(None) is None


def test_iso_utc_to_the_millisecond_for_status():
    assert iso_utc(POSTED, "milliseconds") == "2016-11-28T13:05:17.549Z"
    assert iso_utc(POSTED.replace(microsecond=549999), "milliseconds") == (
        "2016-11-28T13:05:17.549Z"  # dropped, not rounded
    )
    assert iso_utc(utc(2016, 11, 28, 13, 5), "milliseconds") == "2016-11-28T13:05:00.000Z"


def test_the_event_clock_shows_an_instant_in_the_event_zone_in_every_form():
    assert TOKYO.local(POSTED).utcoffset() == timedelta(hours=9)
    assert TOKYO.shown(POSTED).isoformat() == TOKYO.iso(POSTED)  # a view's time is to the second
    assert TOKYO.day_of(POSTED) == date(2016, 11, 28)
    assert TOKYO.time_of_day(POSTED) == "22:05"
    assert TOKYO.stamp(POSTED) == "2016-11-28 22:05 JST"
    assert TOKYO.iso(POSTED) == "2016-11-28T22:05:17+09:00"
    assert TOKYO.full(POSTED) == "28 November 2016 at 22:05"
    assert TOKYO.day(POSTED) == "Monday 28 November 2016"
    assert TOKYO.day(POSTED, year=False) == "Monday 28 November"
    assert TOKYO.short_day(POSTED) == "28 Nov"
    assert TOKYO.span(utc(2016, 11, 28, 0), utc(2016, 11, 28, 0, 45)) == "09:00–09:45"


def test_a_naive_instant_is_read_as_utc_not_as_the_machine_s_zone():
    assert TOKYO.time_of_day(datetime(2016, 11, 28, 13, 5)) == "22:05"
    assert TOKYO.stamp(datetime(2016, 11, 28, 13, 5)) == "2016-11-28 22:05 JST"


def test_the_date_is_the_event_s_not_utc_s():
    late = utc(2016, 11, 28, 16, 30)  # 01:30 on Tuesday in Tokyo
    assert TOKYO.day_of(late) == date(2016, 11, 29)
    assert TOKYO.day(late) == "Tuesday 29 November 2016"
    assert TOKYO.stamp(late) == "2016-11-29 01:30 JST"


def test_a_post_s_time_names_its_day_only_away_from_the_event_s_day():
    day = date(2016, 11, 28)
    assert TOKYO.when(POSTED, day) == "22:05"
    assert TOKYO.when(utc(2016, 11, 28, 16, 30), day) == "Tue 29 Nov, 01:30"
    assert TOKYO.when(POSTED, None) == "Mon 28 Nov, 22:05"


def test_date_ranges_name_the_month_and_year_once():
    assert TOKYO.days(date(2016, 11, 28), date(2016, 11, 28)) == "Monday 28 November 2016"
    assert TOKYO.days(date(2016, 11, 28), date(2016, 11, 29)) == "28–29 November 2016"
    assert TOKYO.days(date(2016, 11, 30), date(2016, 12, 1)) == "30 November – 1 December 2016"
    assert TOKYO.days(date(2016, 12, 31), date(2017, 1, 1)) == ("31 December 2016 – 1 January 2017")


def test_never_for_no_time():
    assert TOKYO.stamp(None) == "never"


@pytest.mark.parametrize(
    ("instant", "shown"),
    [
        (utc(2017, 3, 26, 0, 30), "2017-03-26 00:30 GMT"),  # before the clocks go forward
        (utc(2017, 3, 26, 1, 30), "2017-03-26 02:30 BST"),  # an hour later: 01:30 never happened
        (utc(2016, 10, 30, 0, 30), "2016-10-30 01:30 BST"),  # 01:30 the first time ...
        (utc(2016, 10, 30, 1, 30), "2016-10-30 01:30 GMT"),  # ... and the second
    ],
)
def test_london_across_its_clock_changes(instant, shown):
    assert LONDON.stamp(instant) == shown
    offset = LONDON.local(instant).utcoffset()
    assert LONDON.iso(instant).endswith("+01:00" if offset else "+00:00")


def test_day_bounds_are_23_or_25_hours_on_the_days_the_clocks_change():
    start, end = LONDON.day_bounds(date(2017, 3, 26))
    assert (start, end) == (utc(2017, 3, 26, 0), utc(2017, 3, 26, 23))
    start, end = LONDON.day_bounds(date(2016, 10, 30))
    assert (start, end) == (utc(2016, 10, 29, 23), utc(2016, 10, 31, 0))
    assert TOKYO.day_bounds(date(2016, 11, 28)) == (utc(2016, 11, 27, 15), utc(2016, 11, 28, 15))


def test_after_counts_real_time_across_a_clock_change():
    half_past_midnight = utc(2016, 10, 29, 23, 30)  # 00:30 BST on the night the clocks go back
    later = LONDON.after(half_past_midnight, timedelta(hours=2))  # 01:30 GMT, the second time
    # as_utc: Python never finds an instant in a repeated hour equal to one in another zone
    assert as_utc(later) == utc(2016, 10, 30, 1, 30) and LONDON.time_of_day(later) == "01:30"
    assert LONDON.stamp(later) == "2016-10-30 01:30 GMT"
    from_local = LONDON.after(LONDON.local(half_past_midnight), timedelta(hours=2))
    assert as_utc(from_local) == as_utc(later)


def test_hour_start_is_the_event_s_hour():
    assert ST_JOHNS.hour_start(utc(2016, 11, 28, 13, 5)) == utc(2016, 11, 28, 12, 30)  # 09:35
    assert TOKYO.hour_start(POSTED) == utc(2016, 11, 28, 13)
    assert LONDON.hour_start(utc(2016, 10, 30, 1, 40)) == utc(2016, 10, 30, 1)  # 01:40 GMT
    assert LONDON.hour_start(utc(2016, 10, 30, 0, 40)) == utc(2016, 10, 30, 0)  # 01:40 BST


def test_a_fixed_offset_zone_works_too():
    clock = EventClock(timezone(timedelta(hours=-5)))
    assert clock.iso(POSTED) == "2016-11-28T08:05:17-05:00"
    assert clock.time_of_day(POSTED) == "08:05"


def test_the_clock_imports_only_the_standard_library():
    tree = ast.parse((ROOT / "aggregator" / "clock.py").read_text(encoding="utf-8"))
    imported = {
        name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in (
            [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        )
    }
    assert imported and imported <= set(sys.stdlib_module_names)
