"""Surviving the night: SIGKILL mid-collection then a clean resume (cases 6, 18), Ctrl-C and SIGTERM
stopping after the current page (38), readers during a write (17), a read-only database and a full
disk (20). Real processes against a Mastodon-like server on 127.0.0.1."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from sqlalchemy import event

import aggregator.pipeline
from aggregator.scheduler import set_last_fire
from storage.db import open_database
from tests.helpers import database, invoke, live_project, spawn

T0 = datetime(2016, 11, 28, 12, 0, tzinfo=UTC)
PAGE = 40  # what the Mastodon connector asks for
POSTS = 130  # four pages per hashtag: 40, 40, 40, 10
WAIT = 60  # seconds: a guard against a hung test, never an assertion


def status(n: int) -> dict[str, Any]:
    sid = str(1000 + n)
    return {
        "id": sid,
        "uri": f"https://social.example/users/u{n % 7}/statuses/{sid}",
        "url": f"https://social.example/@u{n % 7}/{sid}",
        "created_at": (T0 + timedelta(minutes=n)).isoformat().replace("+00:00", "Z"),
        "account": {"acct": f"u{n % 7}", "display_name": f"User {n % 7}", "note": ""},
        "content": f"<p>Post {n} about Leeds #CoPro16 #EveryoneIncluded</p>",
        "tags": [{"name": "copro16"}, {"name": "everyoneincluded"}],
    }


class Timeline:
    """Every hashtag's timeline holds the same statuses; after `hold_after` requests, the next
    waits until `release` is set, so a test can act while the collector waits for a page."""

    def __init__(self) -> None:
        self.statuses = [status(n) for n in range(POSTS)]
        self.requests = 0
        self.hold_after: int | None = None
        self.holding = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()

    def page(self, path: str, params: dict[str, str]) -> tuple[list[dict], dict[str, str]]:
        with self.lock:
            self.requests += 1
            held = self.hold_after is not None and self.requests > self.hold_after
        if held:
            self.holding.set()
            self.release.wait(WAIT)
        newest = sorted(self.statuses, key=lambda s: s["id"], reverse=True)
        limit = int(params.get("limit", 20))
        if "max_id" in params:
            newest = [s for s in newest if s["id"] < params["max_id"]]
        if "min_id" in params:
            items = [s for s in newest if s["id"] > params["min_id"]][-limit:]
        else:
            items = newest[:limit]
        links = {}
        if items:
            nxt = urlencode({"limit": limit, "max_id": items[-1]["id"]})
            links["Link"] = f'<{self.base}{path}?{nxt}>; rel="next"'
        return items, links


@pytest.fixture
def timeline() -> Iterator[Timeline]:
    tl = Timeline()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            items, headers = tl.page(parts.path, dict(parse_qsl(parts.query)))
            body = json.dumps(items).encode()
            self.send_response(200)
            for name, value in {**headers, "Content-Type": "application/json"}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    tl.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield tl
    tl.release.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def snapshot(project: Path) -> dict[str, Any]:
    """What a collection leaves behind: posts, sightings, cursors."""
    with sqlite3.connect(database(project)) as conn:
        return {
            "integrity": conn.execute("PRAGMA integrity_check").fetchone()[0],
            "posts": sorted(r[0] for r in conn.execute("SELECT post_id FROM post")),
            "sightings": sorted(
                conn.execute(
                    "SELECT p.post_id, s.via FROM sighting s JOIN post p ON p.id = s.post_pk"
                )
            ),
            "cursor": [json.loads(r[0]) for r in conn.execute("SELECT cursor FROM sourcecursor")],
        }


def runs(project: Path) -> list[tuple[str, str, str | None]]:
    with sqlite3.connect(database(project)) as conn:
        return list(conn.execute("SELECT command, status, message FROM collectionrun ORDER BY id"))


@pytest.fixture
def reference(tmp_path: Path, timeline: Timeline) -> dict[str, Any]:
    """An uninterrupted collection of the same timeline."""
    project = live_project(tmp_path, "reference", timeline.base)
    result = invoke(project, "collect")
    assert result.exit_code == 0, result.output
    done = snapshot(project)
    assert len(done["posts"]) == POSTS and done["integrity"] == "ok"
    timeline.requests = 0
    return done


def held(proc: subprocess.Popen, timeline: Timeline) -> None:
    """Wait until the collector has saved `hold_after` pages and is waiting for the next one."""
    assert timeline.holding.wait(WAIT), proc.communicate(timeout=5)


@pytest.mark.slow  # kills a real process
def test_case_06_sigkill_mid_collection_then_rerun_equals_an_uninterrupted_run(
    tmp_path, timeline, reference
):
    project = live_project(tmp_path, "killed", timeline.base)
    timeline.hold_after = 2
    proc = spawn(project, "collect")
    held(proc, timeline)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=WAIT)
    timeline.release.set()
    killed = snapshot(project)
    assert killed["integrity"] == "ok"
    assert len(killed["posts"]) == 2 * PAGE  # the two saved pages, each with its cursor
    assert runs(project) == [("collect", "running", None)]

    timeline.hold_after = None
    again = invoke(project, "collect")  # the lock died with the killed process
    assert again.exit_code == 0, again.output
    assert snapshot(project) == reference  # nothing lost, nothing doubled
    first, second = runs(project)
    assert first[1] == "interrupted" and "pid" in first[2] and second[1] == "ok"


@pytest.mark.slow  # signals a real process
def test_case_38_ctrl_c_stops_after_this_page_and_a_rerun_completes(tmp_path, timeline, reference):
    project = live_project(tmp_path, "stopped", timeline.base)
    timeline.hold_after = 1
    proc = spawn(project, "collect")
    held(proc, timeline)
    proc.send_signal(signal.SIGINT)  # arrives while the second page is still on its way
    timeline.release.set()
    _, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 1, err
    assert "stopped on request after the current page" in err
    stopped = snapshot(project)
    assert stopped["integrity"] == "ok"
    assert len(stopped["posts"]) == 2 * PAGE  # the page in flight was saved whole, then it stopped
    assert runs(project)[0][1] == "interrupted"

    timeline.holding.clear()
    timeline.hold_after = None
    assert invoke(project, "collect").exit_code == 0
    assert snapshot(project) == reference


@pytest.mark.slow  # signals a real process
def test_case_38_sigterm_stops_the_scheduler_after_the_current_page(tmp_path, timeline, reference):
    now = datetime.now(UTC)
    due = now - timedelta(minutes=2)  # fired two minutes ago: within the grace, so caught up
    project = live_project(tmp_path, "scheduled", timeline.base, f"{due.minute} {due.hour} * * *")
    cfg = project / "config.toml"
    cfg.write_text(cfg.read_text().replace('timezone = "Europe/London"', 'timezone = "UTC"'))
    engine = open_database(f"sqlite:///{database(project)}")
    set_last_fire(engine, due - timedelta(days=1))  # it ran yesterday, and has been down since
    engine.dispose()
    timeline.hold_after = 1
    proc = spawn(project, "schedule")
    held(proc, timeline)
    proc.send_signal(signal.SIGTERM)
    timeline.release.set()
    _, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0, err
    assert "Stopped." in err
    assert len(snapshot(project)["posts"]) == 2 * PAGE
    assert runs(project)[0][:2] == ("schedule", "interrupted")


def test_case_17_readers_see_a_snapshot_while_a_write_is_open(project, monkeypatch):
    assert invoke(project, "collect").exit_code == 0
    db = project / "data" / "aggregator.db"
    writer = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE post SET text = 'half-written'")
    try:
        exported = invoke(project, "export", "-o", "-")
        assert exported.exit_code == 0, exported.output
        assert "half-written" not in exported.output and exported.output.count("\n") > 400
        assert invoke(project, "status").exit_code == 0
        # A second writer waits for the first instead of failing with "database is locked": the
        # first ends its transaction only once the command is taking the write lock.
        taking = threading.Event()
        _on_write_lock(monkeypatch, taking.set)
        ender = threading.Thread(target=lambda: taking.wait(WAIT) and writer.execute("ROLLBACK"))
        ender.start()
        tagged = invoke(project, "tag")
        ender.join(WAIT)
        assert tagged.exit_code == 0, tagged.output
        assert taking.is_set() and not writer.in_transaction
    finally:
        writer.close()


def _on_write_lock(monkeypatch: pytest.MonkeyPatch, then: Callable[[], object]) -> None:
    """`then()` each time an engine the command opens is about to take the write lock."""
    real = aggregator.pipeline.open_database

    def opened(url: str):
        engine = real(url)

        def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if statement == "BEGIN IMMEDIATE":
                then()

        event.listen(engine, "before_cursor_execute", before)
        return engine

    monkeypatch.setattr(aggregator.pipeline, "open_database", opened)


def _restricted(monkeypatch: pytest.MonkeyPatch, pragma: str) -> None:
    """Every engine the command opens runs `pragma` on each new connection."""
    real = aggregator.pipeline.open_database

    def opened(url: str):
        engine = real(url)
        event.listen(engine, "connect", lambda conn, _: conn.execute(pragma))
        engine.dispose()  # drop the connection create_all made before the pragma
        return engine

    monkeypatch.setattr(aggregator.pipeline, "open_database", opened)


def _cursor(project: Path) -> list[Any]:
    return snapshot(project)["cursor"]


def test_case_20_a_read_only_database_is_a_clear_error_and_moves_no_cursor(project, monkeypatch):
    assert invoke(project, "collect").exit_code == 0
    before = snapshot(project)
    example = project / "examples" / "transformathon-2016.jsonl"
    line = json.loads(example.read_text().splitlines()[0])
    with example.open("a") as fh:
        fh.write(json.dumps({**line, "id": "appended-1"}) + "\n")
    _restricted(monkeypatch, "PRAGMA query_only = ON")  # SQLite's own read-only error
    result = invoke(project, "collect")
    assert result.exit_code == 1
    assert "read-only" in result.output and "permissions" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert snapshot(project) == before


def test_case_20_a_full_disk_is_a_clear_error_and_moves_no_cursor(project, monkeypatch):
    assert invoke(project, "status").exit_code == 0  # creates the empty database
    with sqlite3.connect(project / "data" / "aggregator.db") as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    _restricted(monkeypatch, f"PRAGMA max_page_count = {pages + 3}")  # room for the run log only
    result = invoke(project, "collect")
    assert result.exit_code == 1
    assert "example" in result.output and "disk" in result.output
    after = snapshot(project)
    assert after["integrity"] == "ok" and after["posts"] == [] and after["cursor"] == []
