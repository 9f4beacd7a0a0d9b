"""The library gives a Python caller the command line's guarantees: `pipeline.run_nightly` takes
the writers' lock, marks the runs a killed process left behind, and alerts; `run_collect` and
`import_file` take the lock too; `reports.export.export_to` writes the export and its manifest
atomically. No CLI here: these are the calls a script or notebook would make."""

from __future__ import annotations

import csv
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import respx

from aggregator.config import Config, load_config
from aggregator.errors import EXIT_FAILED, EXIT_USAGE, OutputError, UsageError
from aggregator.lock import LockHeld, RunLock, lock_path
from aggregator.pipeline import import_file, reading, run_collect, run_nightly, writing
from aggregator.stamp import recorded_event
from reports.export import export_to
from reports.export_options import ExportOptions
from reports.manifest import manifest_path
from storage.db import open_database
from storage.queries import recent_runs, start_run
from tests.helpers import EXAMPLE

HOOK = "https://hooks.example/services/T0/B0/library-first"
ENV = {"AGGREGATOR_ALERT_WEBHOOK": HOOK}
GONE_PID = 2**22 + 1  # above Linux's largest pid: no process has it
EXAMPLE_POSTS = len(EXAMPLE.read_text(encoding="utf-8").splitlines())  # one post per line


@pytest.fixture
def alerting(project: Path) -> Config:
    """The shipped config plus a source whose file goes missing once the config is read (it fails
    every run, offline), and a webhook alert after one failure."""
    cfg = project / "config.toml"
    cfg.write_text(
        cfg.read_text()
        + '\n[[sources]]\nname = "lost"\ntype = "jsonl"\npath = "examples/gone.jsonl"\n'
        + '\n[alerts]\nwebhook_url_env = "AGGREGATOR_ALERT_WEBHOOK"\nafter_failures = 1\n'
    )
    gone = project / "examples" / "gone.jsonl"
    gone.touch()
    config = load_config(cfg)
    gone.unlink()
    return config


def runs(config: Config) -> dict[int, tuple[str, str | None]]:
    engine = open_database(config.database_url)
    try:
        return {run.id: (run.status, run.message) for run, _ in recent_runs(engine, 10)}
    finally:
        engine.dispose()


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


# -- the nightly job -------------------------------------------------------------------------------


@respx.mock
def test_a_second_caller_is_refused_while_the_lock_is_held_and_nothing_runs(alerting):
    hook = respx.post(HOOK).mock(return_value=httpx.Response(200))
    with RunLock(lock_path(alerting)), pytest.raises(LockHeld) as held:
        run_nightly(alerting, env=ENV)
    assert held.value.pid == os.getpid() and held.value.exit_code == EXIT_FAILED
    assert "a collection is already running" in str(held.value)
    assert runs(alerting) == {} and not hook.called  # no run recorded, no alert
    with RunLock(lock_path(alerting)):
        with pytest.raises(LockHeld):
            run_collect(alerting)
        with pytest.raises(LockHeld):
            import_file(alerting, EXAMPLE)
        with pytest.raises(LockHeld), writing(alerting):
            pass
    assert runs(alerting) == {}


def test_a_run_a_killed_process_left_running_is_marked_interrupted(project, config, engine):
    killed = start_run(engine, "run", pid=GONE_PID)
    done = run_nightly(config)
    assert not done.collected.failed and done.collected.new_posts == EXAMPLE_POSTS
    assert done.files["html"].is_file()
    status, message = runs(config)[killed]
    assert status == "interrupted" and f"pid {GONE_PID}" in (message or "")
    assert [status for status, _ in runs(config).values()] == ["ok", "interrupted"]
    with RunLock(lock_path(config)):  # released: free for the next caller
        pass


@respx.mock
def test_a_failing_source_sends_the_alert_once_the_lock_is_released(alerting):
    free: list[bool] = []

    def answer(request: httpx.Request) -> httpx.Response:
        with RunLock(lock_path(alerting)):  # LockHeld (the alert then fails) if still held
            free.append(True)
        return httpx.Response(200)

    hook = respx.post(HOOK).mock(side_effect=answer)
    done = run_nightly(alerting, env=ENV)
    assert [s.name for s in done.collected.failed] == ["lost"]
    assert "html" in done.files  # the report is still written
    assert hook.call_count == 1 and free == [True]
    text = json.loads(hook.calls.last.request.content)["text"]
    assert "Source 'lost' has failed 1 run(s) in a row" in text and "file not found" in text


@respx.mock
def test_a_run_that_raises_alerts_with_the_error_at_the_clocks_time_then_raises(alerting):
    hook = respx.post(HOOK).mock(return_value=httpx.Response(200))
    (alerting.base_dir / "site").write_text("a file where the report folder should be")
    at = datetime(2016, 11, 29, 2, 0, tzinfo=UTC)  # 02:00 in London in November
    with pytest.raises(OutputError, match="cannot write the report into") as err:
        run_nightly(alerting, env=ENV, clock=lambda: at)
    assert err.value.exit_code == EXIT_FAILED
    text = json.loads(hook.calls.last.request.content)["text"]
    assert "the run at 2016-11-29 02:00" in text and "cannot write the report into" in text
    ((status, message),) = runs(alerting).values()
    assert status == "failed" and (message or "").startswith("cannot write the report into")


def test_what_cannot_run_is_a_usage_error_before_the_lock(config):
    with RunLock(lock_path(config)):  # held: a usage error is found before the lock is asked for
        with pytest.raises(UsageError, match="no source named 'nope' \\(configured: example"):
            run_collect(config, only="nope")
        with pytest.raises(UsageError, match="cannot import 'csv' files") as err:
            import_file(config, EXAMPLE, "csv")
    assert err.value.exit_code == EXIT_USAGE


def test_writing_records_the_event_and_reading_does_not(project, config):
    with reading(config) as engine:
        assert recorded_event(engine) is None
    with writing(config) as engine:
        assert recorded_event(engine) == config.event.name


# -- the export ------------------------------------------------------------------------------------


def test_export_to_writes_the_file_and_its_manifest(example_loaded):
    config = load_config(example_loaded / "config.toml")
    out = example_loaded / "posts.csv"
    out.write_text("an older export\n", encoding="utf-8")
    with reading(config) as engine:
        done = export_to(engine, config, out, ExportOptions(), manifest=True)
    with out.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == done.stats.rows == EXAMPLE_POSTS
    assert done.manifest == manifest_path(out)
    data = json.loads(done.manifest.read_text(encoding="utf-8"))
    assert data["file"] == "posts.csv" and data["counts"]["posts"] == EXAMPLE_POSTS
    assert leftovers(example_loaded) == []


def test_an_export_that_fails_midway_leaves_the_old_file_and_no_manifest(
    example_loaded, monkeypatch
):
    import reports.export

    config = load_config(example_loaded / "config.toml")
    out = example_loaded / "posts.jsonl"  # a CSV is written by SQL: test_export_sql.py breaks it
    out.write_text("an older export\n", encoding="utf-8")
    real = reports.export.iter_records
    seen: list[str] = []

    def breaking(*args, **kwargs):
        records = real(*args, **kwargs)
        yield next(records)
        yield next(records)
        seen.append(out.read_text(encoding="utf-8"))  # what a reader sees while it is written
        raise RuntimeError("the database went away")

    monkeypatch.setattr(reports.export, "iter_records", breaking)
    with reading(config) as engine, pytest.raises(RuntimeError, match="went away"):
        export_to(engine, config, out, ExportOptions(fmt="jsonl"), manifest=True)
    assert seen == ["an older export\n"]
    assert out.read_text(encoding="utf-8") == "an older export\n"
    assert not manifest_path(out).exists() and leftovers(example_loaded) == []


def test_an_export_or_manifest_that_cannot_be_written_is_one_output_error(example_loaded):
    config = load_config(example_loaded / "config.toml")
    missing = example_loaded / "no-such-folder" / "posts.csv"
    blocked = example_loaded / "posts.csv"
    manifest_path(blocked).mkdir()  # a folder where the manifest should go
    with reading(config) as engine:
        with pytest.raises(OutputError, match=re.escape(f"cannot write {missing}: No such file")):
            export_to(engine, config, missing, ExportOptions())
        with pytest.raises(OutputError, match=r"cannot write the manifest beside .*posts\.csv"):
            export_to(engine, config, blocked, ExportOptions(), manifest=True)
    assert blocked.is_file()  # the export itself was written whole before the manifest failed
