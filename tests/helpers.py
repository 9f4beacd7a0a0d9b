"""What several test files share; imported by them, never collected as tests itself.

The CLI through click's CliRunner (`invoke`), a clock that moves only when something sleeps
(`FakeClock`), httpx clients sharing one TLS context (`client`), the example loaded into a project
(`load`, `copy_database`; the conftest fixtures `loaded` and `example_loaded` do it once a run),
the people the export and privacy tests write about, a Mastodon instance that pages like a real
one, projects with one live source and a real process running the CLI on them, hostile posts for
the storage tests, and adversarial text with a timer for the linear-time checks.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import random
import shutil
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx
import pytest
import respx
from click.testing import CliRunner, Result
from hypothesis import strategies as st
from PIL import Image

from aggregator.cli import cli
from aggregator.config import Config, load_config
from connectors.base import ConnectorError, Page, Post, SourceSpec, parse_time
from connectors.mastodon import id_key
from connectors.settings import MastodonSettings, parse_mastodon
from reports import speech

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "transformathon-2016.jsonl"
FIXTURES = ROOT / "tests" / "fixtures"
TOKYO = ZoneInfo("Asia/Tokyo")  # nine hours ahead of UTC all year: where tests move the event


def shipped_project(folder: Path) -> Path:
    """`folder` holding config.toml and examples/ as shipped; data and site land inside it."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "config.toml", folder / "config.toml")
    shutil.copytree(ROOT / "examples", folder / "examples")
    return folder


# -- the CLI -------------------------------------------------------------------------------------


def invoke(
    project: Path,
    *args: str,
    env: dict[str, str | None] | None = None,
    input: str | None = None,
    catch_exceptions: bool = False,
) -> Result:
    """`aggregator --config CONFIG ARGS` in this process; `project` is the folder holding
    config.toml or the config file itself."""
    config = project if project.suffix == ".toml" else project / "config.toml"
    return CliRunner().invoke(
        cli, ["--config", str(config), *args], env=env, input=input,
        catch_exceptions=catch_exceptions,
    )  # fmt: skip


def spawn(project: Path, *args: str) -> subprocess.Popen:
    """`aggregator --config CONFIG ARGS` as a real process (for the tests that signal or kill it)."""
    return subprocess.Popen(
        [sys.executable, "-c", "from aggregator.cli import main; main()",
         "--config", str(project / "config.toml"), *args],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


# -- time and HTTP --------------------------------------------------------------------------------


class FakeClock:
    """Seconds since the epoch that move only when something sleeps (or a test moves them): pass
    `clock` and `sleep` to what would otherwise read and wait on real time."""

    def __init__(self, now: float | datetime = 1_800_000_000.0) -> None:
        self.now = now.timestamp() if isinstance(now, datetime) else now
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


TLS = ssl.create_default_context()  # one context for every test client: each costs 20 ms to make


def client(**options: Any) -> httpx.Client:
    """An httpx client for respx or 127.0.0.1, sharing the one TLS context."""
    return httpx.Client(verify=TLS, **options)


# -- a project loaded with the example ------------------------------------------------------------

KEY = "k3y-for-tests-0123456789abcdef"  # a pseudonym key long enough to be accepted
# People writing about each other in every form a handle or name takes.
PEOPLE = [
    {"platform": "mastodon", "id": "https://mastodon.social/users/alice/statuses/111",
     "created_at": "2016-11-28T13:10:00Z", "author": "alice@mastodon.social",
     "author_name": "Alice Smith (she/her)", "url": "https://mastodon.social/@alice/111",
     "text": "Hello @bob@mastodon.online and @caz_99! Loved Dave Jones' talk #CoPro16 "
             "https://mastodon.social/@alice/1 https://x.com/erin/status/5 https://bsky.app/profile/frank.bsky.social",
     "mentions": ["bob@mastodon.online", "caz_99@mastodon.social"],
     "links": ["https://x.com/erin/status/5", "https://bsky.app/profile/frank.bsky.social"],
     "media": [{"url": "https://files.example.org/a.png", "type": "image", "alt": "Alice Smith on stage"}],
     "html": '<p>Hello <a href="https://mastodon.online/@bob">@<span>bob</span></a></p>',
     "lang": "en", "likes": 3, "reposts": 1, "replies": 2, "quotes": 0,
     "edited_at": "2016-11-28T13:12:00Z"},
    {"platform": "mastodon", "id": "https://mastodon.online/users/bob/statuses/222",
     "created_at": "2016-11-28T13:20:00Z", "author": "bob@mastodon.online", "author_name": "Bob Brown",
     "url": "https://mastodon.online/@bob/222", "text": "Thanks Alice Smith and @alice, #EveryoneIncluded",
     "reply_to": "https://mastodon.social/users/alice/statuses/111", "mentions": ["alice@mastodon.social"]},
    {"platform": "bluesky", "id": "at://did:plc:abcdefghijklmnopqrstuvwx/app.bsky.feed.post/3k",
     "created_at": "2016-11-28T14:05:00Z", "author": "frank.bsky.social", "author_name": "Frank O'Neil",
     "url": "https://bsky.app/profile/frank.bsky.social/post/3k",
     "text": "cc @dave.example.com #CoPro16 quoting did:plc:zyxwvutsrqponmlkjihgfedc",
     "mentions": ["dave.example.com"],
     "quote_of": "at://did:plc:zyxwvutsrqponmlkjihgfedc/app.bsky.feed.post/1"},
    {"platform": "bluesky", "id": "at://did:plc:zyxwvutsrqponmlkjihgfedc/app.bsky.feed.post/1",
     "created_at": "2016-11-28T14:01:00Z", "author": "dave.example.com", "author_name": "Dave Jones",
     "url": "https://bsky.app/profile/dave.example.com/post/1", "text": "My slides #CoPro16"},
    {"platform": "x", "id": "1234567890123456789012", "created_at": "2016-11-28T15:30:00Z",
     "author": "erin", "author_name": "=HYPERLINK(\"http://evil.example\")",
     "url": "https://twitter.com/erin/status/1234567890123456789012",
     "text": "RT @dave_j: great session with @Caz_99 #CoPro16", "mentions": ["dave_j", "caz_99"],
     "repost_of": "1234567890123456789000", "reply_to": "1234567890123456789001"},
]  # fmt: skip


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read_csv(data: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.lstrip("\ufeff"), newline="")))


def load(project: Path, people: bool = True) -> Path:
    """The bundled example (and `PEOPLE`) imported and tagged through the CLI, under the project's
    config as it is now. Tests that keep the shipped config use the `loaded` fixtures instead."""
    assert invoke(project, "import", str(EXAMPLE)).exit_code == 0
    if people:
        people_file = write_jsonl(project / "people.jsonl", PEOPLE)
        assert invoke(project, "import", str(people_file)).exit_code == 0
    assert invoke(project, "tag").exit_code == 0
    return project


def database(project: Path) -> Path:
    """The SQLite file of a project using the shipped `[storage] database`."""
    return project / "data" / "aggregator.db"


def copy_database(source: Path, target: Path) -> Path:
    """The source project's database copied into the target project (SQLite's own backup, so a
    write-ahead log not yet folded in is copied too)."""
    database(target).parent.mkdir(exist_ok=True)
    with (
        contextlib.closing(sqlite3.connect(database(source))) as src,
        contextlib.closing(sqlite3.connect(database(target))) as dst,
    ):
        src.backup(dst)
    return target


# -- people's choices -----------------------------------------------------------------------------

ALICE = "alice@mastodon.social"
MASTODON_REPLY = Post(
    "mastodon", "https://mastodon.online/users/bob/statuses/333", datetime(2016, 11, 28, 13, 40, tzinfo=UTC),
    "bob@mastodon.online", "@alice see you at two, Alice Smith #CoPro16", author_name="Bob Brown",
    html='<p><a href="https://mastodon.social/@alice" class="u-url mention">@<span>alice</span></a> see you</p>',
    mentions=[ALICE], hashtags=["CoPro16"],
    raw={"id": "333", "account": {"acct": "bob", "display_name": "Bob Brown"}, "content": "<p>@<span>alice</span></p>",
         "mentions": [{"id": "99", "username": "alice", "acct": ALICE, "url": "https://mastodon.social/@alice"}]},
)  # fmt: skip


def with_opt_out(project: Path, *accounts: str) -> Config:
    """The project's config with `[privacy] opt_out` listing `accounts`."""
    cfg = project / "config.toml"
    listed = ", ".join(json.dumps(a) for a in accounts)
    cfg.write_text(cfg.read_text().replace("opt_out = []", f"opt_out = [{listed}]"))
    return load_config(cfg)


def with_curation(project: Path, text: str, name: str = "curation.toml") -> Config:
    """The shipped config with `[tagging] curation = name` holding `text`."""
    (project / name).write_text(text, encoding="utf-8")
    config = (project / "config.toml").read_text(encoding="utf-8")
    config = config.replace('# curation = "curation.toml"', f'curation = "{name}"')
    (project / "config.toml").write_text(config, encoding="utf-8")
    return load_config(project / "config.toml")


def in_zone(project: Path, zone: str, *, example: bool = False) -> Config:
    """The project's event moved to `zone`: the programme at the same wall-clock times there
    (session times carry no offset), so every instant of it moves by the zone's offset. With
    `example`, the bundled example's posts move with it: each keeps its wall-clock time, so its
    labelled session, and a local time read as UTC (or the other way) puts it in the wrong one."""
    cfg = project / "config.toml"
    shipped = 'timezone = "Europe/London"'
    assert shipped in cfg.read_text()
    cfg.write_text(cfg.read_text().replace(shipped, f'timezone = "{zone}"'))
    if example:
        path = project / "examples" / EXAMPLE.name
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        for row in rows:
            moved = wall_time_in(parse_time(row["created_at"]), ZoneInfo(zone))
            row["created_at"] = moved.isoformat()
        write_jsonl(path, rows)
    return load_config(cfg)


def wall_time_in(when: datetime, zone: ZoneInfo) -> datetime:
    """The instant showing `when`'s wall-clock time in the shipped zone (London in November, when
    it is UTC) in `zone` instead: the same moment of an event moved there by `in_zone`."""
    assert when.utcoffset() == timedelta(0)
    return when.replace(tzinfo=None).replace(tzinfo=zone)


class Flaky:
    """A `feed` stand-in that fails while `Flaky.broken`, and otherwise yields one new post."""

    broken = True
    served = 0

    def __init__(self, spec: SourceSpec[Any], **_: Any) -> None:
        self.name = spec.name

    def fetch(self, cursor: Any) -> Iterator[Page]:
        if Flaky.broken:
            raise ConnectorError("https://feed.example/rss answered HTTP 503 after 5 attempts")
        Flaky.served += 1
        when = datetime(2016, 11, 28, 13, tzinfo=UTC)
        yield Page([Post("feed", f"f{Flaky.served}", when, "a", "hello")], {"n": Flaky.served})


# -- a Mastodon instance ---------------------------------------------------------------------------

MASTODON = FIXTURES / "mastodon"
A = "https://a.example"
T0 = datetime(2016, 11, 28, 12, 0, tzinfo=UTC)


def mastodon_fixture(name: str) -> dict[str, Any]:
    return json.loads((MASTODON / name).read_text())


def make_status(sid: str, *, minutes: int = 0, tag: str = "CoPro16", **changes: Any) -> dict:
    """A real Status (the hashtag stream fixture) with its id, time and tag replaced."""
    status = mastodon_fixture("status_hashtag_stream_update.json")
    status.update(
        id=sid,
        uri=f"https://origin.example/users/trwnh/statuses/{sid}",
        url=f"https://origin.example/@trwnh/{sid}",
        created_at=(T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z"),
        content=f'<p>Post {sid} <a href="https://a.example/tags/{tag}" class="mention hashtag" '
        f'rel="tag">#<span>{tag}</span></a></p>',
        tags=[{"name": tag.lower(), "url": f"https://a.example/tags/{tag.lower()}"}],
    )
    status.update(changes)
    return status


def many(count: int, start: int = 1) -> list[dict]:
    """Statuses `start`, `start + 1`, … a minute apart."""
    return [make_status(str(n), minutes=n) for n in range(start, start + count)]


class FakeInstance:
    """A Mastodon tag timeline: max_id/min_id/since_id/limit and Link headers as the server does."""

    def __init__(self, base: str, statuses: list[dict] | None = None, shuffle: bool = False):
        self.base = base
        self.statuses: list[dict] = list(statuses or [])
        self.shuffle = shuffle
        self.requests: list[dict[str, str]] = []
        self.fail_after: int | None = None  # answer 503 once this many requests were served
        self.status_code: int | None = None  # answer every request with this (and an error body)

    def page(self, path: str, params: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        self.requests.append(params)
        if self.status_code:
            return self.status_code, {"error": "The access token is invalid"}, {}
        if self.fail_after is not None and len(self.requests) > self.fail_after:
            return 503, {"error": "busy"}, {}
        newest_first = sorted(self.statuses, key=lambda s: id_key(s["id"]), reverse=True)
        limit = min(int(params.get("limit", 20)), 40)
        if "max_id" in params:
            newest_first = [s for s in newest_first if id_key(s["id"]) < id_key(params["max_id"])]
        if "since_id" in params:
            newest_first = [s for s in newest_first if id_key(s["id"]) > id_key(params["since_id"])]
        if "min_id" in params:  # the `limit` statuses just above min_id, still newest first
            above = [s for s in newest_first if id_key(s["id"]) > id_key(params["min_id"])]
            items = above[-limit:]
        else:
            items = newest_first[:limit]
        headers = {}
        if items:
            url = f"{self.base}{path}"
            headers["Link"] = (
                f'<{url}?{urlencode({"limit": limit, "max_id": items[-1]["id"]})}>; rel="next", '
                f'<{url}?{urlencode({"limit": limit, "min_id": items[0]["id"]})}>; rel="prev"'
            )
        if self.shuffle:
            items = random.Random(len(self.requests)).sample(items, len(items))
        return 200, items, headers

    def handler(self, request: httpx.Request) -> httpx.Response:
        code, body, headers = self.page(request.url.path, dict(request.url.params))
        return httpx.Response(code, json=body, headers=headers)

    def mount(self, router: respx.MockRouter) -> respx.Route:
        return router.get(url__startswith=f"{self.base}/api/v1/timelines/tag/").mock(
            side_effect=self.handler
        )


def mastodon_source(
    hashtags: Sequence[str] = ("CoPro16",), zone: tzinfo = UTC, **options: Any
) -> SourceSpec[MastodonSettings]:
    """A `mastodon` source on instance `A` following #CoPro16, unless `options` (its table, read
    as the config's loader reads it, in the event's time `zone`) say otherwise."""
    settings, problems = parse_mastodon({"instance": A, **options}, zone)
    assert settings is not None, problems
    return SourceSpec("mastodon", settings, tuple(hashtags))


def live_project(tmp_path: Path, name: str, base: str, cron: str = "0 2 * * *") -> Path:
    """The shipped config with the bundled example off and one Mastodon source at `base`."""
    folder = tmp_path / name
    folder.mkdir()
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    text = text.replace(
        'path = "examples/transformathon-2016.jsonl"\nenabled = true',
        'path = "examples/transformathon-2016.jsonl"\nenabled = false',
    )
    text = text.replace('cron = "0 2 * * *"', f'cron = "{cron}"')
    assert "enabled = false" in text.split("[[sources]]")[1]
    text += f'\n[[sources]]\nname = "live"\ntype = "mastodon"\ninstance = "{base}"\n'
    (folder / "config.toml").write_text(text, encoding="utf-8")
    return folder


# -- hostile posts ----------------------------------------------------------------------------------

HOSTILE_T0 = datetime(2016, 11, 28, 13, 5, tzinfo=UTC)


def make_post(n: int | str, **kw: Any) -> Post:
    """Post n as a connector makes it, with `kw` replacing any of its fields."""
    post = Post("mastodon", f"https://example.org/statuses/{n}", HOSTILE_T0, f"user{n}@example.org",
                f"post {n} #CoPro16", hashtags=["CoPro16"], raw={"id": str(n)})  # fmt: skip
    return replace(post, **kw)


def deep(levels: int) -> list:
    """A list nested `levels` deep."""
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


# Whatever values a connector might put in a post: text with NUL, surrogates and bidi marks,
# JSON and things that are not JSON, times in any offset or none, counts past 64 bits.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=12)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=6,
)
NOT_JSON = (
    st.sets(st.integers(), max_size=2) | st.tuples(st.integers()) | st.builds(object)
    | st.sampled_from([float("nan"), 10**30, 10**4000, -(2**63) - 1, b"\x00", deep(3000)])
)  # fmt: skip
ANYTHING = JSON | NOT_JSON
ZONES = st.none() | st.builds(
    timezone, st.timedeltas(-timedelta(hours=23, minutes=59), timedelta(hours=23, minutes=59))
)
TIMES = st.datetimes(timezones=ZONES) | st.sampled_from([datetime.min, datetime.max])
COUNTS = st.none() | st.integers() | st.sampled_from([2**63 - 1, 2**63, 10**30, True])
OPTIONAL_TEXTS = {
    k: st.none() | ANY_TEXT | ANYTHING
    for k in ("url", "author_name", "reply_to", "lang", "html", "via", "local_id")
}
HOSTILE_POSTS = st.builds(
    Post,
    platform=st.just("mastodon") | ANYTHING,
    id=ANY_TEXT | ANYTHING,
    created_at=TIMES | ANYTHING,
    author=ANY_TEXT | ANYTHING,
    text=ANY_TEXT | ANYTHING,
    **OPTIONAL_TEXTS,
    likes=COUNTS | ANYTHING,
    reposts=COUNTS,
    hashtags=st.lists(ANY_TEXT, max_size=3) | ANYTHING,
    mentions=st.lists(ANY_TEXT, max_size=2),
    media=st.lists(st.dictionaries(ANY_TEXT, JSON, max_size=2), max_size=2) | ANYTHING,
    edited_at=st.none() | TIMES | ANYTHING,
    raw=st.dictionaries(ANY_TEXT, JSON, max_size=3) | ANYTHING,
)


# -- linear time ------------------------------------------------------------------------------------
# Runs of what each editorial rule's regexes look for, one block each: a rule that backtracks over
# a run it already read takes 64 times as long on 8 times the text; a linear one, 8 times.
UNITS = ['"a a ', "“a ", "« ", "'a ", "RT @a: ", "?", "a", "@a.", "#a ", "i will be ", "sound ",
         "Q: ", ". A", 'A: "', "http://x ", "-", "!", "\u200d", "can not hear ", "my pledge "]  # fmt: skip


def adversarial(size: int) -> str:
    """About `size` characters of `UNITS`, each repeated in one run."""
    return "".join(unit * (size // len(UNITS) // len(unit)) for unit in UNITS)


def best_seconds(rule: Callable[[str], object], text: str, runs: int) -> float:
    """The least processor time `rule(text)` takes in `runs` runs, the editorial rules' cache
    emptied: this process's own time, so other work on the machine does not count."""
    best = float("inf")
    for _ in range(runs):
        speech.normal.cache_clear()
        start = time.process_time()
        rule(text)
        best = min(best, time.process_time() - start)
    return best


# ---- a local image server (media tests and the accessibility check) ----


def image_bytes(fmt: str, size: tuple[int, int], *, exif: Image.Exif | None = None) -> bytes:
    """A real image in `fmt`: a gradient (so it is not trivially compressible), with `exif`."""
    img = Image.linear_gradient("L").resize(size).convert("RGBA" if fmt == "PNG" else "RGB")
    out = BytesIO()
    img.save(out, fmt, **({"exif": exif} if exif is not None else {}))
    return out.getvalue()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.hits[self.path] += 1  # type: ignore[attr-defined]
        body = self.server.files.get(self.path)  # type: ignore[attr-defined]
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serving(files: dict[str, bytes]) -> Iterator[tuple[ThreadingHTTPServer, str]]:
    """A server on 127.0.0.1 serving `files` by path (404 otherwise), counting requests in `.hits`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.files, server.hits = files, Counter()  # type: ignore[attr-defined]
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), daemon=True
    )  # quick shutdown
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def postgres_engine(skip: str) -> Iterator[Any]:
    """An engine on a new PostgreSQL database (`postgres_database`) of the server that
    AGGREGATOR_TEST_POSTGRES_URL names, disposed of afterwards; the test skipped, saying `skip`,
    when none is named."""
    server_url = os.environ.get("AGGREGATOR_TEST_POSTGRES_URL", "")
    if not server_url:
        pytest.skip(skip)
    from storage.db import open_database

    with postgres_database(server_url) as url:
        engine = open_database(url)
        try:
            yield engine
        finally:
            engine.dispose()


@contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    """A new empty database on the PostgreSQL server at `server_url` (its URL), dropped with its
    connections afterwards."""
    import uuid

    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"aggregator_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


CHROMIUM = os.environ.get("CHROMIUM") or "/usr/bin/chromium"


def browser_missing(reason: str, what: str) -> NoReturn:
    """Skip a browser check that cannot run here; fail it when CI says the checks must run."""
    if os.environ.get("AGGREGATOR_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (AGGREGATOR_REQUIRE_BROWSER=1: {what} must run)")
    pytest.skip(reason)


@contextmanager
def chromium(what: str) -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (no browser download), for the `browser` checks;
    `what` names the check in the message when it cannot run."""
    from docs.screenshot import FLAGS

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        browser_missing(
            "playwright is not installed (pip install playwright axe-playwright-python)", what
        )
    if not (shutil.which(CHROMIUM) or Path(CHROMIUM).is_file()):
        browser_missing(
            f"no Chromium at {CHROMIUM} (apt-get install chromium, or set CHROMIUM)", what
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()
