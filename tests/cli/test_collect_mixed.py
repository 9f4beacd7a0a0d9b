"""Issue 3's "done when": the real `aggregator collect` against local servers mixing healthy,
rate-limited, failing and hostile endpoints stores every post once, names each failure in one
line, and after SIGKILLs at many points ends with the database an uninterrupted run makes.

The uninterrupted run is the command in this process; the killed ones (marked slow) are real
processes, each killed at a request the servers hold for it: while it waits for a page, halfway
through reading one, or the moment it has one whole (parsing or saving it)."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from connectors.mastodon import id_key
from tests.helpers import ROOT, invoke, make_status

FEEDS = ROOT / "tests" / "fixtures" / "feeds"
STATUSES = 90  # per instance and hashtag: pages of 40, 40 and 10, then an empty page
BOOSTS = 5  # instance b also has boosts of the first five: stored as their originals
LIMITED = 30
WAIT = 60  # seconds: a guard against a hung test, never an assertion
FAILING = {  # source -> what its one line must say
    "broken": "HTTP 500",
    "bomb": "cap",
    "laughs": "not a safe feed",
    "missing": "HTTP 404",
}


@dataclass(frozen=True)
class KillPoint:
    """Where a run is killed: at its `request`-th request, when the servers have `answered`
    nothing ("asked": pages before it saved, this one awaited), half the body ("half") or all of
    it ("whole": the collector is parsing or saving it as the kill lands)."""

    request: int
    answered: str


# In the healthy paging, the rate-limited waits and the failing sources, at each stage of a page.
KILLS = [KillPoint(2, "asked"), KillPoint(4, "half"), KillPoint(7, "whole"),
         KillPoint(9, "asked"), KillPoint(12, "half"), KillPoint(16, "whole")]  # fmt: skip


def shared_status(n: int, instance: str) -> dict[str, Any]:
    """Status n as instance a or b serves it: one uri, each instance with its own local id."""
    local = str((100_000 if instance == "a" else 700_000) + n)
    uri = f"https://origin.example/users/u{n % 7}/statuses/{n}"
    tags = [{"name": "copro16"}, {"name": "everyoneincluded"}]
    return make_status(local, minutes=n, uri=uri, url=uri, tags=tags,
                       content=f"<p>Post {n} #CoPro16 #EveryoneIncluded</p>")  # fmt: skip


def timeline(instance: str) -> list[dict[str, Any]]:
    if instance == "limited":
        return [make_status(str(500 + n), minutes=n, uri=f"https://limited.example/s/{n}")
                for n in range(LIMITED)]  # fmt: skip
    statuses = [shared_status(n, instance) for n in range(STATUSES)]
    if instance == "b":
        for n in range(BOOSTS):
            boost = make_status(str(800_000 + n), minutes=STATUSES + n, content="")
            boost.update(uri=f"https://b.example/users/x/statuses/{n}/activity", reblog=statuses[n])
            statuses.append(boost)
    return statuses


def page(statuses: list[dict], base: str, params: dict[str, str]) -> tuple[list, dict[str, str]]:
    """One tag timeline page as Mastodon answers it: max_id/min_id/limit and a Link header."""
    newest = sorted(statuses, key=lambda s: id_key(s["id"]), reverse=True)
    limit = min(int(params.get("limit", 20)), 40)
    if "max_id" in params:
        newest = [s for s in newest if id_key(s["id"]) < id_key(params["max_id"])]
    if "min_id" in params:
        items = [s for s in newest if id_key(s["id"]) > id_key(params["min_id"])][-limit:]
    else:
        items = newest[:limit]
    links = {}
    if items:
        links["Link"] = (
            f'<{base}?{urlencode({"limit": limit, "max_id": items[-1]["id"]})}>; rel="next"'
        )
    return items, links


class World:
    """Every fake endpoint, by path prefix; numbers each run's requests, and holds the one a
    test kills at (`kill_at`), setting `reached` when the collector is there."""

    def __init__(self) -> None:
        self.timelines = {name: timeline(name) for name in ("a", "b", "limited")}
        self.bomb = gzip.compress(b"\0" * (24 * 1024 * 1024), 9)  # 24 MiB inflated, ~24 KiB sent
        self.asked: Counter[str] = Counter()
        self.requests = 0
        self.lock = threading.Lock()
        self.kill_at: KillPoint | None = None  # for the kill test only: no other test is held
        self.reached = threading.Event()

    def aim(self, point: KillPoint | None) -> None:
        """Number the next run's requests from 1, to be killed at `point` (None: never)."""
        with self.lock:
            self.requests, self.kill_at = 0, point
        self.reached.clear()

    def stage(self, number: int) -> str | None:
        """How much of request `number` to answer before the kill (None: all of it, no kill)."""
        point = self.kill_at
        return point.answered if point is not None and point.request == number else None

    def answer(self, target: str, base: str) -> tuple[int, int, bytes, dict[str, str]]:
        """(the run's request number, status, body, headers) for a GET of `target`."""
        with self.lock:
            self.requests += 1
            self.asked[target] += 1
            number, tries = self.requests, self.asked[target]
        parts = urlsplit(target)
        prefix = parts.path.split("/")[1]
        if prefix == "limited" and tries % 3:  # 429 twice (Retry-After 0, then 1), then the page
            body = b'{"error": "Too many requests"}'
            return number, 429, body, {"Retry-After": str(tries % 3 - 1)}
        if prefix in self.timelines:
            items, links = page(
                self.timelines[prefix], base + parts.path, dict(parse_qsl(parts.query))
            )
            headers = {"Content-Type": "application/json", **links}
            return number, 200, json.dumps(items).encode(), headers
        if prefix == "broken":
            body = b'{"error": "Internal server error"}'
            return number, 500, body, {"Content-Type": "application/json"}
        if prefix == "bomb":
            headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
            return number, 200, self.bomb, headers
        feeds = {"/feeds/blog.rss": "wordpress_tag.rss", "/feeds/laughs.rss": "billion_laughs.xml"}
        if parts.path in feeds:
            body = (FEEDS / feeds[parts.path]).read_bytes()
            return number, 200, body, {"Content-Type": "application/rss+xml"}
        return number, 404, b"<h1>Not Found</h1>", {"Content-Type": "text/html"}


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a killed collector hangs up: expected
            super().handle_error(request, client_address)


@dataclass
class Servers:
    world: World
    one: str  # http://127.0.0.1:PORT of the first server
    two: str  # and of the second: instance b lives there, a host:port of its own


def serve(world: World) -> tuple[ThreadingHTTPServer, threading.Thread, str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            base = f"http://127.0.0.1:{self.server.server_address[1]}"
            number, code, body, headers = world.answer(self.path, base)
            stage = world.stage(number)
            if stage == "asked":
                self.hold()
                return
            self.send_response(code)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            cut = len(body) // 2 if stage == "half" else len(body)
            try:
                self.wfile.write(body[:cut])
            except OSError:  # the collector was killed mid-body
                return
            if stage == "half":
                self.hold()
            elif stage == "whole":
                world.reached.set()

        def hold(self) -> None:
            """Tell the test the collector is here, and answer no more until it hangs up."""
            world.reached.set()
            self.close_connection = True
            self.connection.settimeout(WAIT)
            with contextlib.suppress(OSError):
                self.rfile.read()  # returns once the killed collector's socket is closed

        def log_message(self, *args: object) -> None:
            return

    httpd = QuietServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    return httpd, thread, f"http://127.0.0.1:{httpd.server_address[1]}"


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    world = World()
    running = [serve(world), serve(world)]
    yield Servers(world, running[0][2], running[1][2])
    for httpd, thread, _ in running:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def make_project(folder: Path, s: Servers) -> Path:
    """The shipped config and programme, the bundled example off, and the mixed sources."""
    folder.mkdir()
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    shipped = 'path = "examples/transformathon-2016.jsonl"\nenabled = true'
    assert shipped in text
    text = text.replace(shipped, shipped.replace("true", "false"))
    sources = [  # name, type, where, attempts (the rate-limited one answers on the third)
        ("healthy", "mastodon", f'instance = ["{s.one}/a", "{s.two}/b"]', 2),
        ("limited", "mastodon", f'instance = "{s.one}/limited"', 3),
        ("broken", "mastodon", f'instance = "{s.one}/broken"', 2),
        ("bomb", "mastodon", f'instance = "{s.one}/bomb"', 2),
        ("blog", "feed", f'url = "{s.one}/feeds/blog.rss"', 2),
        ("laughs", "feed", f'url = "{s.one}/feeds/laughs.rss"', 2),
        ("missing", "feed", f'url = "{s.one}/feeds/missing.rss"', 2),
    ]
    for name, kind, where, attempts in sources:  # retry knobs that keep the test quick
        text += (f'\n[[sources]]\nname = "{name}"\ntype = "{kind}"\n{where}\n'
                 f"max_attempts = {attempts}\nbackoff_seconds = 0\nmax_wait_seconds = 0.05\n")  # fmt: skip
    (folder / "config.toml").write_text(text, encoding="utf-8")
    return folder


def command() -> list[str]:
    """The installed console script, else the same entry point through this interpreter."""
    script = Path(sys.executable).parent / "aggregator"
    found = str(script) if script.exists() else shutil.which("aggregator")
    return [found] if found else [sys.executable, "-c", "from aggregator.cli import main; main()"]


def spawn(project: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [*command(), "--config", str(project / "config.toml"), "collect"],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def collect(project: Path) -> subprocess.CompletedProcess:
    proc = spawn(project)
    out, err = proc.communicate(timeout=WAIT)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


SIGHTINGS = (
    "SELECT p.post_id, s.source, s.via, s.local_id FROM sighting s JOIN post p ON p.id = s.post_pk"
)


def snapshot(project: Path) -> dict[str, Any]:
    """What collecting leaves behind, read from the SQLite file directly."""
    with sqlite3.connect(project / "data" / "aggregator.db") as conn:
        keys = list(conn.execute("SELECT platform, post_id FROM post"))
        return {
            "integrity": conn.execute("PRAGMA integrity_check").fetchone()[0],
            "count": len(keys),
            "keys": set(keys),
            "duplicates": [k for k, n in Counter(keys).items() if n > 1],
            "sightings": sorted(conn.execute(SIGHTINGS)),
        }


@pytest.fixture(scope="module")
def reference(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One uninterrupted collection into a fresh database."""
    project = make_project(tmp_path_factory.mktemp("mixed") / "reference", servers)
    result = invoke(project, "collect")
    return {"result": result, **snapshot(project)}


def test_case_14_one_line_per_failing_source_and_exit_1(reference):
    result = reference["result"]
    assert result.exit_code == 1, result.stderr
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    failures = [line for line in output.splitlines() if line.startswith("✗ ")]
    assert len(failures) == len(FAILING), output
    for name, what in FAILING.items():
        mine = [line for line in failures if line.startswith(f"✗ {name}: ")]
        assert len(mine) == 1, output
        assert what in mine[0], mine[0]
    assert re.search(r"/broken/api/v1/timelines/tag/\S+ failed: HTTP 500 after 2 attempts", output)
    assert re.search(r"/feeds/missing\.rss failed: HTTP 404", output)
    for name in ("healthy", "limited", "blog"):
        assert re.search(rf"^✓ {name}: \d+ new", result.stdout, re.M), output


def test_case_12_every_healthy_post_is_stored_once_with_each_sighting(reference, servers):
    assert reference["integrity"] == "ok" and reference["duplicates"] == []
    mastodon = {pid for platform, pid in reference["keys"] if platform == "mastodon"}
    shared = {shared_status(n, "a")["uri"] for n in range(STATUSES)}
    limited = {s["uri"] for s in servers.world.timelines["limited"]}
    assert mastodon == shared | limited  # boosts are their originals; the bomb stored nothing
    feed = {pid for platform, pid in reference["keys"] if platform != "mastodon"}
    assert feed and reference["count"] == len(mastodon) + len(feed)
    a, b = (urlsplit(servers.one).netloc, urlsplit(servers.two).netloc)
    for n in (0, STATUSES // 2, STATUSES - 1):
        status = shared_status(n, "a")
        seen = {
            (via, local) for pid, _, via, local in reference["sightings"] if pid == status["uri"]
        }
        assert seen == {
            (f"{a} #CoPro16", status["id"]), (f"{a} #EveryoneIncluded", status["id"]),
            (f"{b} #CoPro16", shared_status(n, "b")["id"]),
            (f"{b} #EveryoneIncluded", shared_status(n, "b")["id"]),
        }  # fmt: skip


def killed_at(point: KillPoint, world: World, project: Path) -> bool:
    """Run `collect` and SIGKILL it at `point`; whether it was still running there."""
    world.aim(point)
    proc = spawn(project)
    try:
        for _ in range(WAIT):  # until it is there, or has ended (then it never will be)
            if world.reached.wait(1) or proc.poll() is not None:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=WAIT)
    return proc.returncode == -signal.SIGKILL and world.reached.is_set()


@pytest.mark.slow  # kills a real process
def test_case_18_sigkill_at_many_points_then_a_rerun_equals_an_uninterrupted_run(
    servers, reference, tmp_path
):
    project = make_project(tmp_path / "killed", servers)
    for point in KILLS:
        assert killed_at(point, servers.world, project), f"the run ended before {point}"
        after = snapshot(project)
        assert after["integrity"] == "ok" and after["duplicates"] == []

    servers.world.aim(None)
    final = collect(project)
    assert (
        final.returncode == 1 and "Traceback" not in final.stderr
    )  # the failing sources still fail
    done = snapshot(project)
    assert done["integrity"] == "ok" and done["duplicates"] == []
    assert done["count"] == reference["count"]
    assert done["keys"] == reference["keys"]
    assert done["sightings"] == reference["sightings"]
