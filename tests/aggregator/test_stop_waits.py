"""Case 42: SIGTERM or Ctrl-C during a retry backoff or a rate-limit wait ends the wait at once;
the run is recorded as interrupted and tag and report do not run. The stop flag's wait, the HTTP
client sleeping through it, the pipeline (threads and an injected sleep), the command in-process,
and a real `aggregator` process against a server on 127.0.0.1 that answers 429 Retry-After: 600."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from aggregator.config import load_config
from aggregator.lock import StopFlag, StopRequested
from aggregator.pipeline import NightlySummary, nightly
from connectors.base import ConnectorError
from connectors.http import HttpClient
from storage.db import open_database
from tests.helpers import database, invoke, live_project, spawn

BASE = "https://slow.example"
WAIT = 10  # seconds: a guard against a hung test, never an assertion
LONG = 600  # what the server asks for: a wait no test may sit through


def outcomes(project: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str, int]]]:
    """(command, status) of each run and (source, status, pages) of each outcome, oldest first."""
    with sqlite3.connect(database(project)) as conn:
        runs = list(conn.execute("SELECT command, status FROM collectionrun ORDER BY id"))
        done = list(conn.execute("SELECT source, status, pages FROM sourceoutcome ORDER BY id"))
    return runs, done


def in_thread(job: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Run `job` in a thread; the list gets its result or the exception it raised."""
    out: list[Any] = []

    def target() -> None:
        try:
            out.append(job())
        except BaseException as exc:  # handed to the test to look at
            out.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, out


def test_case_42_a_stop_ends_a_wait_in_progress_in_another_thread():
    stop = StopFlag()
    thread, out = in_thread(lambda: stop.wait(LONG))
    stop.set()
    thread.join(WAIT)
    assert not thread.is_alive() and out == [True]
    assert stop.wait(LONG)  # the stop stands: a later wait ends at once too
    with pytest.raises(StopRequested, match="stopped on request"):
        stop.sleep(LONG)


def test_a_wait_with_no_stop_runs_its_time_and_says_so():
    stop = StopFlag()
    assert stop.wait(0.001) is False and stop.wait(0) is False
    stop.sleep(0.001)  # no stop: returns, raises nothing


@respx.mock
def test_case_42_the_http_client_gives_up_a_rate_limit_wait_when_stopped():
    stop = StopFlag()

    def answer(request: httpx.Request) -> httpx.Response:
        stop.set()  # the stop comes while the request is out; the wait after it must not happen
        return httpx.Response(429, headers={"Retry-After": str(LONG)})

    route = respx.get(f"{BASE}/x").mock(side_effect=answer)
    with HttpClient(sleep=stop.sleep) as http:
        thread, out = in_thread(lambda: http.get(f"{BASE}/x"))
        thread.join(WAIT)
    assert not thread.is_alive()
    (raised,) = out
    assert isinstance(raised, StopRequested) and not isinstance(raised, ConnectorError)
    assert route.call_count == 1  # not retried


@pytest.fixture
def slow(tmp_path: Path) -> Path:
    """A project whose one source, a Mastodon instance, is slow.example."""
    return live_project(tmp_path, "slow", BASE)


def nightly_in_thread(project: Path, stop: StopFlag, **context: Any):
    config = load_config(project / "config.toml")
    engine = open_database(config.database_url)
    thread, out = in_thread(lambda: nightly(engine, config, should_stop=stop, **context))
    return thread, out, engine


@respx.mock
def test_case_42_sigterm_during_a_rate_limit_wait_ends_the_night_as_interrupted(slow):
    stop = StopFlag()  # no sleep in the context: the pipeline makes the stop flag the wait

    def answer(request: httpx.Request) -> httpx.Response:
        stop.set()
        return httpx.Response(429, headers={"Retry-After": str(LONG)})

    route = respx.get(url__startswith=BASE).mock(side_effect=answer)
    thread, out, engine = nightly_in_thread(slow, stop)
    thread.join(WAIT)
    engine.dispose()
    assert not thread.is_alive()
    (done,) = out
    assert isinstance(done, NightlySummary), done
    assert done.collected.stopped and done.tagged is None and done.files == {}
    assert route.call_count == 1
    assert outcomes(slow) == ([("run", "interrupted")], [("live", "interrupted", 0)])
    assert not (slow / "site" / "index.html").exists()


@respx.mock
def test_case_42_a_stop_during_a_backoff_wait_ends_it(slow):
    cfg = slow / "config.toml"
    cfg.write_text(cfg.read_text() + f"backoff_seconds = {LONG}\n")  # the live source's table
    stop, waiting, waits = StopFlag(), threading.Event(), []

    def sleep(seconds: float) -> None:  # the flag's own wait, telling the test when it starts
        waits.append(seconds)
        waiting.set()
        stop.sleep(seconds)

    route = respx.get(url__startswith=BASE).mock(return_value=httpx.Response(503))
    thread, out, engine = nightly_in_thread(slow, stop, sleep=sleep)
    assert waiting.wait(WAIT)
    stop.set()  # while the backoff wait is going
    thread.join(WAIT)
    engine.dispose()
    assert not thread.is_alive() and isinstance(out[0], NightlySummary), out
    assert len(waits) == 1 and waits[0] >= 60  # a backoff capped at 120 s, jittered: long
    assert route.call_count == 1
    assert outcomes(slow) == ([("run", "interrupted")], [("live", "interrupted", 0)])


@respx.mock
def test_case_42_the_run_command_stopped_in_a_wait_exits_1_without_tag_or_report(slow):
    cfg = slow / "config.toml"  # were the wait not ended, it would be 30 s, then one more try
    cfg.write_text(cfg.read_text() + "max_wait_seconds = 30\nmax_attempts = 2\n")
    asked = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url)
        if len(asked) == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # the command's StopFlag hears it
        return httpx.Response(429, headers={"Retry-After": str(LONG)})

    respx.get(url__startswith=BASE).mock(side_effect=answer)
    result = invoke(cfg, "run")
    assert result.exit_code == 1, result.output
    assert "stopped on request" in result.stderr
    assert len(asked) == 1
    assert outcomes(slow) == ([("run", "interrupted")], [("live", "interrupted", 0)])
    assert not (slow / "site" / "index.html").exists()


class RateLimited:
    """A server answering every request 429 Retry-After: 600; `asked` is set at the first."""

    def __init__(self) -> None:
        self.asked = threading.Event()
        self.requests = 0


@pytest.fixture
def limited() -> Iterator[tuple[RateLimited, str]]:
    state = RateLimited()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"error": "Too many requests"}'
            self.send_response(429)
            self.send_header("Retry-After", str(LONG))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            state.requests += 1
            state.asked.set()

        def log_message(self, *args: object) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.mark.slow
@pytest.mark.parametrize("command", ["collect", "run"])
def test_case_42_sigterm_in_a_real_rate_limit_wait_stops_the_process(tmp_path, limited, command):
    server, base = limited
    project = live_project(tmp_path, command, base)
    proc = spawn(project, command)
    try:
        assert server.asked.wait(WAIT), "the collector never asked"
        proc.send_signal(signal.SIGTERM)  # it is now waiting 601 s to ask again
        _, err = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, err
    assert "stopped on request" in err and "Traceback" not in err
    assert server.requests == 1
    assert outcomes(project) == ([(command, "interrupted")], [("live", "interrupted", 0)])
    assert not (project / "site" / "index.html").exists()
