"""The run log read back (aggregator/health.py): `status` and `status --json`, each source's health,
gaps, runs left behind by a killed process, and `backup`."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from aggregator.clock import EventClock
from aggregator.config import SourceConfig
from aggregator.health import gap_warnings, recover_interrupted, source_health
from aggregator.lock import RunLock, lock_path
from aggregator.pipeline import collect
from storage.queries import recent_runs, record_outcome, start_run
from tests.helpers import EXAMPLE, TOKYO, Flaky, in_zone, invoke

EXAMPLE_POSTS = len(EXAMPLE.read_text(encoding="utf-8").splitlines())  # one post per line


def test_status_after_a_good_run_lists_the_run_and_every_source(project):
    in_zone(project, "Asia/Tokyo")  # times shown in the event's zone, not UTC or the machine's
    assert invoke(project, "collect").exit_code == 0
    result = invoke(project, "status")
    assert result.exit_code == 0, result.output
    (run,) = json.loads(invoke(project, "status", "--json").stdout)["runs"]
    started, finished = (datetime.fromisoformat(run[k]).astimezone(TOKYO)
                         for k in ("started_at", "finished_at"))  # fmt: skip
    assert f"run 1 (collect) {started:%Y-%m-%d %H:%M} JST: ok" in result.output
    assert f"example: ok, {EXAMPLE_POSTS} new, 1 pages, 0 waits" in result.output
    assert f"example (jsonl): ok; last success {finished:%Y-%m-%d %H:%M} JST" in result.output
    assert "new posts today" in result.output
    assert "x (x) (disabled): not collected yet" in result.output


def test_status_json_has_the_documented_shape(project):
    assert invoke(project, "collect").exit_code == 0
    result = invoke(project, "status", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert set(data) == {
        "event", "database", "posts", "quarantined", "media", "running_pid", "running_host",
        "workers", "ok", "runs", "sources"
    }  # fmt: skip
    assert data["ok"] is True and data["posts"] == EXAMPLE_POSTS and data["running_pid"] is None
    assert data["running_host"] is None and data["workers"] is None  # SQLite, not distributed
    assert data["quarantined"] == 0
    (run,) = data["runs"]
    assert set(run) == {
        "id",
        "command",
        "status",
        "pid",
        "started_at",
        "finished_at",
        "message",
        "sources",
    }
    assert run["command"] == "collect" and run["status"] == "ok"
    assert datetime.fromisoformat(run["finished_at"]) >= datetime.fromisoformat(run["started_at"])
    assert run["sources"][0]["new_posts"] == EXAMPLE_POSTS
    example = next(s for s in data["sources"] if s["name"] == "example")
    assert example["failures_in_a_row"] == 0 and example["nights_since_new_posts"] == 0
    success = datetime.fromisoformat(example["last_success"])
    assert (
        datetime.fromisoformat(run["started_at"])
        <= success
        <= datetime.fromisoformat(run["finished_at"])
    )


def test_a_source_failing_runs_in_a_row_shows_in_status_and_exits_1(flaky):
    for _ in range(2):
        assert invoke(flaky, "collect").exit_code == 1
    result = invoke(flaky, "status")
    assert result.exit_code == 1
    assert "news (feed): FAILING 2 run(s) in a row; last error" in result.output
    assert "HTTP 503 after 5 attempts" in result.output
    assert "the latest run (2) failed: news failed" in result.output
    data = json.loads(invoke(flaky, "status", "--json").stdout)
    news = next(s for s in data["sources"] if s["name"] == "news")
    assert news["failures_in_a_row"] == 2 and news["last_success"] is None
    assert data["ok"] is False


def test_a_success_ends_the_streak_and_is_remembered(flaky, monkeypatch):
    assert invoke(flaky, "collect").exit_code == 1
    monkeypatch.setattr(Flaky, "broken", False)
    assert invoke(flaky, "collect").exit_code == 0
    monkeypatch.setattr(Flaky, "broken", True)
    assert invoke(flaky, "collect").exit_code == 1
    news = next(
        s
        for s in json.loads(invoke(flaky, "status", "--json").stdout)["sources"]
        if s["name"] == "news"
    )
    assert news["failures_in_a_row"] == 1
    assert news["last_success"] is not None and news["last_error_at"] > news["last_success"]


def test_nights_since_new_posts_count_in_the_event_time_zone(project, engine):
    config = in_zone(project, "Asia/Tokyo")
    collect(engine, config)
    collect(engine, config)  # nothing new the second time
    with engine.begin() as conn:  # the new posts came at 23:30 in Tokyo (14:30 UTC) on the 28th
        for table in ("sourceoutcome SET finished_at", "sighting SET first_seen"):
            conn.exec_driver_sql(f"UPDATE {table} = '2016-11-28 14:30:00.000000'")
    now = datetime(2016, 11, 29, 15, 30, tzinfo=UTC)  # 00:30 on the 30th in Tokyo, UTC's 29th
    example = next(h for h in source_health(engine, config, now=now) if h.name == "example")
    assert example.nights_since_new_posts == 2


def test_a_collection_running_now_is_shown(project, config):
    with RunLock(lock_path(config)):
        result = invoke(project, "status")
    assert "A collection is running now (pid" in result.output


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_run_left_running_by_a_killed_process_is_marked_interrupted(project, engine):
    killed = start_run(engine, "run", pid=dead_pid())
    reused = start_run(engine, "collect", pid=1)  # pid 1 exists, but it is not our collector
    ours = start_run(engine, "collect", pid=os.getpid())
    shown = invoke(project, "status")  # nobody holds the lock: nothing can be running
    assert shown.exit_code == 1 and f"the latest run ({ours}) was interrupted" in shown.output
    assert {run.status for run, _ in recent_runs(engine)} == {"running"}  # status only reads
    assert recover_interrupted(engine) == [killed, reused]
    status = {run.id: (run.status, run.message) for run, _ in recent_runs(engine)}
    assert (
        status[killed][0] == "interrupted" and "ended before the run finished" in status[killed][1]
    )
    assert status[ours][0] == "running"


def test_case_13_gaps_are_recorded_when_a_source_was_away_longer_than_it_reaches_back(engine):
    source = SourceConfig("xsearch", "x", True)
    run = start_run(engine, "collect")
    now = datetime(2016, 12, 8, 20, tzinfo=UTC)  # already the 9th in Tokyo
    tokyo = EventClock(TOKYO)
    ten_days_ago = now - timedelta(days=10)
    record_outcome(
        engine,
        run,
        {
            "source": "xsearch",
            "status": "ok",
            "cursor": {"since_id": "9"},
            "warnings": [],
            "started_at": ten_days_ago,
            "finished_at": ten_days_ago,
        },
    )
    gaps = gap_warnings(engine, source, {"since_id": "9"}, tokyo, now=now)
    assert len(gaps) == 1 and "reaches back only 7 days" in gaps[0] and "10 days ago" in gaps[0]
    # what it cannot reach back to, in the event's days (UTC's would be the 28th to the 1st)
    assert "2016-11-29 to 2016-12-02 may be missing" in gaps[0]
    month = SourceConfig("xsearch", "x", True, reach_back_days=30)
    assert gap_warnings(engine, month, {"since_id": "9"}, tokyo, now=now) == []
    reset = gap_warnings(engine, month, None, tokyo, now=now)
    assert reset == ["gap: the saved cursor is gone (reset); collecting again from the start"]


def test_case_13_a_gap_goes_into_the_run_log_and_status(flaky, monkeypatch, engine):
    monkeypatch.setattr(Flaky, "broken", False)
    cfg = flaky / "config.toml"
    cfg.write_text(
        cfg.read_text().replace(
            'url = "https://feed.example/rss"',
            'url = "https://feed.example/rss"\nreach_back_days = 2',
        )
    )
    assert invoke(flaky, "collect").exit_code == 0
    with sqlite3.connect(flaky / "data" / "aggregator.db") as conn:  # that success was 3 days ago
        conn.execute("UPDATE sourceoutcome SET finished_at = datetime(finished_at, '-3 days')")
    assert invoke(flaky, "collect").exit_code == 0
    result = invoke(flaky, "status")
    assert "! gap: the last successful collection was 3 days ago" in result.output
    (_, outcomes), *_ = recent_runs(engine)
    assert any(w.startswith("gap:") for o in outcomes if o.source == "news" for w in o.warnings)


def test_case_21_backup_makes_a_consistent_copy_and_never_overwrites(project, tmp_path):
    assert invoke(project, "collect").exit_code == 0
    copy = tmp_path / "backup.db"
    result = invoke(project, "backup", str(copy))
    assert result.exit_code == 0, result.output
    with sqlite3.connect(copy) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM post").fetchone()[0] == EXAMPLE_POSTS
    again = invoke(project, "backup", str(copy))
    assert again.exit_code == 1 and "already exists" in again.output
