"""`aggregator export` options: filters by session, platform, hashtag and time, and usage errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.helpers import in_zone, invoke, load, read_csv


def test_filters_match_the_full_export(loaded):
    project = loaded
    everything = read_csv(invoke(project, "export").stdout)

    def chosen(*args):
        result = invoke(project, "export", *args)
        assert result.exit_code == 0, result.output
        return {r["post_id"] for r in read_csv(result.stdout)}

    assert chosen("--session", "session-3", "--session", "general") == {
        r["post_id"] for r in everything if r["session_id"] in ("session-3", "")
    }
    assert chosen("--platform", "bluesky") == {
        r["post_id"] for r in everything if r["platform"] == "bluesky"
    }
    tagged = {
        r["post_id"] for r in everything if "everyoneincluded" in r["hashtags"].lower().split()
    }
    assert chosen("--hashtag", "#everyoneINCLUDED") == tagged and tagged
    start, end = datetime(2016, 11, 28, 13, tzinfo=UTC), datetime(2016, 11, 28, 14, 30, tzinfo=UTC)
    window = {r["post_id"] for r in everything
              if start <= datetime.fromisoformat(r["created_at"]) < end}  # fmt: skip
    assert chosen("--since", "2016-11-28T14:00+01:00", "--until", "2016-11-28T14:30Z") == window
    day = {r["post_id"] for r in everything if r["created_at"].startswith("2016-11-28")}
    assert chosen("--since", "2016-11-28", "--until", "2016-11-28") == day


def test_dates_without_an_offset_are_in_the_event_time_zone(project):
    in_zone(project, "Asia/Tokyo")
    load(project, people=False)
    everything = read_csv(invoke(project, "export").stdout)
    start = datetime(2016, 11, 28, 13, tzinfo=UTC)  # 22:00 in Tokyo
    rows = read_csv(invoke(project, "export", "--since", "2016-11-28T22:00").stdout)
    assert {r["post_id"] for r in rows} == {
        r["post_id"] for r in everything if datetime.fromisoformat(r["created_at"]) >= start
    }
    assert all(r["created_local"].endswith("+09:00") for r in rows) and rows
    day = read_csv(
        invoke(project, "export", "--since", "2016-11-28", "--until", "2016-11-28").stdout
    )
    in_tokyo = {r["post_id"] for r in everything if r["created_local"].startswith("2016-11-28")}
    assert {r["post_id"] for r in day} == in_tokyo and 0 < len(in_tokyo) < len(everything)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--session", "nope"], "no session 'nope'"),
        (["--since", "yesterday"], "is not a date"),
        (["--since", "2016-11-29", "--until", "2016-11-28T12:00"], "is not before"),
        (["--format", "jsonl", "--excel"], "--excel applies to --format csv only"),
        (["--format", "ids", "--pseudonymise"], "cannot be pseudonymised"),
        (["--manifest"], "add --output FILE"),
    ],
)
def test_bad_options_are_usage_errors(project, args, words):
    result = invoke(project, "export", *args)
    assert result.exit_code == 2
    assert words in result.output
