"""Collection concurrency: several live sources behind slow local servers, collected together,
against the slowest of them alone.

    python bench/collect_concurrency.py /tmp/bench10k [--runs 3] [--profile 25]

Four Mastodon sources, each its own server on 127.0.0.1 (in a separate process, so serving
never competes with the collector for the interpreter) answering every tag-timeline request
after 50 ms, with 5, 6, 7 and 8 pages of 40 statuses whose text comes from the event's posts.
Each run collects all four (`pipeline.run_collect`, what `aggregator collect` runs) into a
fresh project, and then the slowest source alone (`run_collect(only=...)`) into another, each in
a fresh process. Target: all four in at most 1.3x the time of the slowest alone.
"""

from __future__ import annotations

import html
import json
import multiprocessing
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import islice
from pathlib import Path
from threading import Thread
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from _common import (
    Result,
    footer,
    header,
    in_child,
    median,
    new_project,
    options,
    parse,
    runs,
    scratch,
    seconds_line,
    timed,
    verdict,
)

from aggregator.config import load_config
from aggregator.pipeline import run_collect

TARGET = 1.3
DELAY = 0.05  # seconds before each answer
PAGES = (5, 6, 7, 8)  # pages of statuses each source serves
PER_PAGE = 40  # Mastodon's largest page, which the connector asks for
SYNTHETIC_SOURCE = 'path = "posts.jsonl"\nenabled = true'


def statuses(event: Path, source: int, first: int, count: int) -> list[dict[str, Any]]:
    """`count` Mastodon statuses, newest first, made from the event's lines from `first`."""
    made = []
    with (event / "posts.jsonl").open(encoding="utf-8") as fh:
        for n, line in enumerate(islice(fh, first, first + count)):
            post = json.loads(line)
            sid = f"{10**17 + first + n}"
            user = post["author"].split("@")[0].split(".")[0]
            host = f"source{source}.example"
            made.append({
                "id": sid, "uri": f"https://{host}/users/{user}/statuses/{sid}",
                "url": f"https://{host}/@{user}/{sid}", "created_at": post["created_at"],
                "account": {"acct": f"{user}@{host}", "display_name": post.get("author_name"),
                            "note": f"<p>{html.escape(post.get('author_name') or '')}</p>"},
                "content": f"<p>{html.escape(post['text'])}</p>", "spoiler_text": "",
                "tags": [{"name": t.lower(), "url": f"https://{host}/tags/{t.lower()}"}
                         for t in post.get("hashtags") or []],
                "mentions": [], "media_attachments": [], "language": post.get("lang"),
                "in_reply_to_id": None, "replies_count": post.get("replies") or 0,
                "reblogs_count": post.get("reposts") or 0,
                "favourites_count": post.get("likes") or 0, "visibility": "public",
            })  # fmt: skip
    return made[::-1]


def pages_of(items: list[dict[str, Any]]) -> dict[str | None, tuple[bytes, str]]:
    """Each answer by the max_id asked for (None: the first): its body and Link header."""
    answers: dict[str | None, tuple[bytes, str]] = {}
    asked: str | None = None
    for start in range(0, len(items) + 1, PER_PAGE):
        page = items[start : start + PER_PAGE]
        link = ""
        if page:
            query = urlencode({"limit": PER_PAGE, "max_id": page[-1]["id"]})
            link = f'<{{base}}/api/v1/timelines/tag/CoPro16?{query}>; rel="next"'
        answers[asked] = (json.dumps(page).encode(), link)
        asked = page[-1]["id"] if page else None
    return answers


def server(answers: dict[str | None, tuple[bytes, str]]) -> ThreadingHTTPServer:
    """A tag timeline on 127.0.0.1 answering after DELAY seconds."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(DELAY)
            asked = parse_qs(urlsplit(self.path).query).get("max_id", [None])[0]
            body, link = answers.get(asked, (b"[]", ""))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if link:
                self.send_header("Link", link.replace("{base}", base))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:  # quiet
            pass

    made = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{made.server_port}"
    return made


def serve(event: Path, ready: Any) -> None:
    """Every source's server, until this process is ended; their addresses sent on `ready`."""
    first, bases = 0, []
    for n, pages in enumerate(PAGES):
        made = server(pages_of(statuses(event, n, first, pages * PER_PAGE)))
        first += pages * PER_PAGE
        Thread(target=made.serve_forever, daemon=True).start()
        bases.append(f"http://127.0.0.1:{made.server_port}")
    ready.send(bases)
    while True:
        time.sleep(3600)


def live_event(event: Path, folder: Path, bases: list[str]) -> Path:
    """An event folder whose config collects the live sources instead of the JSONL file."""
    folder.mkdir()
    text = (event / "config.toml").read_text(encoding="utf-8")
    if SYNTHETIC_SOURCE not in text:
        raise SystemExit(f"{event / 'config.toml'} was not made by bench/generate.py")
    text = text.replace(SYNTHETIC_SOURCE, 'path = "posts.jsonl"\nenabled = false')
    for n, base in enumerate(bases, 1):
        text += (f'\n[[sources]]\nname = "live{n}"\ntype = "mastodon"\ninstance = "{base}"\n'
                 'hashtags = ["CoPro16"]\n')  # fmt: skip
    (folder / "config.toml").write_text(text, encoding="utf-8")
    (folder / "posts.jsonl").symlink_to((event / "posts.jsonl").resolve())
    return folder


def collect(event: Path, under: Path, only: str | None, top: int = 0) -> Result:
    """One collection into a fresh project: every source, or only the one named."""
    project = new_project(event, under)
    config = load_config(project / "config.toml")
    run = timed(lambda: run_collect(config, only=only), top)
    failed = [s.name for s in run.result.sources if s.status != "ok"]
    return {"seconds": run.wall, "cpu": run.cpu, "posts": run.result.new_posts,
            "failed": failed, "profile": run.hot}  # fmt: skip


def main() -> int:
    args = parse(options(__doc__.splitlines()[0]))
    header("collect_concurrency", None, args.runs)
    spawn = multiprocessing.get_context("spawn")
    theirs, ours = spawn.Pipe()
    servers = spawn.Process(target=serve, args=(args.event, ours), daemon=True)
    servers.start()
    try:
        with scratch() as under:
            event = live_event(args.event, under / "live", theirs.recv())
            slowest = f"live{PAGES.index(max(PAGES)) + 1}"
            together, alone = [], []
            for _ in range(args.runs):
                together.append(in_child(collect, event, under, None))
                alone.append(in_child(collect, event, under, slowest))
            each = [in_child(collect, event, under, f"live{n}") for n in range(1, len(PAGES) + 1)]
            failed = sorted({name for r in together + alone for name in r["failed"]})
            print(f"  {len(PAGES)} sources, {', '.join(map(str, PAGES))} pages of {PER_PAGE}; "
                  f"{DELAY * 1000:.0f} ms an answer; {together[0]['posts']:,} posts in all"
                  + (f"; FAILED: {', '.join(failed)}" if failed else ""))  # fmt: skip
            print(seconds_line("all sources", runs(together, "seconds"), runs(together, "cpu")))
            print(seconds_line(f"the slowest alone ({slowest})", runs(alone, "seconds"),
                               runs(alone, "cpu")))  # fmt: skip
            waits = (max(PAGES) + 1) * DELAY
            print(f"  {'(its requests: waiting alone)':<34} {waits:8.2f} s")
            print(f"  {'sum of each alone (once each)':<34} {sum(runs(each, 'seconds')):8.2f} s")
            ratio = median(runs(together, "seconds")) / median(runs(alone, "seconds"))
            print(f"  {'all / the slowest alone':<34} {ratio:8.2f} x   target <= {TARGET} x: "
                  f"{verdict(ratio, TARGET, 'lower')}")  # fmt: skip
            if args.profile:
                print(in_child(collect, event, under, None, args.profile)["profile"])
    finally:
        servers.terminate()
        servers.join()
    footer()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
