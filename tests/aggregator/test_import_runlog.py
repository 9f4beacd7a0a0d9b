"""Imports are in the run log: one `import` run whose one source is the file, so a failed, stopped
or killed import is as visible in `aggregator status` as a collection."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aggregator.pipeline import import_pages
from connectors.base import ConnectorError, Page, Post
from tests.helpers import EXAMPLE, ROOT, invoke

WAIT = 60  # seconds: a guard against a hung test, never an assertion
LINES = len(EXAMPLE.read_text(encoding="utf-8").splitlines())


def run_log(project: Path) -> list[dict[str, Any]]:
    """Every run, oldest first, each with its source outcomes, as stored."""
    with sqlite3.connect(project / "data" / "aggregator.db") as conn:
        conn.row_factory = sqlite3.Row
        runs = [dict(r) for r in conn.execute("SELECT * FROM collectionrun ORDER BY id")]
        for run in runs:
            run["sources"] = [
                dict(o)
                for o in conn.execute(
                    "SELECT * FROM sourceoutcome WHERE run_id = ? ORDER BY id", (run["id"],)
                )
            ]
    return runs


def brief(run: dict[str, Any]) -> tuple:
    return (
        run["command"],
        run["status"],
        [(o["source"], o["status"], o["new_posts"], o["updated_posts"], o["rejected"])
         for o in run["sources"]],
    )  # fmt: skip


def test_an_import_is_a_run_whose_one_source_is_the_file(project):
    assert invoke(project, "import", str(EXAMPLE)).exit_code == 0
    assert invoke(project, "import", str(EXAMPLE)).exit_code == 0  # again: nothing new
    first, again = run_log(project)
    source = f"import:{EXAMPLE.name}"
    assert brief(first) == ("import", "ok", [(source, "ok", LINES, 0, 0)])
    assert brief(again) == ("import", "ok", [(source, "ok", 0, 0, 0)])
    assert first["finished_at"] and first["message"] is None
    status = invoke(project, "status", "--json")
    assert status.exit_code == 0, status.output
    latest = json.loads(status.stdout)["runs"][0]
    assert (latest["command"], latest["status"]) == ("import", "ok")
    assert latest["sources"][0]["source"] == source


def test_an_import_where_every_line_is_bad_is_a_failed_run(project):
    bad = project / "bad.jsonl"
    bad.write_text("{oops\nnot json\n[1, 2]\n", encoding="utf-8")
    result = invoke(project, "import", str(bad))
    assert result.exit_code == 1
    (run,) = run_log(project)
    assert brief(run) == ("import", "failed", [("import:bad.jsonl", "failed", 0, 0, 3)])
    assert run["message"] == "no post could be read from bad.jsonl: every line was skipped"
    status = invoke(project, "status")
    assert status.exit_code == 1 and "(import)" in status.stdout and "failed" in status.stdout


def post(n: int) -> Post:
    return Post("test", f"p{n}", datetime(2016, 11, 28, 13, n, tzinfo=UTC), "a", f"post {n}")


def pages_then(error: BaseException) -> Iterator[Page]:
    yield Page([post(1), post(2)], None, ["line 3: broken"])
    raise error


@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        (KeyboardInterrupt(), "interrupted", "stopped before the run finished"),
        (ConnectorError("archive.jsonl: unreadable at byte 812"), "failed",
         "archive.jsonl: unreadable at byte 812"),
    ],
    ids=["ctrl-c", "error"],
)  # fmt: skip
def test_an_import_an_exception_ends_is_recorded_then_raised(
    project, engine, error, status, message
):
    with pytest.raises(type(error)):
        import_pages(engine, project / "archive.jsonl", pages_then(error))
    (run,) = run_log(project)
    # what the first page stored is counted
    assert brief(run) == ("import", status, [("import:archive.jsonl", status, 2, 0, 1)])
    assert run["message"] == message and run["sources"][0]["error"] == message


@pytest.mark.slow
def test_a_killed_import_is_marked_interrupted_and_shown_by_status(project):
    """A real process imports one page, then is killed while reading the next."""
    script = textwrap.dedent(f"""
        import sys
        from datetime import UTC, datetime
        from pathlib import Path
        from aggregator.config import load_config
        from aggregator.pipeline import import_pages
        from connectors.base import Page, Post
        from storage.db import open_database

        def pages():
            yield Page([Post("test", "p1", datetime(2016, 11, 28, 13, tzinfo=UTC), "a", "one")])
            print("saved", flush=True)
            sys.stdin.readline()  # killed here
            yield Page([])

        config = load_config(Path({str(project / "config.toml")!r}))
        import_pages(open_database(config.database_url), Path("slow.jsonl"), pages())
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "saved", proc.stderr.read()
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    (run,) = run_log(project)
    assert (run["command"], run["status"], run["pid"]) == ("import", "running", proc.pid)

    status = invoke(project, "status")  # reads only: says it, leaves the row to a writer
    assert status.exit_code == 1
    assert "(import)" in status.stdout and "interrupted" in status.stdout
    assert invoke(project, "tag").exit_code == 0  # the next writer marks it
    marked = run_log(project)[0]
    assert marked["status"] == "interrupted" and f"pid {proc.pid}" in marked["message"]
