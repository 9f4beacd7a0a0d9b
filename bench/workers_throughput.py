"""Distributed workers' throughput: `aggregator run` with [workers] distributed = true on
PostgreSQL, its sources collected by `aggregator worker` processes from a slow local server.

    AGGREGATOR_BENCH_POSTGRES_URL=postgresql+psycopg://user@127.0.0.1/postgres \\
        python bench/workers_throughput.py [--sources 40] [--pages 5] [--delay 0.05] \\
        [--workers 1 2] [--concurrency 2]

One Mastodon-shaped server on 127.0.0.1 (its own process, so serving never competes with the
workers) answers every tag-timeline request after `--delay` seconds; each source has `--pages`
pages of 40 statuses. For each worker count, a fresh database (created on the server, dropped
after), that many `aggregator worker --concurrency N` processes, and one timed `aggregator run`
(defer, collect, tag, report). Prints the time, posts per hour, sources per worker per minute and
the load average; nothing asserted.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
STATUS = ROOT / "tests" / "fixtures" / "mastodon" / "status_hashtag_stream_update.json"
PER_PAGE = 40  # Mastodon's largest page, which the connector asks for


def timeline(source: int, pages: int) -> list[dict[str, Any]]:
    """A source's statuses, newest first: the fixture's status with ids and text of their own."""
    base = json.loads(STATUS.read_text(encoding="utf-8"))
    made = []
    for n in range(pages * PER_PAGE):
        sid = str(10**15 * (source + 1) + n)
        made.append({**base, "id": sid, "uri": f"https://s{source}.example/statuses/{sid}",
                     "url": f"https://s{source}.example/@a/{sid}",
                     "content": f"<p>Post {sid} #CoPro16</p>",
                     "created_at": f"2016-11-28T12:{n % 60:02d}:00Z"})  # fmt: skip
    return made[::-1]


def serve(sources: int, pages: int, delay: float, ready: Any) -> None:
    """Every source's timeline under /s<N>/ until this process is ended; its address on `ready`."""
    timelines = {f"s{n}": timeline(n, pages) for n in range(sources)}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(delay)
            parts = urlsplit(self.path)
            name = parts.path.split("/")[1]
            items = timelines.get(name, [])
            max_id = parse_qs(parts.query).get("max_id", [None])[0]
            if parse_qs(parts.query).get("min_id"):
                items = []  # nothing newer: each run here is a source's first
            elif max_id is not None:
                items = [s for s in items if int(s["id"]) < int(max_id)]
            page = items[:PER_PAGE]
            body = json.dumps(page).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if page:
                query = urlencode({"limit": PER_PAGE, "max_id": page[-1]["id"]})
                self.send_header("Link", f'<{address}{parts.path}?{query}>; rel="next"')
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    address = f"http://127.0.0.1:{httpd.server_port}"
    ready.send(address)
    httpd.serve_forever()


@contextmanager
def database(server_url: str) -> Any:
    """A new database on the server, dropped afterwards; its URL."""
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"aggregator_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def project(folder: Path, url: str, address: str, sources: int) -> Path:
    config = (
        '[event]\nname = "Bench"\ntimezone = "UTC"\nhashtags = ["CoPro16"]\n'
        f'[storage]\ndatabase = "{url}"\n[workers]\ndistributed = true\nstall_seconds = 30\n'
        '[[sessions]]\nid = "a"\ntitle = "A"\nstart = "2016-11-28T12:00"\nend = "2016-11-28T13:00"\n'
    )
    for n in range(sources):
        config += f'[[sources]]\nname = "s{n}"\ntype = "mastodon"\ninstance = "{address}/s{n}"\n'
    (folder / "config.toml").write_text(config, encoding="utf-8")
    return folder / "config.toml"


def aggregator(config: Path, *args: str, **popen: Any) -> subprocess.Popen:
    command = [sys.executable, "-c", "from aggregator.cli import main; main()"]
    return subprocess.Popen([*command, "--quiet", "--config", str(config), *args], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, **popen)  # fmt: skip


def registered(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if conn.execute(text("SELECT to_regclass('procrastinate_workers')")).scalar() is None:
                return 0
            return int(conn.execute(text("SELECT count(*) FROM procrastinate_workers")).scalar())
    finally:
        engine.dispose()


def measure(server_url: str, address: str, args: argparse.Namespace, workers: int) -> None:
    with database(server_url) as url, tempfile.TemporaryDirectory() as folder:
        config = project(Path(folder), url, address, args.sources)
        procs = [aggregator(config, "worker", "--concurrency", str(args.concurrency))
                 for _ in range(workers)]  # fmt: skip
        try:
            while registered(url) < workers:
                time.sleep(0.2)
            load = os.getloadavg()[0]
            before = cpu()
            started = time.perf_counter()
            run = aggregator(config, "run", stdout=subprocess.DEVNULL)
            code = run.wait()
            seconds = time.perf_counter() - started
            in_run = cpu() - before
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                proc.wait()
        in_workers = cpu() - before - in_run  # from their start: their start-up counts too
    posts = args.sources * args.pages * PER_PAGE
    print(f"{workers} worker(s) x {args.concurrency}: {seconds:.1f} s (exit {code}); "
          f"{posts / seconds * 3600:,.0f} posts/hour; "
          f"{args.sources / seconds * 60 / workers:.1f} sources per worker per minute; "
          f"CPU {in_workers:.1f} s in the workers ({in_workers / args.sources:.2f} s a source), "
          f"{in_run:.1f} s in run; "
          f"load average {load:.2f} before, {os.getloadavg()[0]:.2f} after")  # fmt: skip


def cpu() -> float:
    """CPU seconds (user and system) of the child processes ended and waited for so far."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, default=40)
    parser.add_argument("--pages", type=int, default=5, help="pages of 40 statuses per source")
    parser.add_argument("--delay", type=float, default=0.05, help="seconds before each answer")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--concurrency", type=int, default=2, help="jobs per worker at once")
    args = parser.parse_args()
    server_url = os.environ.get("AGGREGATOR_BENCH_POSTGRES_URL")
    if not server_url:
        raise SystemExit("set AGGREGATOR_BENCH_POSTGRES_URL to a PostgreSQL server's URL")
    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.Process(
        target=serve, args=(args.sources, args.pages, args.delay, theirs), daemon=True
    )
    server.start()
    address = ours.recv()
    print(f"{args.sources} sources x {args.pages} pages of {PER_PAGE} posts, {args.delay * 1000:g} "
          f"ms per answer, {os.cpu_count()} cores")  # fmt: skip
    try:
        for workers in args.workers:
            measure(server_url, address, args, workers)
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
