"""Export speed: the CSV export against the sqlite3 command-line tool writing the same cells, in
the same run, with peak memory; the JSONL and pseudonymised exports timed beside them.

    python bench/export_speed.py /tmp/bench100k [--runs 3] [--profile 25]

The event is imported, tagged and analysed once (set-up). The product: `reports.export.export_to`
(what `aggregator export --output FILE` runs) into a file, each run in a fresh process. The
baseline: one SELECT (written below from reports/columns.py and docs/data-dictionary.md) run by
the `sqlite3` command-line tool in CSV mode into a file: the same posts in the same order, lists
joined by spaces, times as ISO 8601, session titles, provenance from an export's own payload and
the spreadsheet guard, all in SQL. Without the `sqlite3` tool, Python's sqlite3 and csv write
that SELECT's rows instead, and the line says so. The two files are then compared cell by cell
and every column where they differ is named. Targets: CSV export at least 0.5x the baseline's
speed, peak memory at most 150 MB.
"""

from __future__ import annotations

import csv
import re
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

from _common import (
    DATABASE,
    Result,
    count_posts,
    footer,
    header,
    in_child,
    loaded_project,
    median,
    memory_line,
    options,
    parse,
    runs,
    scratch,
    seconds_line,
    timed,
    verdict,
)

from aggregator.clock import EventClock
from aggregator.config import Config, load_config
from reports.columns import COLUMNS
from reports.export import export_to
from reports.export_options import ExportOptions
from storage.db import open_database

TARGET = 0.5
TARGET_MB = 150
KEY = b"bench-pseudonym-key-0123456789"
FORMATS = {
    "csv": ExportOptions(),
    "jsonl": ExportOptions(fmt="jsonl"),
    "csv, pseudonymised": ExportOptions(key=KEY),
}
# What Python's `\s` matches, and the ideographic space: a formula may hide behind any of them.
SPACES = "".join(chr(c) for c in range(0x3001) if re.match(r"\s", chr(c))) + "\u3000"
FORMULA_FIRST = ("=", "+", "-", "@", "＝", "＋", "－", "＠")
TEXT_COLUMNS = ("platform", "post_id", "url", "author", "author_name", "text", "lang", "reply_to",
                "repost_of", "quote_of", "session_id", "tag_reason")  # fmt: skip
LISTS = {  # column -> (the item's text, in SQL over json_each), as reports/export.py joins them
    "hashtags": "value",
    "mentions": "ltrim(value, '@')",
    "links": "value",
    "media": "CASE WHEN type = 'object' THEN coalesce(json_extract(value, '$.url'), '') END",
}
NUMBERS = ("likes", "reposts", "replies", "quotes")


def _chars(text: str) -> str:
    return f"char({', '.join(str(ord(c)) for c in text)})"


def guarded(value: str) -> str:
    """SQL for a text cell as `reports.export.csv_cell` writes it: NUL dropped, and an apostrophe
    before what a spreadsheet would run (after any leading spaces: =, +, -, @ and their fullwidth
    forms; a tab or carriage return among the leading spaces)."""
    clean = f"replace({value}, char(0), '')"
    rest = f"ltrim({clean}, {_chars(SPACES)})"
    lead = f"substr({clean}, 1, length({clean}) - length({rest}))"
    first = ", ".join(f"'{c}'" for c in FORMULA_FIRST)
    risky = (
        f"(substr({rest}, 1, 1) IN ({first}) OR instr({lead}, char(9)) OR instr({lead}, char(13)))"
    )
    return f"CASE WHEN {risky} THEN '''' || {clean} ELSE {clean} END"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def baseline_sql(config: Config) -> str:
    """One SELECT writing the export's columns (docs/data-dictionary.md) from the database.

    `created_local` takes the offset the event's zone has when the first session starts (SQLite
    knows no time zones): exact for an event whose days do not cross a change of the clocks."""
    utc = "strftime('%Y-%m-%dT%H:%M:%SZ', {})"
    local = EventClock(config.event.timezone).local(config.sessions[0].start)
    shift = local.utcoffset() or timedelta(0)
    offset = local.isoformat()[-6:]
    mine = (
        "json_extract(p.raw, '$.platform') = p.platform AND "
        "CAST(json_extract(p.raw, '$.id') AS TEXT) = p.post_id AND "
        "json_type(p.raw, '$.source') = 'text' AND json_type(p.raw, '$.collected_at') = 'text'"
    )
    titles = " ".join(f"WHEN {_literal(s.id)} THEN {_literal(s.title)}" for s in config.sessions)
    cells = {c: guarded(f"p.{c}") for c in TEXT_COLUMNS if c not in ("session_id", "tag_reason")}
    cells |= {
        "created_at": utc.format("p.created_at"),
        "created_local": f"strftime('%Y-%m-%dT%H:%M:%S', p.created_at, "
        f"'{shift.total_seconds() / 60:+.0f} minutes') || '{offset}'",
        "session_id": guarded("a.session_id"),
        "session_title": guarded(f"CASE a.session_id {titles} END"),
        "tag_reason": guarded("a.reason"),
        "tag_score": "a.score",
        "sentiment_polarity": "p.sentiment_polarity",
        "sentiment_subjectivity": "p.sentiment_subjectivity",
        "source": guarded(
            f"CASE WHEN {mine} THEN json_extract(p.raw, '$.source') ELSE p.source END"
        ),
        "collected_at": utc.format(
            f"CASE WHEN {mine} THEN json_extract(p.raw, '$.collected_at') ELSE p.collected_at END"
        ),
    }
    for column, item in LISTS.items():
        joined = (f"(SELECT group_concat(replace({item}, ' ', '%20'), ' ') "
                  f"FROM json_each(p.{column}) WHERE {item} != '')")  # fmt: skip
        cells[column] = guarded(joined)
    cells |= {c: f"p.{c}" for c in NUMBERS}
    select = ",\n  ".join(f"{cells[c]} AS {c}" for c in COLUMNS)
    return (
        f"SELECT\n  {select}\nFROM post AS p LEFT JOIN assignment AS a ON a.post_pk = p.id\n"
        "WHERE p.deleted_at IS NULL\nORDER BY p.created_at, p.id"
    )


def product(project: Path, out: Path, label: str, top: int = 0) -> Result:
    """One export of the project's database into `out`, as `aggregator export --output` does."""
    config = load_config(project / "config.toml")
    engine = open_database(config.database_url)
    run = timed(lambda: export_to(engine, config, out, FORMATS[label]), top)
    engine.dispose()
    return {"seconds": run.wall, "cpu": run.cpu, "rows": run.result.stats.rows, "profile": run.hot}


def baseline(project: Path, out: Path) -> Result:
    """The baseline SELECT written as CSV by the sqlite3 tool (or Python's sqlite3 and csv)."""
    sql = baseline_sql(load_config(project / "config.toml"))
    database = project / DATABASE
    tool_path = shutil.which("sqlite3")
    if tool_path:
        command = [tool_path, "-readonly", "-csv", "-header", str(database), sql]

        def write() -> None:
            with out.open("wb") as fh:
                subprocess.run(command, stdout=fh, check=True)

    else:

        def write() -> None:
            conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
            with out.open("w", encoding="utf-8", newline="") as fh:
                cursor = conn.execute(sql)
                writer = csv.writer(fh, lineterminator="\r\n")
                writer.writerow(d[0] for d in cursor.description)
                writer.writerows(cursor)
            conn.close()

    run = timed(write)  # its CPU counts the sqlite3 tool's
    return {"seconds": run.wall, "cpu": run.cpu, "tool": tool_path or ""}


def differences(mine: Path, theirs: Path) -> tuple[int, Counter[str], dict[str, tuple[str, str]]]:
    """Rows compared, how many cells differ in each column, and the first such pair of cells."""
    csv.field_size_limit(sys.maxsize)
    differ: Counter[str] = Counter()
    example: dict[str, tuple[str, str]] = {}
    rows = 0
    with (
        mine.open(encoding="utf-8", newline="") as a,
        theirs.open(encoding="utf-8", newline="") as b,
    ):
        ours, other = csv.reader(a), csv.reader(b)
        names = next(ours)
        if names != next(other):
            differ["(header)"] += 1
        for left, right in zip(ours, other, strict=False):
            rows += 1
            for name, x, y in zip(names, left, right, strict=False):
                if x != y:
                    differ[name] += 1
                    example.setdefault(name, (x, y))
        differ["(rows only in one file)"] = sum(1 for _ in ours) + sum(1 for _ in other)
    return rows, +differ, example


def _around(x: str, y: str, width: int = 40) -> tuple[str, str]:
    """The two cells from a little before where they first differ."""
    at = next(
        (i for i, (a, b) in enumerate(zip(x, y, strict=False)) if a != b), min(len(x), len(y))
    )
    start = max(0, at - 10)
    return x[start : start + width], y[start : start + width]


def main() -> int:
    parser = options(__doc__.splitlines()[0])
    parser.add_argument("--sql", action="store_true", help="print the baseline's SELECT and stop")
    args = parse(parser)
    if args.sql:
        print(baseline_sql(load_config(args.event / "config.toml")))
        return 0
    header("export_speed", args.event, args.runs)
    with scratch() as under:
        project = loaded_project(args.event, under, tag=True, analyse=True)
        posts = count_posts(project)
        done: dict[str, list[Result]] = {label: [] for label in FORMATS}
        theirs: list[Result] = []
        for n in range(args.runs):
            for label in FORMATS:
                out = under / f"{label.replace(', ', '-')}-{n}.{FORMATS[label].fmt}"
                done[label].append(in_child(product, project, out, label))
            theirs.append(in_child(baseline, project, under / f"baseline-{n}.csv"))
        tool = theirs[0]["tool"] or "Python's sqlite3 + csv (no sqlite3 command-line tool here)"
        print(f"  {posts:,} posts; baseline: {tool}")
        mine = done["csv"]
        print(seconds_line("export csv", runs(mine, "seconds"), runs(mine, "cpu")))
        print(seconds_line("baseline csv", runs(theirs, "seconds"), runs(theirs, "cpu")))
        ratio = median(runs(theirs, "seconds")) / median(runs(mine, "seconds"))
        print(f"  {'export speed / the baseline':<34} {ratio:8.2f} x   target >= {TARGET} x: "
              f"{verdict(ratio, TARGET, 'higher')}")  # fmt: skip
        print(memory_line("export csv", mine))
        peak = max(runs(mine, "peak_mib")) * 2**20 / 1e6
        print(f"  {'export csv peak':<34} {peak:8.0f} MB    target <= {TARGET_MB} MB: "
              f"{verdict(peak, TARGET_MB, 'lower')}")  # fmt: skip
        for label in list(FORMATS)[1:]:
            print(seconds_line(f"export {label}", runs(done[label], "seconds"),
                               runs(done[label], "cpu")))  # fmt: skip
            print(memory_line(f"export {label}", done[label]))
        rows, differ, example = differences(under / "csv-0.csv", under / "baseline-0.csv")
        cells = rows * len(COLUMNS)
        same = 1 - sum(differ.values()) / cells if cells else 1
        print(
            f"  same cells: {same:.3%} of {cells:,}; differing, by column: "
            + (", ".join(f"{k} {v:,}" for k, v in differ.most_common()) or "none")
        )
        for name, (x, y) in example.items():
            print("    e.g. {}: export {!r}, baseline {!r}".format(name, *_around(x, y)))
        if args.profile:
            print(
                in_child(product, project, under / "profiled.csv", "csv", args.profile)["profile"]
            )
    footer()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
