"""One instant, shown the same way wherever it appears: the story, `status`, an alert's digest and
the exports, for an event in Tokyo (nine hours off UTC, and off the suite's own St John's zone);
every time an export writes has one form; charts count real time across a clock change."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from aggregator.alerts import digest
from aggregator.config import load_config
from aggregator.health import SourceHealth
from connectors.base import Page, Post
from reports.charts import day_chart, spread, window
from storage.db import open_database
from storage.queries import finish_run, record_outcome, save_page, start_run
from tests.helpers import in_zone, invoke

# 13:05:17.549 in Tokyo on the event's day, during its second session (13:00-14:00 there)
POSTED = datetime(2016, 11, 28, 4, 5, 17, 549000, tzinfo=UTC)
EDITED = POSTED + timedelta(minutes=1, microseconds=1)
NEXT_DAY = datetime(2016, 11, 28, 16, 30, tzinfo=UTC)  # 01:30 on Tuesday 29 in Tokyo
STAMP = "2016-11-28 13:05 JST"  # what people read in status and alerts
EXPORT_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)")


@pytest.fixture
def tokyo(project):
    """The shipped project moved to Tokyo, holding two posts and one recorded run at POSTED."""
    config = in_zone(project, "Asia/Tokyo")
    engine = open_database(config.database_url)
    posts = [
        Post("mastodon", "https://m.example/1", POSTED, "ana@m.example",
             "Leg clubs bring district nurses and neighbours together, and the healing follows",
             author_name="Ana", url="https://m.example/@ana/1", edited_at=EDITED),
        Post("mastodon", "https://m.example/2", NEXT_DAY, "ben@m.example",
             "Still thinking about what the panel said on co-production this evening",
             author_name="Ben", url="https://m.example/@ben/2"),
    ]  # fmt: skip
    save_page(engine, "example", Page(posts), now=POSTED)
    run = start_run(engine, "collect", started_at=POSTED)
    record_outcome(engine, run, {"source": "example", "status": "ok", "new_posts": 2,
                                 "started_at": POSTED, "finished_at": POSTED, "warnings": []})  # fmt: skip
    finish_run(engine, run, "ok")
    engine.dispose()
    return project


def test_the_story_shows_the_instant_in_the_event_zone(tokyo):
    result = invoke(tokyo, "report")
    assert result.exit_code == 0, result.output
    site = tokyo / "site"
    story = json.loads((site / "story.json").read_text(encoding="utf-8"))
    posts = {p["post_id"]: p for part in story["parts"] for p in part["highlights"]}
    ana, ben = posts["https://m.example/1"], posts["https://m.example/2"]
    assert (ana["when"], ana["created_at"]) == ("13:05", "2016-11-28T13:05:17+09:00")
    assert (ben["when"], ben["created_at"]) == ("Tue 29 Nov, 01:30", "2016-11-29T01:30:00+09:00")
    example = next(s for s in story["overview"]["sources"] if s["name"] == "example")
    assert example["last_ok"] == "2016-11-28T13:05:17+09:00"
    assert "example (2 posts, last collected 28 November 2016 at 13:05)" in " ".join(
        story["overview"]["quality"]
    )
    html = (site / "index.html").read_text(encoding="utf-8")
    assert '<time datetime="2016-11-28T13:05:17+09:00">13:05</time>' in html
    markdown = (site / "report.md").read_text(encoding="utf-8")
    assert "[post by @ana@m.example at 13:05](https://m.example/@ana/1)" in markdown
    assert "[post by @ben@m.example on Tue 29 Nov at 01:30](https://m.example/@ben/2)" in markdown


def test_status_lines_and_json_show_the_instant_one_way_each(tokyo):
    lines = invoke(tokyo, "status").output
    assert f"run 1 (collect) {STAMP}: ok" in lines
    assert f"example (jsonl): ok; last success {STAMP}" in lines
    data = json.loads(invoke(tokyo, "status", "--json").stdout)
    (run,) = data["runs"]
    example = next(s for s in data["sources"] if s["name"] == "example")
    assert run["started_at"] == example["last_success"] == "2016-11-28T04:05:17.549Z"


def test_an_alert_digest_shows_the_instant_as_status_does(tokyo):
    config = load_config(tokyo / "config.toml")
    h = SourceHealth("news", "feed", True, last_success=POSTED, failures_in_a_row=2,
                     last_error="HTTP 503")  # fmt: skip
    text = digest(config, [h], "the database is locked", now=POSTED)
    assert f"the run at {STAMP} failed" in text
    assert f"it last worked {STAMP}" in text


def test_csv_and_jsonl_exports_write_the_instant_alike_and_every_time_one_way(tokyo):
    assert invoke(tokyo, "tag").exit_code == 0
    rows = list(csv.DictReader(io.StringIO(invoke(tokyo, "export").stdout)))
    lines = [
        json.loads(line)
        for line in invoke(tokyo, "export", "--format", "jsonl").stdout.splitlines()
    ]
    row = next(r for r in rows if r["post_id"] == "https://m.example/1")
    line = next(j for j in lines if j["id"] == "https://m.example/1")
    for record in (row, line):
        assert record["created_at"] == record["collected_at"] == "2016-11-28T04:05:17Z"
        assert record["created_local"] == "2016-11-28T13:05:17+09:00"
    assert line["edited_at"] == "2016-11-28T04:06:17Z"
    times = [r[k] for r in rows for k in ("created_at", "created_local", "collected_at")]
    times += [j[k] for j in lines for k in ("created_at", "created_local", "collected_at", "edited_at")
              if j[k] is not None]  # fmt: skip
    assert len(times) == 3 * len(rows) + 4 * len(lines) - 1  # only Ben's post was never edited
    assert all(EXPORT_TIME.fullmatch(t) for t in times), times
    assert all(t.endswith("Z") for r in rows for t in (r["created_at"], r["collected_at"]))


def test_the_manifest_writes_its_times_as_the_export_does(tokyo):
    assert invoke(tokyo, "export", "-o", str(tokyo / "posts.csv"), "--manifest").exit_code == 0
    manifest = json.loads((tokyo / "posts.csv.manifest.json").read_text(encoding="utf-8"))
    collection = manifest["collection"]
    assert (
        collection["first_created_at"]
        == collection["first_collected_at"]
        == ("2016-11-28T04:05:17Z")
    )
    assert collection["last_created_at"] == "2016-11-28T16:30:00Z"
    session = manifest["event"]["sessions"][1]
    assert (session["start"], session["end"]) == (
        "2016-11-28T13:00:00+09:00",
        "2016-11-28T14:00:00+09:00",
    )
    assert EXPORT_TIME.fullmatch(manifest["generated_at"]) and manifest["generated_at"][-1] == "Z"


LONDON = ZoneInfo("Europe/London")
CLOCKS_BACK = datetime(2016, 10, 29, 23, tzinfo=UTC)  # midnight BST; at 01:00 UTC it is GMT


def test_a_chart_across_the_clocks_going_back_labels_each_real_hour():
    posts = {CLOCKS_BACK + timedelta(minutes=m): 1 for m in (5, 65, 125, 185)}
    a = window(posts, CLOCKS_BACK, CLOCKS_BACK + timedelta(hours=4), 4, LONDON)
    assert a.counts == [1, 1, 1, 1]
    bars = [b.label for b in day_chart(a, []).bars]
    assert bars == ["00:00", "01:00", "01:00", "02:00"]  # 01:00 BST, then 01:00 GMT
    assert f"{a.end:%H:%M %Z}" == "03:00 GMT"
    hours = spread(posts, LONDON)
    assert hours is not None and hours.counts == [1, 1, 1, 1] and hours.peak == "00:00"


def test_daily_bins_across_the_clocks_going_back_are_event_local_days():
    posts = {CLOCKS_BACK + timedelta(days=d, hours=12): 1 for d in range(4)}  # noon, 29 Oct on
    days = spread(posts, LONDON)
    assert days is not None and days.peak_unit == "day" and days.counts == [1, 1, 1, 1]
    starts = [f"{days.bin_start(i):%d %H:%M %Z}" for i in range(5)]
    assert starts == [
        "30 00:00 BST",
        "31 00:00 GMT",
        "01 00:00 GMT",
        "02 00:00 GMT",
        "03 00:00 GMT",
    ]
    assert f"{days.end:%d %H:%M}" == "03 00:00"
