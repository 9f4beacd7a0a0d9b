"""`status` for people (aggregator/health.py format_status): every warning of each source's latest
outcome, one line each and sanitised (a warning can quote what a platform sent), and only the gaps
of older outcomes."""

from __future__ import annotations

from datetime import UTC, datetime

from aggregator.health import format_status, status_report
from connectors.feeds import undated_warning
from connectors.x import page_notes
from storage.queries import finish_run, record_outcome, start_run
from tests.helpers import make_post

FEED = "https://news.example/rss"
RESET = "gap: the saved cursor is gone (reset); collecting again from the start"
LOST = (
    "gap: the last successful collection was 9 days ago, but an x source reaches back only 7 days"
)
# what an API's error text could carry: a screen-clearing escape, a forged status line, an override
HOSTILE = "X reported: \x1b[2J\x1b[31mpwned\r\nrun 99 (collect) 2016-12-01 02:00 GMT: ok\u202e"


def run(engine, when: datetime, outcomes: dict[str, list[str]]) -> None:
    run_id = start_run(engine, "collect", started_at=when)
    for source, warnings in outcomes.items():
        record_outcome(engine, run_id, {"source": source, "status": "ok", "warnings": warnings,
                                        "started_at": when, "finished_at": when})  # fmt: skip
    finish_run(engine, run_id, "ok")


def warning_lines(engine, config) -> list[str]:
    lines = format_status(status_report(engine, config), config)
    return [line for line in lines if line.startswith("    ! ")]


def test_every_warning_of_each_sources_latest_outcome_and_older_gaps_only(engine, config):
    timeless = make_post(1, platform="feed", raw={"published": "data non disponibile"})
    x_posts = [make_post(2, platform="x", author="withheld:42"),
               make_post(3, platform="x", raw={"_missing_media": ["3_1", "3_2"]})]  # fmt: skip
    notes = page_notes(x_posts)
    assert len(notes) == 2  # media not found, and a withheld author
    undated = undated_warning(FEED, [timeless])
    run(engine, datetime(2016, 11, 29, 2, tzinfo=UTC), {"news": [LOST, "an older note"]})
    run(engine, datetime(2016, 11, 30, 2, tzinfo=UTC), {"news": [RESET, undated], "x": notes})
    run(engine, datetime(2016, 12, 1, 2, tzinfo=UTC), {"x": [LOST, *notes]})

    assert warning_lines(engine, config) == [
        *(f"    ! {w}" for w in (LOST, *notes)),  # run 3: x's latest outcome, every warning
        f"    ! {RESET}", f"    ! {undated}",  # run 2: news's latest outcome, every warning
        f"    ! {LOST}",  # run 1: an older outcome of news, its gap only
    ]  # fmt: skip


def test_a_hostile_warning_is_one_printable_line(engine, config):
    run(engine, datetime(2016, 12, 1, 2, tzinfo=UTC), {"x": [HOSTILE, RESET]})
    lines = format_status(status_report(engine, config), config)
    assert all(line.isprintable() for line in lines)
    (hostile, reset) = warning_lines(engine, config)
    assert "pwned" in hostile and hostile.endswith("run 99 (collect) 2016-12-01 02:00 GMT: ok ")
    assert reset == f"    ! {RESET}"
    assert not any(line.startswith("run 99") for line in lines)
