"""Issue 10's done-when: hostile lines in an archive cost only themselves, through the real CLI."""

from __future__ import annotations

import json
import re

from sqlalchemy import func, select

from storage.db import open_database
from storage.models import PostRow
from storage.queries import iter_quarantine
from tests.helpers import EXAMPLE, invoke

LONG_TEXT = "Long read #CoPro16 " + "a" * 1_000_000
SNEAKY_TEXT = "NUL\x00 here and a bidi override \u202egnp.exe\u202c #CoPro16"


def hostile_lines() -> tuple[list[str], dict[int, str], set[str]]:
    """(the file's lines, {line number: what its rejection must say}, the ids that must be stored)."""
    good = [json.loads(line) for line in EXAMPLE.read_text(encoding="utf-8").splitlines()[:20]]
    base = good[0]
    bad = {
        "year 9999 at -05:00": ({**base, "id": "h1", "created_at": "9999-12-31T23:59:59-05:00"},
                                "created_at '9999-12-31T23:59:59-05:00' is out of range"),
        "count 10**30": ({**base, "id": "h2", "likes": 10**30}, "likes 1000"),
        "id true": ({**base, "id": True}, "id must be a string or a whole number, got True"),
        "id object": ({**base, "id": {"nested": 1}}, "got {'nested': 1}"),
        "id float": ({**base, "id": 1.5e3}, "got 1500.0"),
        "blank author": ({**base, "id": "h6", "author": " \t "}, "author is blank"),
    }  # fmt: skip
    long_post = {**base, "id": "long", "text": LONG_TEXT}
    sneaky = {**base, "id": "sneaky", "text": SNEAKY_TEXT}
    lines = [json.dumps(g) for g in good[:10]]
    expect: dict[int, str] = {}
    for obj, reason in bad.values():
        lines.append(json.dumps(obj))
        expect[len(lines)] = reason
    lines.append(json.dumps(long_post))
    lines.append('{"platform": "mastodon", "id": "broken", ')
    expect[len(lines)] = "invalid JSON"
    lines.append('["a", "list", "not", "an", "object"]')
    expect[len(lines)] = "not a JSON object"
    lines.append(json.dumps(sneaky))
    lines += [json.dumps(g) for g in good[10:]]
    return lines, expect, {g["id"] for g in good} | {"long", "sneaky"}


def stored(config) -> dict[str, str]:
    engine = open_database(config.database_url)
    try:
        with engine.connect() as conn:
            return dict(conn.execute(select(PostRow.post_id, PostRow.text)).all())
    finally:
        engine.dispose()


def test_case_10_hostile_jsonl_keeps_every_good_post(project, config):
    lines, expect, good_ids = hostile_lines()
    path = project / "hostile.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = invoke(project, "import", str(path), "--format", "jsonl")

    assert result.exit_code == 0, result.output
    skipped = dict(re.findall(r"^! hostile\.jsonl: skipped line (\d+): (.*)$", result.stderr, re.M))
    assert sorted(map(int, skipped)) == sorted(expect)
    for number, reason in expect.items():
        assert reason in skipped[str(number)], (number, skipped[str(number)])
    posts = stored(config)
    assert set(posts) == good_ids
    assert posts["long"] == LONG_TEXT  # long is not hostile: stored whole
    assert posts["sneaky"] == SNEAKY_TEXT  # stored as written; the report cleans it for display
    assert f"{len(good_ids)} new" in result.stdout and f"{len(expect)} skipped" in result.stdout
    kept = {where: raw for where, (_, raw) in quarantine(config).items()}
    assert kept == {f"line {n}": as_received(lines[n - 1]) for n in expect}


def as_received(line: str) -> object:
    """A quarantined line's record: its JSON value, or its text when it is not JSON."""
    try:
        return json.loads(line)
    except ValueError:
        return line


def quarantine(config) -> dict[str, tuple[str, object]]:
    """The import's quarantine table: location -> (reason, record as received)."""
    engine = open_database(config.database_url)
    try:
        rows = iter_quarantine(engine, "import:hostile.jsonl")
        return {row.location: (row.reason, row.raw) for row in rows}
    finally:
        engine.dispose()


def test_case_40_out_of_range_lines_keep_their_reasons_and_a_rerun_adds_nothing(project, config):
    lines, expect, good_ids = hostile_lines()
    path = project / "hostile.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert invoke(project, "import", str(path)).exit_code == 0

    again = invoke(project, "import", str(path))

    assert again.exit_code == 0, again.output
    assert "0 new" in again.stdout and f"{len(expect)} skipped" in again.stdout
    engine = open_database(config.database_url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(PostRow)).scalar() == len(good_ids)
    engine.dispose()
    held = quarantine(config)
    assert sorted(held) == sorted(f"line {n}" for n in expect)  # each line once, not twice
    for number, reason in expect.items():
        assert reason in held[f"line {number}"][0]
