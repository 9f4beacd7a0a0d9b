"""Operating it: a cron line that never fires, a config copied beside another event's, a reader that
closes the pipe early, `status` after an interrupted run and with quarantined records, and what
--log-file records."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import connectors
from aggregator.alerts import digest
from aggregator.config import load_config
from aggregator.health import SourceHealth
from aggregator.logs import IN_SUMMARY, setup_logging, teardown_logging
from aggregator.pipeline import collect
from aggregator.scheduler import cron_problem
from aggregator.stamp import recorded_event
from connectors.base import ConnectorError, Page, Post
from storage.db import open_database
from storage.models import QuarantineRow
from storage.queries import save_page, start_run
from tests.helpers import TOKYO, in_zone, invoke

EVENT = "The People's Transformathon"  # the shipped config's event
LONDON = ZoneInfo("Europe/London")  # the shipped config's time zone
PIPE_BUFFER = 65536  # Linux's default: more output than this cannot all wait in the pipe


def with_event(project: Path, name: str, folder: Path | None = None) -> Path:
    """A copy of the project's config for another event, beside it (or in `folder`)."""
    text = (project / "config.toml").read_text(encoding="utf-8")
    copy = (folder or project) / "new-event.toml"
    copy.parent.mkdir(exist_ok=True)
    copy.write_text(text.replace(f'name = "{EVENT}"', f'name = "{name}"', 1), encoding="utf-8")
    return copy


# 1. A cron line that never fires


def test_case_35_cron_that_never_fires_is_a_config_error(project):
    cfg = project / "config.toml"
    text = cfg.read_text(encoding="utf-8")
    assert re.search(r'^cron = "[^"]*"', text, re.M)
    cfg.write_text(re.sub(r'^cron = "[^"]*"', 'cron = "0 2 31 2 *"', text, flags=re.M))
    result = invoke(cfg, "status")  # every command; `schedule` would have idled forever
    assert result.exit_code == 2
    assert "schedule.cron: '0 2 31 2 *' never fires" in result.output
    assert not (project / "data").exists()  # nothing ran


def test_a_cron_line_is_judged_by_its_next_fire_time():
    now = datetime(2025, 3, 1, tzinfo=UTC)
    assert cron_problem("0 2 29 2 *", LONDON, now) is None  # leap days: 2028
    assert cron_problem("0 2 * * *", LONDON, now) is None
    for never in ("0 2 30 2 *", "0 2 31 4 *", "0 2 31 2 *"):
        problem = cron_problem(never, LONDON, now)
        assert problem and "never fires" in problem and "'0 2 * * *'" in problem


# 2. A copied config shares the example's database


def test_a_config_copied_beside_another_events_warns_naming_both_and_the_fix(project):
    assert invoke(project / "config.toml", "collect").exit_code == 0
    copy = with_event(project, "Winter Summit 2027")
    database = project / "data" / "aggregator.db"
    for command in ("collect", "report", "status"):
        result = invoke(copy, command)
        assert result.exit_code == 0, result.output
        (line,) = [w for w in result.stderr.splitlines() if "holds the posts" in w]
        assert f'{database.resolve()} holds the posts of the event "{EVENT}"' in line
        assert "not 'Winter Summit 2027'" in line
        assert "[storage] database and [report] output" in line and "new folder" in line
    engine = open_database(load_config(copy).database_url)
    assert recorded_event(engine) == EVENT  # the first event keeps the database
    engine.dispose()
    assert "holds the posts" not in invoke(project / "config.toml", "report").stderr


def test_the_first_writing_command_records_the_event_and_a_new_folder_is_quiet(project, tmp_path):
    shutil.copytree(project / "examples", tmp_path / "winter" / "examples")
    copy = with_event(project, "Winter Summit 2027", tmp_path / "winter")
    assert invoke(copy, "status").exit_code == 0  # reading records nothing
    engine = open_database(load_config(copy).database_url)
    assert recorded_event(engine) is None
    result = invoke(copy, "tag")
    assert result.exit_code == 0 and "holds the posts" not in result.stderr
    assert recorded_event(engine) == "Winter Summit 2027"
    engine.dispose()


# 3. A reader that closes the pipe early


def run_into_closed_pipe(config: Path, *args: str, read_first: bool) -> tuple[int, str]:
    """Run the installed entry point with stdout into a pipe that is closed after one line (as
    `| head -1` does) or before anything; returns the exit code and stderr."""
    code = "from aggregator.cli import main; main()"
    err = config.parent / "stderr.txt"
    with err.open("wb") as stderr, subprocess.Popen(
        [sys.executable, "-c", code, "--config", str(config), *args],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr,
    ) as proc:  # fmt: skip
        assert proc.stdout is not None
        if read_first:
            assert proc.stdout.readline()
        proc.stdout.close()
        returncode = proc.wait(timeout=60)
    return returncode, err.read_text(encoding="utf-8")


@pytest.mark.slow  # three real processes: a closed pipe is only real in one
def test_a_reader_closing_the_pipe_early_is_a_normal_end(project):
    cfg = project / "config.toml"
    assert invoke(cfg, "collect").exit_code == 0
    assert len(invoke(cfg, "export", "--format", "jsonl").stdout) > 2 * PIPE_BUFFER
    assert run_into_closed_pipe(cfg, "export", "--format", "jsonl", read_first=True) == (0, "")
    for args in (["status"], ["--help"]):  # a reader gone before they write anything
        assert run_into_closed_pipe(cfg, *args, read_first=False) == (0, ""), args


# 4. Status after an interrupted run


def source_line(output: str, name: str = "example") -> str:
    (line,) = [x for x in output.splitlines() if x.startswith(f"  {name} (")]
    return line


def test_status_after_an_interrupted_run_reports_its_progress_not_never(project, config, engine):
    pages: list[Page] = []
    summary = collect(  # Ctrl-C during the first page: the run stops after it
        engine, config, on_page=lambda _, page: pages.append(page), should_stop=lambda: bool(pages)
    )
    assert summary.stopped and summary.sources[0].new_posts > 0
    result = invoke(project / "config.toml", "status")
    assert result.exit_code == 1  # the latest run was interrupted
    line = source_line(result.output)
    assert "never" not in line
    assert re.search(
        r"example \(jsonl\): interrupted; no complete run yet; last progress "
        r"\d{4}-\d\d-\d\d \d\d:\d\d \w+ \(interrupted after 1 pages\); new posts today",
        line,
    )
    data = json.loads(invoke(project / "config.toml", "status", "--json").stdout)
    example = next(s for s in data["sources"] if s["name"] == "example")
    assert example["last_success"] is None and example["progress"] == "interrupted after 1 pages"
    (run,) = data["runs"]
    started, progress, finished = (datetime.fromisoformat(t) for t in (
        run["started_at"], example["last_progress"], run["finished_at"]))  # fmt: skip
    assert started <= progress <= finished  # during that run


def test_status_after_a_killed_run_reports_the_posts_it_stored(project, engine):
    """A killed run leaves no outcome for the source it was collecting, but its pages are saved;
    their time is shown in the event's zone (Tokyo here: never the same clock as UTC)."""
    in_zone(project, "Asia/Tokyo")
    assert invoke(project / "config.toml", "collect").exit_code == 0
    start_run(engine, "run", pid=2**22 + 1)  # never finished
    when = datetime(2016, 11, 28, 13, tzinfo=UTC)
    later = datetime.now(UTC)
    save_page(engine, "example", Page([Post("mastodon", "late", when, "a", "hi")], None), now=later)
    line = source_line(invoke(project / "config.toml", "status").output)
    assert "example (jsonl): interrupted; last success " in line
    assert (
        f"last progress {later.astimezone(TOKYO):%Y-%m-%d %H:%M} JST (in a run that has not finished)"
        in line
    )


def test_a_source_that_never_stored_anything_still_says_never(project):
    assert invoke(project / "config.toml", "collect").exit_code == 0
    line = source_line(invoke(project / "config.toml", "status").output, "x")
    assert line == "  x (x) (disabled): not collected yet; last success never; no new posts yet"


# 5. Quarantined records


def test_status_counts_quarantined_records_and_says_where_they_are(project, engine):
    table = QuarantineRow.__table__  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for n in (3, 9):
            conn.execute(table.insert().values(
                source="example", location=f"line {n}", reason="created_at: year 9999 out of range",
                raw={"id": n}, first_seen=now, last_seen=now,
            ))  # fmt: skip
    result = invoke(project / "config.toml", "status")
    assert "2 record(s) quarantined" in result.output and "`quarantine` table" in result.output
    data = json.loads(invoke(project / "config.toml", "status", "--json").stdout)
    assert data["quarantined"] == 2


# 6. --log-file


def test_the_log_file_keeps_warnings_and_failures_with_their_times(flaky, tmp_path):
    log = tmp_path / "aggregator.log"
    copy = with_event(flaky, "Winter Summit 2027")
    # news fails; the first event is recorded
    assert invoke(flaky / "config.toml", "collect").exit_code == 1
    result = invoke(copy, "--log-file", str(log), "collect")
    assert result.exit_code == 1
    stamp = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ "
    text = log.read_text(encoding="utf-8")
    warned = r"WARNING aggregator.pipeline: the database .* holds the posts"  # pipeline.writing
    assert re.search(stamp + warned, text, re.M)
    assert re.search(stamp + r"ERROR aggregator: 1 source\(s\) failed: news$", text, re.M)
    failed = r"ERROR aggregator.pipeline: news: https://feed.example/rss answered HTTP 503 after 5"
    assert re.search(stamp + failed, text, re.M)  # pipeline.collect_source logs it IN_SUMMARY
    # the terminal says each failure once, in the CLI's words
    assert result.stderr.count("1 source(s) failed: news") == 1
    assert result.stderr.count("HTTP 503 after 5 attempts") == 1


def test_lines_in_the_summary_reach_the_log_file_but_not_the_terminal(tmp_path, capsys):
    log = tmp_path / "a.log"
    setup_logging(log_file=log)
    try:
        logging.getLogger("aggregator.pipeline").error("news: failed", extra=IN_SUMMARY)
        logging.getLogger("aggregator.pipeline").error("something else")
    finally:
        teardown_logging()
    assert capsys.readouterr().err == "ERROR aggregator.pipeline: something else\n"
    lines = log.read_text(encoding="utf-8").splitlines()
    assert [x.split(" ", 2)[2] for x in lines] == [
        "ERROR aggregator.pipeline: news: failed",
        "ERROR aggregator.pipeline: something else",
    ]


class HalfFeed:
    """A `feed` stand-in that stores one page, then fails (case 3: pages fetched are kept)."""

    def __init__(self, spec, **_):
        self.name = spec.name

    def fetch(self, cursor) -> Iterator[Page]:
        when = datetime(2016, 11, 28, 13, tzinfo=UTC)
        yield Page([Post("feed", "h1", when, "a", "hello")], {"n": 1})
        raise ConnectorError("https://feed.example/rss answered HTTP 503 after 5 attempts")


def test_a_source_failing_after_storing_pages_shows_that_progress(flaky, monkeypatch):
    original = connectors.registry()
    monkeypatch.setattr(connectors, "registry", lambda: {**original, "feed": HalfFeed})
    assert invoke(flaky / "config.toml", "collect").exit_code == 1
    line = source_line(invoke(flaky / "config.toml", "status").output, "news")
    assert line.startswith("  news (feed): FAILING 1 run(s) in a row; last error ")
    assert "; no complete run yet; last progress " in line and "(failed after 1 pages)" in line
    assert "never" not in line


def test_the_alert_digest_says_when_a_source_last_stored_posts(project):
    config = in_zone(project, "Asia/Tokyo")
    when = datetime(2016, 11, 28, 13, tzinfo=UTC)
    h = SourceHealth("news", "feed", True, failures_in_a_row=2, last_error="HTTP 503")
    h.last_progress, h.progress = when, "failed after 3 pages"
    text = digest(config, [h], now=when)
    assert "it has not finished a run yet, and last stored posts 2016-11-28 22:00 JST" in text
    assert "(failed after 3 pages)" in text and "never" not in text
