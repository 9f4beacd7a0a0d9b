"""Import speed: `aggregator import` against the limit, in the same run, and its peak memory.

    python bench/import_speed.py /tmp/bench100k [--runs 3] [--profile 25]

The product: `pipeline.import_file` (what `aggregator import FILE` runs: the writers' lock, the
database opened, every line parsed and checked, posts and sightings upserted a page at a time,
the run log) into a fresh database. The limit: the same file read with `json.loads` and written
with sqlite3 `executemany` into an equivalent table (built from storage.models.POST_TABLE's DDL,
with its unique key and indexes; same pragmas, same page size, one transaction a page of the import's size, the same
upsert on (platform, post_id)), rows holding the same values. Runs alternate, each in a fresh
process with a fresh database. Target: import at least 0.5x the limit's speed.

Memory: the peak resident memory of an import of the whole file and of its first tenth; flat in
the file's size means about the same.
"""

from __future__ import annotations

import json
import re
import sqlite3
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

from _common import (
    Result,
    copy_lines,
    footer,
    header,
    in_child,
    median,
    memory_line,
    new_project,
    options,
    parse,
    runs,
    scratch,
    seconds_line,
    timed,
    verdict,
)
from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects import sqlite
from sqlalchemy.schema import CreateIndex, CreateTable

from aggregator.config import load_config
from aggregator.pipeline import import_file
from connectors.archives import IMPORT_PAGE_SIZE
from storage.models import POST_COLUMNS, POST_TABLE

TARGET = 0.5
STORED_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how a UTC time sits in SQLite (SQLAlchemy's DateTime)
FOUND_IN_TEXT = {  # what the reader takes from the text when a line does not list it
    "hashtags": re.compile(r"#(\w+)"),
    "mentions": re.compile(r"@(\w[\w.\-]*(?:@[\w.\-]+\w)?)"),
    "links": re.compile(r"https?://\S+"),
}
COUNTS = ("likes", "reposts", "replies", "quotes")


def product(event: Path, under: Path, profile: int = 0) -> Result:
    """One `aggregator import` of the event into a fresh project."""
    project = new_project(event, under)
    config = load_config(project / "config.toml")
    run = timed(lambda: import_file(config, project / "posts.jsonl"), profile)
    return {"seconds": run.wall, "cpu": run.cpu, "posts": run.result.new_posts, "profile": run.hot}


def _getter(column: Any, field: str | None, now: str) -> Callable[[dict[str, Any]], Any]:
    """How the limit fills one column of the `post` table from a line."""
    if field is None:  # storage's own columns
        own = {"source": "import:posts.jsonl", "collected_at": now, "updated_at": now}
        value = own.get(column.name)
        return lambda obj: value
    if field == "raw":
        return json.dumps
    if isinstance(column.type, JSON):
        found = FOUND_IN_TEXT.get(field)

        def listed(obj: dict[str, Any]) -> str:
            given = obj.get(field)
            if given is None and found is not None:
                given = found.findall(obj["text"])
            return json.dumps(given or [])

        return listed
    if isinstance(column.type, DateTime):

        def when(obj: dict[str, Any]) -> str | None:
            text = obj.get(field)
            return text and datetime.fromisoformat(text).astimezone(UTC).strftime(STORED_TIME)

        return when
    if field == "id":
        return lambda obj: str(obj["id"])
    return lambda obj: obj.get(field)


def limit_table(conn: sqlite3.Connection) -> tuple[str, Callable[[dict[str, Any]], tuple]]:
    """The `post` table made from POST_TABLE's DDL; the upsert and how a line becomes its row."""
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
        conn.execute(f"PRAGMA {pragma}")
    dialect = sqlite.dialect()
    conn.execute(str(CreateTable(POST_TABLE).compile(dialect=dialect)))
    for index in POST_TABLE.indexes:
        conn.execute(str(CreateIndex(index).compile(dialect=dialect)))
    fields = {column.name: field for field, column in POST_COLUMNS.items()}
    columns = [c for c in POST_TABLE.columns if c.name != "id"]
    now = datetime.now(UTC).strftime(STORED_TIME)
    getters = [_getter(c, fields.get(c.name), now) for c in columns]
    names = ", ".join(c.name for c in columns)
    refresh = ", ".join(f"{c} = max(coalesce({c}, 0), excluded.{c})" for c in COUNTS)
    upsert = (
        f"INSERT INTO post ({names}) VALUES ({', '.join('?' * len(columns))}) "
        f"ON CONFLICT (platform, post_id) DO UPDATE SET {refresh}, updated_at = excluded.updated_at"
    )
    return upsert, lambda obj: tuple([get(obj) for get in getters])


def limit(event: Path, under: Path) -> Result:
    """The same file into an equivalent table with json.loads and executemany."""
    folder = Path(tempfile.mkdtemp(prefix="limit-", dir=under))
    conn = sqlite3.connect(folder / "limit.db", isolation_level=None)
    upsert, row = limit_table(conn)

    def load() -> None:
        with (event / "posts.jsonl").open("rb") as fh:
            while page := [row(json.loads(line)) for line in islice(fh, IMPORT_PAGE_SIZE)]:
                conn.execute("BEGIN")
                conn.executemany(upsert, page)
                conn.execute("COMMIT")

    run = timed(load)
    posts = conn.execute("SELECT count(*) FROM post").fetchone()[0]
    conn.close()
    return {"seconds": run.wall, "cpu": run.cpu, "posts": posts}


def main() -> int:
    args = parse(options(__doc__.splitlines()[0]))
    header("import_speed", args.event, args.runs)
    with scratch() as under:
        mine: list[Result] = []
        limits: list[Result] = []
        for _ in range(args.runs):
            mine.append(in_child(product, args.event, under))
            limits.append(in_child(limit, args.event, under))
        tenth = copy_lines(args.event, under / "tenth", fraction=0.1)
        small = in_child(product, tenth, under)
        print(
            f"  {mine[0]['posts']:,} posts stored by the import, {limits[0]['posts']:,} by the limit"
        )
        print(seconds_line("aggregator import", runs(mine, "seconds"), runs(mine, "cpu")))
        print(seconds_line("the limit (json.loads + executemany)", runs(limits, "seconds"),
                           runs(limits, "cpu")))  # fmt: skip
        ratio = median(runs(limits, "seconds")) / median(runs(mine, "seconds"))
        print(f"  {'import speed / the limit':<34} {ratio:8.2f} x   target >= {TARGET} x: "
              f"{verdict(ratio, TARGET, 'higher')}")  # fmt: skip
        per_post = median(runs(mine, "seconds")) / mine[0]["posts"] * 1e6
        print(f"  {'import, per post':<34} {per_post:8.0f} us   (1M posts: about "
              f"{per_post:.0f} s)")  # fmt: skip
        print(memory_line("import, whole file", mine))
        print(memory_line(f"import, first tenth ({small['posts']:,} posts)", [small]))
        if args.profile:
            print(in_child(product, args.event, under, args.profile)["profile"])
    footer()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
