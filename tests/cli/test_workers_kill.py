"""Distributed workers as real processes on a real PostgreSQL (AGGREGATOR_TEST_POSTGRES_URL): two
`aggregator worker` processes and `aggregator run` against a slow Mastodon-shaped server on
127.0.0.1. Every source is collected exactly once and never by two workers at once; a worker
killed with SIGKILL in the middle of a source has its job finished by the other, from the saved
cursor, with no post lost and no page fetched twice; a second `run` on the same database is
refused while the first holds the lock."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from sqlalchemy import create_engine, text

from tests.helpers import ROOT, FakeInstance, many, postgres_database

PG_URL = os.environ.get("AGGREGATOR_TEST_POSTGRES_URL", "")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not PG_URL, reason="set AGGREGATOR_TEST_POSTGRES_URL to run it"),
]
WAIT = 60  # seconds any one step may take before the test gives up
DELAY = 0.05  # every answer waits this long: a slow server, so jobs overlap
VICTIM = "victim"  # the source whose worker is killed in the middle of it
SOURCES = {VICTIM: many(100), **{f"s{n}": many(45, start=1000 * n) for n in range(1, 5)}}
STALL = 3  # [workers] stall_seconds


class Timelines:
    """Each source's tag timeline under /<source>/; counts what each source was asked, the most
    requests any one source had in flight at once, and holds the victim's second request (its
    first page is saved by then) until the client hangs up."""

    def __init__(self) -> None:
        # links are written as paths here; the handler puts the server's address in front
        self.instances = {name: FakeInstance("", statuses) for name, statuses in SOURCES.items()}
        self.lock = threading.Lock()
        self.asked: Counter[str] = Counter()
        self.first_pages: Counter[str] = Counter()  # requests without min_id or max_id
        self.in_flight: Counter[str] = Counter()
        self.most_at_once: Counter[str] = Counter()
        self.held = threading.Event()  # the victim's worker is waiting on its second page

    def answer(self, target: str) -> tuple[int, Any, dict[str, str], bool]:
        parts = urlsplit(target)
        name = parts.path.split("/")[1]
        params = dict(parse_qsl(parts.query))
        with self.lock:
            self.asked[name] += 1
            self.first_pages[name] += not ({"min_id", "max_id"} & set(params))
            hold = name == VICTIM and self.asked[name] == 2
        code, body, headers = self.instances[name].page(parts.path, params)
        return code, body, headers, hold

    @contextlib.contextmanager
    def flying(self, name: str) -> Iterator[None]:
        with self.lock:
            self.in_flight[name] += 1
            self.most_at_once[name] = max(self.most_at_once[name], self.in_flight[name])
        try:
            yield
        finally:
            with self.lock:
                self.in_flight[name] -= 1


def serve(world: Timelines) -> tuple[ThreadingHTTPServer, threading.Thread, str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            base = f"http://127.0.0.1:{self.server.server_address[1]}"
            name = urlsplit(self.path).path.split("/")[1]
            with world.flying(name):
                code, body, headers, hold = world.answer(self.path)
                if hold:
                    self.hold()
                    return
                time.sleep(DELAY)
            data = json.dumps(body).encode()
            self.send_response(code)
            for key, value in headers.items():
                self.send_header(key, value.replace("<", f"<{base}", 2) if key == "Link" else value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(data)

        def hold(self) -> None:
            """Tell the test the worker is here, and answer no more until it hangs up."""
            world.held.set()
            self.close_connection = True
            self.connection.settimeout(WAIT)
            with contextlib.suppress(OSError):
                self.rfile.read()  # returns once the killed worker's socket is closed

        def log_message(self, *args: object) -> None:
            return

    class Quiet(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            if not isinstance(sys.exc_info()[1], OSError):  # a killed worker hangs up: expected
                super().handle_error(request, client_address)

    httpd = Quiet(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    return httpd, thread, f"http://127.0.0.1:{httpd.server_address[1]}"


@pytest.fixture
def world() -> Iterator[tuple[Timelines, str]]:
    timelines = Timelines()
    httpd, thread, base = serve(timelines)
    yield timelines, base
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def database() -> Iterator[str]:
    with postgres_database(PG_URL) as url:
        yield url


def make_project(folder: Path, url: str, base: str) -> Path:
    folder.mkdir()
    text_ = (
        '[event]\nname = "Workers"\ntimezone = "UTC"\nhashtags = ["CoPro16"]\n'
        f'[storage]\ndatabase = "{url}"\n'
        f"[workers]\ndistributed = true\nstall_seconds = {STALL}\n"
        '[[sessions]]\nid = "a"\ntitle = "A"\nstart = "2016-11-28T12:00"\nend = "2016-11-28T13:00"\n'
    )
    for name in SOURCES:
        text_ += (f'\n[[sources]]\nname = "{name}"\ntype = "mastodon"\n'
                  f'instance = "{base}/{name}"\nmax_attempts = 1\n')  # fmt: skip
    (folder / "config.toml").write_text(text_, encoding="utf-8")
    return folder


def command() -> list[str]:
    """The installed console script, else the same entry point through this interpreter."""
    script = Path(sys.executable).parent / "aggregator"
    found = str(script) if script.exists() else shutil.which("aggregator")
    return [found] if found else [sys.executable, "-c", "from aggregator.cli import main; main()"]


def spawn(project: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*command(), "--config", str(project / "config.toml"), *args],
        cwd=project, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def end(proc: subprocess.Popen) -> None:
    """SIGKILL it if it still runs, and close its pipes."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.1)


def query(url: str, sql: str) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql)))
    finally:
        engine.dispose()


def stored_ids(url: str) -> Counter[str]:
    rows = query(url, "SELECT s.source, p.post_id FROM sighting s JOIN post p ON p.id = s.post_pk")
    return Counter(f"{source}:{post_id}" for source, post_id in rows)


def served_ids() -> Counter[str]:
    return Counter(
        f"{name}:https://origin.example/users/trwnh/statuses/{s['id']}"
        for name, statuses in SOURCES.items()
        for s in statuses
    )


def test_a_killed_workers_job_is_finished_by_the_other_and_runs_exclude_each_other(
    tmp_path, world, database
):
    timelines, base = world
    project = make_project(tmp_path / "p", database, base)
    first = spawn(project, "worker", "--concurrency", "1")
    second = run = None
    try:
        until(lambda: query(database, "SELECT to_regclass('procrastinate_workers')")[0][0]
              and query(database, "SELECT count(*) FROM procrastinate_workers")[0][0] == 1,
              "the first worker to start")  # fmt: skip
        run = spawn(project, "run")
        until(timelines.held.is_set, "the first worker to reach the victim's second page")

        refused = spawn(project, "run")  # the first run holds the database's writers' lock
        out, err = refused.communicate(timeout=WAIT)
        assert refused.returncode == 1, (out, err)
        assert f"a collection is already running (pid {run.pid} on " in err
        assert len(err.strip().splitlines()) == 1, err

        second = spawn(project, "worker", "--concurrency", "2")
        until(lambda: all(timelines.asked[f"s{n}"] >= 2 for n in range(1, 5)),
              "the second worker to collect the other sources")  # fmt: skip
        status = spawn(project, "status", "--json")
        out, err = status.communicate(timeout=WAIT)
        queue = json.loads(out)["workers"]
        assert {int(p.split("@")[0]) for p in queue["processes"]} == {first.pid, second.pid}
        assert VICTIM in [j["source"] for j in queue["running"]], queue  # held at the server
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=WAIT)

        out, err = run.communicate(timeout=WAIT)  # the second worker takes the victim over
        assert run.returncode == 0, (out, err)
    finally:
        for proc in (first, second, run):
            if proc is not None:
                end(proc)
    assert first.returncode == -signal.SIGKILL

    assert stored_ids(database) == served_ids()  # no gap, and no post stored twice
    assert timelines.first_pages == Counter(dict.fromkeys(SOURCES, 1))  # nothing fetched again
    assert set(timelines.most_at_once.values()) == {1}  # never two requests for one source
    runs = query(database, "SELECT id, command, status FROM collectionrun")
    assert [(r.command, r.status) for r in runs] == [("run", "ok")]
    outcomes = query(database, "SELECT source, status, new_posts, updated_posts FROM sourceoutcome")
    assert sorted((o.source, o.status) for o in outcomes) == sorted((n, "ok") for n in SOURCES)
    victim = next(o for o in outcomes if o.source == VICTIM)
    assert victim.updated_posts == 0 and victim.new_posts == len(SOURCES[VICTIM]) - 40
    jobs = query(database, "SELECT args->>'source' AS source, status::text, attempts "
                           "FROM procrastinate_jobs")  # fmt: skip
    assert sorted((j.source, j.status) for j in jobs) == sorted((n, "succeeded") for n in SOURCES)
    # the victim's first attempt was killed, its second finished it; every other job ran once
    assert {j.source: j.attempts for j in jobs} == {n: 1 + (n == VICTIM) for n in SOURCES}


def test_a_worker_stops_on_sigterm_and_refuses_a_config_that_is_not_distributed(
    tmp_path, world, database
):
    _, base = world
    project = make_project(tmp_path / "p", database, base)
    worker = spawn(project, "worker")
    until(lambda: query(database, "SELECT to_regclass('procrastinate_workers')")[0][0]
          and query(database, "SELECT count(*) FROM procrastinate_workers")[0][0] == 1,
          "the worker to start")  # fmt: skip
    worker.send_signal(signal.SIGTERM)
    out, err = worker.communicate(timeout=WAIT)
    assert worker.returncode == 0, (out, err)
    assert query(database, "SELECT count(*) FROM procrastinate_workers")[0][0] == 0  # signed off

    config = project / "config.toml"
    config.write_text(config.read_text().replace("distributed = true", "distributed = false"))
    refused = spawn(project, "worker")
    out, err = refused.communicate(timeout=WAIT)
    assert refused.returncode == 2
    assert "[workers] distributed = true" in err and len(err.strip().splitlines()) == 1, err
