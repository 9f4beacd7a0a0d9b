"""Sources collected at once ([collect] concurrency): several Mastodon instances on one server on
127.0.0.1 whose handlers meet at a barrier, so a test passes only if the sources' requests are out
together (never by timing); one writer saves every page with its cursor; a failing source, a page
that cannot be saved and a stop each end only what they should; every outcome is recorded, each as
its source finishes. The barriers' timeouts only keep a broken build from hanging."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import respx

import connectors
from aggregator import pipeline
from aggregator.config import Config, ConfigError, SourceConfig, load_config
from aggregator.lock import StopFlag
from aggregator.pipeline import CollectSummary, collect
from connectors.base import ConnectorError, Page, Post
from connectors.http import HttpClient
from connectors.settings import Retry
from storage.db import open_database
from tests.helpers import ROOT, FakeClock, FakeInstance, client, database, make_status

WAIT = 10  # seconds: a guard against a hung test, never an assertion
STATUSES = 50  # per instance: pages of 40 and 10, then an empty page
Hold = Callable[[str, int], int | None]  # (instance, its request number) -> a status to answer


class Instances:
    """Mastodon instances at http://127.0.0.1:PORT/<name>, paging like the real server. Records
    how many requests are out at once, and lets a test hold each request (`hold`) before it is
    answered, or answer it with an error status instead (429 with Retry-After: 600)."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.base = ""
        self.timelines: dict[str, FakeInstance] = {}
        self.lock = threading.Lock()
        self.out = 0
        self.most_out = 0  # the most requests out at once
        self.asked: dict[str, int] = dict.fromkeys(names, 0)
        self.hold: Hold = lambda name, n: None

    def start(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        for name in self.names:
            statuses = [
                make_status(str(n), minutes=n, uri=f"https://{name}.example/statuses/{n}",
                            url=f"https://{name}.example/@u/{n}")
                for n in range(1, STATUSES + 1)
            ]  # fmt: skip
            self.timelines[name] = FakeInstance(f"{self.base}/{name}", statuses)

    def answer(self, path: str) -> tuple[int, Any, dict[str, str]]:
        name, _, rest = path.lstrip("/").partition("/")
        url = urlsplit(f"/{rest}")
        with self.lock:
            self.asked[name] += 1
            n = self.asked[name]
            self.out += 1
            self.most_out = max(self.most_out, self.out)
        try:
            status = self.hold(name, n)
            if status is not None:  # a 429 asks for a wait no test may sit through
                return (
                    status,
                    {"error": "not today"},
                    {"Retry-After": "600"} if status == 429 else {},
                )
            return self.timelines[name].page(url.path, dict(parse_qsl(url.query)))
        finally:
            with self.lock:
                self.out -= 1


@pytest.fixture
def instances() -> Iterator[Instances]:
    world = Instances(["one", "two", "three"])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code, body, headers = world.answer(self.path)
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    world.start(httpd.server_address[1])
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield world
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def project(
    tmp_path: Path, world: Instances, extra: str = "", only: tuple[str, ...] = (), attempts: int = 1
) -> Config:
    """The shipped config with the bundled example off and one Mastodon source per instance (or
    those named in `only`), following #CoPro16 with `attempts` tries a request; then `extra`."""
    folder = tmp_path / "project"
    folder.mkdir(parents=True)
    text = (
        (ROOT / "config.toml")
        .read_text(encoding="utf-8")
        .replace(
            'path = "examples/transformathon-2016.jsonl"\nenabled = true',
            'path = "examples/transformathon-2016.jsonl"\nenabled = false',
        )
    )
    for name in only or world.names:
        text += (f'\n[[sources]]\nname = "{name}"\ntype = "mastodon"\n'
                 f'instance = "{world.base}/{name}"\nhashtags = ["CoPro16"]\n'
                 f"max_attempts = {attempts}\n")  # fmt: skip
    (folder / "config.toml").write_text(text + extra, encoding="utf-8")
    return load_config(folder / "config.toml")


def run(config: Config, **options: Any) -> CollectSummary:
    engine = open_database(config.database_url)
    try:
        return collect(engine, config, **options)
    finally:
        engine.dispose()


def stored(config: Config) -> dict[str, Any]:
    """What the database holds: runs, outcomes (in the order recorded), posts and cursors."""
    with sqlite3.connect(database(config.base_dir)) as conn:
        return {
            "runs": list(conn.execute("SELECT status FROM collectionrun ORDER BY id")),
            "outcomes": list(
                conn.execute(
                    "SELECT source, status, new_posts, pages FROM sourceoutcome ORDER BY id"
                )
            ),
            "posts": dict(conn.execute("SELECT source, count(*) FROM post GROUP BY source")),
            "duplicates": list(
                conn.execute(
                    "SELECT post_id FROM post GROUP BY platform, post_id HAVING count(*) > 1"
                )
            ),
            "cursors": {r[0] for r in conn.execute("SELECT source FROM sourcecursor")},
        }


def meet(parties: int, action: Callable[[], None] | None = None) -> Hold:
    """Each instance's first request waits until `parties` of them are out (then `action` runs,
    before any is answered): only sources collected at once get past it."""
    barrier = threading.Barrier(parties, action=action, timeout=WAIT)

    def hold(name: str, n: int) -> int | None:
        if n == 1:
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                return 504  # the others never came: the source fails, and the test with it
        return None

    return hold


def test_sources_are_collected_at_once_and_every_outcome_recorded(tmp_path, instances):
    config = project(tmp_path, instances)
    instances.hold = meet(3)
    summary = run(config)
    assert [(s.name, s.status, s.new_posts, s.pages) for s in summary.sources] == [
        (name, "ok", STATUSES, 3) for name in instances.names
    ]  # in the config's order, whichever finished first
    assert instances.most_out == 3
    done = stored(config)
    assert done["runs"] == [("ok",)]
    assert sorted(done["outcomes"]) == sorted((n, "ok", STATUSES, 3) for n in instances.names)
    assert done["posts"] == dict.fromkeys(instances.names, STATUSES) and done["duplicates"] == []
    assert done["cursors"] == set(instances.names)
    again = run(config)  # each resumes from its own cursor: nothing new, nothing twice
    assert [(s.status, s.new_posts) for s in again.sources] == [("ok", 0)] * 3
    assert stored(config)["posts"] == done["posts"]


def test_each_outcome_is_recorded_as_its_source_finishes(tmp_path, instances, monkeypatch):
    config = project(tmp_path, instances)
    recorded: dict[str, threading.Event] = {n: threading.Event() for n in instances.names}
    original = pipeline.record_outcome

    def record(engine: Any, run_id: int, outcome: dict[str, Any]) -> None:
        original(engine, run_id, outcome)
        recorded[outcome["source"]].set()

    monkeypatch.setattr(pipeline, "record_outcome", record)
    seen_while_three_ran: list[bool] = []

    def hold(name: str, n: int) -> int | None:
        if name == "three" and n == 2:  # "three" is mid-way while "one" and "two" end
            seen_while_three_ran.append(
                recorded["one"].wait(WAIT) and recorded["two"].wait(WAIT)
            )  # fmt: skip
        return None

    instances.hold = hold
    summary = run(config)
    assert seen_while_three_ran == [True]
    assert [s.status for s in summary.sources] == ["ok"] * 3
    assert [o[0] for o in stored(config)["outcomes"]][-1] == "three"


def test_concurrency_1_collects_one_source_after_another(tmp_path, instances):
    config = project(tmp_path, instances, "\n[collect]\nconcurrency = 1\n")
    assert config.collect.concurrency == 1
    summary = run(config)
    assert [(s.name, s.status) for s in summary.sources] == [(n, "ok") for n in instances.names]
    assert instances.most_out == 1
    assert [o[0] for o in stored(config)["outcomes"]] == instances.names


class Refused:
    """A source that fails before its first page: its outcome comes at once."""

    def __init__(self, spec: Any, **_: Any) -> None:
        raise ConnectorError(f"{spec.name} refused to start")


def test_more_sources_than_workers_each_get_a_turn_and_an_outcome(tmp_path, instances, monkeypatch):
    original = connectors.registry
    monkeypatch.setattr(connectors, "registry", lambda: {**original(), "refused": Refused})
    config = project(tmp_path, instances, "\n[collect]\nconcurrency = 2\n")
    refused = [SourceConfig(name=f"refused{n}", type="refused", enabled=True) for n in range(4)]
    config = config.__class__(**{**config.__dict__, "sources": (*refused, *config.sources)})
    summary = run(config)
    assert [(s.name, s.status) for s in summary.sources] == [
        *((f"refused{n}", "failed") for n in range(4)),
        *((n, "ok") for n in instances.names),
    ]
    assert instances.most_out <= 2  # never more at once than [collect] concurrency
    assert sorted(o[0] for o in stored(config)["outcomes"]) == sorted(
        s.name for s in summary.sources
    )


def test_case_03_a_failing_source_does_not_stop_the_others_collected_with_it(
    tmp_path, instances, caplog
):
    config = project(tmp_path, instances)
    met = meet(3)

    def hold(name: str, n: int) -> int | None:
        failed = met(name, n)  # all three out at once; then "two" fails
        return failed or (500 if name == "two" else None)

    instances.hold = hold
    with caplog.at_level(logging.INFO, logger="aggregator.pipeline"):
        summary = run(config)
    by_name = {s.name: s for s in summary.sources}
    assert by_name["two"].status == "failed" and "HTTP 500" in (by_name["two"].error or "")
    assert [(by_name[n].status, by_name[n].new_posts) for n in ("one", "three")] == [
        ("ok", STATUSES)
    ] * 2
    done = stored(config)
    assert done["runs"] == [("failed",)]
    assert sorted(o[:2] for o in done["outcomes"]) == [
        ("one", "ok"), ("three", "ok"), ("two", "failed"),
    ]  # fmt: skip
    assert "two" not in done["posts"] and "two" not in done["cursors"]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].startswith("two: ")  # log lines name their source


class Unsaveable:
    """A source whose second page carries a cursor the database cannot hold."""

    def __init__(self, spec: Any, **_: Any) -> None:
        self.name = spec.name

    def fetch(self, cursor: Any) -> Iterator[Page]:
        when = datetime(2016, 11, 28, 13, tzinfo=UTC)
        yield Page([Post("test", "kept-1", when, "a", "kept")], {"page": 1})
        yield Page([Post("test", "lost-2", when, "a", "lost")], {"page": object()})
        yield Page([Post("test", "never-3", when, "a", "never")], {"page": 3})


def test_a_page_the_writer_cannot_save_fails_its_own_source_only(tmp_path, instances, monkeypatch):
    original = connectors.registry
    monkeypatch.setattr(connectors, "registry", lambda: {**original(), "unsaveable": Unsaveable})
    config = project(tmp_path, instances)
    extra = SourceConfig(name="odd", type="unsaveable", enabled=True)
    config = config.__class__(**{**config.__dict__, "sources": (extra, *config.sources)})
    summary = run(config)
    by_name = {s.name: s for s in summary.sources}
    assert by_name["odd"].status == "failed" and by_name["odd"].pages == 1
    assert [by_name[n].status for n in instances.names] == ["ok"] * 3
    with sqlite3.connect(database(config.base_dir)) as conn:
        kept = {r[0] for r in conn.execute("SELECT post_id FROM post WHERE source = 'odd'")}
        cursor = conn.execute("SELECT cursor FROM sourcecursor WHERE source = 'odd'").fetchone()
    assert kept == {"kept-1"}  # the page it could not save was saved not at all, cursor included
    assert cursor == ('{"page": 1}',)


def test_case_38_a_stop_ends_every_source_after_its_current_page_and_the_rerun_goes_on(
    tmp_path, instances
):
    config = project(tmp_path, instances)
    stop = StopFlag()
    instances.hold = meet(3, action=stop.set)  # asked while each source's first page is out
    summary = run(config, should_stop=stop)
    assert summary.stopped
    assert [(s.status, s.pages, s.new_posts) for s in summary.sources] == [
        ("interrupted", 1, 40)
    ] * 3
    assert instances.asked == dict.fromkeys(instances.names, 1)  # no source asked again
    done = stored(config)
    assert done["runs"] == [("interrupted",)] and len(done["outcomes"]) == 3
    assert done["cursors"] == set(instances.names)  # each page saved with its cursor

    instances.hold = lambda name, n: None
    again = run(config, should_stop=StopFlag())
    assert [(s.status, s.new_posts) for s in again.sources] == [("ok", STATUSES - 40)] * 3
    final = stored(config)
    assert final["posts"] == dict.fromkeys(instances.names, STATUSES)
    assert final["duplicates"] == []


def test_case_42_a_stop_ends_one_sources_wait_while_another_ends_after_its_page(
    tmp_path, instances
):
    config = project(tmp_path, instances, only=("two", "three"), attempts=2)
    stop, waiting, slept = StopFlag(), threading.Event(), []

    def sleep(seconds: float) -> None:  # the flag's own wait, telling the server it began
        slept.append(seconds)
        waiting.set()
        stop.sleep(seconds)

    def hold(name: str, n: int) -> int | None:
        if name == "two":
            return 429
        if waiting.wait(WAIT):  # "three" answers once "two" waits, and asks them to stop
            stop.set()
        return None

    instances.hold = hold
    summary = run(config, should_stop=stop, sleep=sleep)
    assert [(s.name, s.status, s.pages) for s in summary.sources] == [
        ("two", "interrupted", 0), ("three", "interrupted", 1),
    ]  # fmt: skip
    assert len(slept) == 1 and instances.asked == {"one": 0, "two": 1, "three": 1}
    assert stored(config)["runs"] == [("interrupted",)]


def test_a_run_ended_by_an_error_halts_every_worker_even_in_a_long_wait(tmp_path, instances):
    """Ctrl-C twice (KeyboardInterrupt in the writer, here from the progress callback) while
    another source sits in a 600 s rate-limit wait on the run's client: the run is recorded as
    interrupted, the error goes on, and no worker is left running."""
    config = project(tmp_path, instances, only=("one", "two"), attempts=2)
    limited = threading.Event()

    def hold(name: str, n: int) -> int | None:
        if name == "one":
            limited.set()
            return 429
        limited.wait(WAIT)  # "two" answers once "one" has been told to wait
        return None

    def on_page(name: str, page: Page) -> None:
        raise KeyboardInterrupt

    instances.hold = hold
    engine = open_database(config.database_url)
    before = set(threading.enumerate())
    try:
        with pytest.raises(KeyboardInterrupt):
            collect(engine, config, on_page=on_page)  # the client's own sleep: no StopFlag
    finally:
        engine.dispose()
    workers = [t for t in threading.enumerate() if t not in before and t.name.startswith("collect")]
    for thread in workers:
        thread.join(WAIT)
    assert not any(t.is_alive() for t in workers)
    assert stored(config)["runs"] == [("interrupted",)]


@pytest.mark.parametrize("value", ["0", "17", '"4"', "true", "2.5"])
def test_collect_concurrency_must_be_a_whole_number_from_1_to_16(tmp_path, instances, value):
    with pytest.raises(ConfigError, match=r"collect\.concurrency: must be a whole number"):
        project(tmp_path, instances, f"\n[collect]\nconcurrency = {value}\n")


def test_collect_takes_no_other_key_and_defaults_to_4(tmp_path, instances):
    assert project(tmp_path, instances).collect.concurrency == 4
    with pytest.raises(
        ConfigError, match=r"collect\.threads: unknown key \(use one of concurrency"
    ):
        project(tmp_path / "b", instances, "\n[collect]\nthreads = 2\n")


@respx.mock
def test_a_hosts_used_up_rate_limit_window_holds_every_thread_calling_it():
    """Two sources' views of the run's client, in two threads, call a host whose window a response
    used up: both wait it out (each meets the other in its wait) and count their wait; after it,
    the next call goes at once."""
    fake = FakeClock(1_800_000_000.0)
    used_up = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(fake.now) + 29)}
    respx.get("https://a.example/one").mock(httpx.Response(200, headers=used_up))
    respx.get("https://a.example/two").mock(httpx.Response(200))
    meeting = threading.Barrier(2, timeout=WAIT)

    def sleep(seconds: float) -> None:  # the clock stands still: each thread sees the window
        fake.slept.append(seconds)
        meeting.wait()  # breaks, and fails the test, unless both threads wait

    errors: list[BaseException] = []

    def call(view: HttpClient) -> None:
        try:
            view.get("https://a.example/two")
        except BaseException as exc:  # handed to the test to look at
            errors.append(exc)

    with HttpClient(client(), sleep=sleep, clock=fake.clock) as http:
        http.get("https://a.example/one")
        views = [http.retrying(Retry()) for _ in range(2)]
        threads = [threading.Thread(target=call, args=(view,)) for view in views]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
        assert errors == [] and [v.waits for v in views] == [1, 1]
        assert len(fake.slept) == 2 and all(29 <= s <= 31 for s in fake.slept)
        http.get("https://a.example/two")
    assert len(fake.slept) == 2 and http.waits == 0  # waited out: nobody waits for it again
