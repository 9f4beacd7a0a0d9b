"""`aggregator export`: formats, round trip, spreadsheet safety, pseudonymisation, streaming."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, text

import reports.export as export_module
from aggregator.config import load_config
from connectors.base import Page, Post
from reports.columns import COLUMNS
from reports.export import csv_cell, iter_records, spreadsheet_warning
from reports.export_options import ExportOptions
from storage.db import open_database
from storage.queries import save_page
from tests.helpers import EXAMPLE, KEY, PEOPLE, invoke, read_csv

FORMULA = re.compile(r"^[\s\u3000]*[=+\-@\t\r＝＋－＠]")
HANDLES = ["alice@mastodon.social", "bob@mastodon.online", "caz_99@mastodon.social", "caz_99", "alice",
           "bob", "erin", "dave_j", "frank.bsky.social", "dave.example.com",
           "did:plc:abcdefghijklmnopqrstuvwx", "did:plc:zyxwvutsrqponmlkjihgfedc"]  # fmt: skip
NAMES = ["Alice Smith", "Bob Brown", "Frank O'Neil", "Dave Jones", "HYPERLINK"]


def test_jsonl_round_trips_through_import_with_nothing_lost(loaded, tmp_path):
    project = loaded
    engine = open_database(load_config(project / "config.toml").database_url)
    payload = {"id": "9", "account": {"acct": "zoe"}, "content": "<p>platform payload</p>"}
    save_page(engine, "live", Page([Post("mastodon", "https://m.example/9", datetime(2016, 11, 28, 16, 5, tzinfo=UTC),
                                         "zoe@m.example", "From a live source", raw=payload)]))  # fmt: skip
    engine.dispose()
    assert invoke(project, "tag").exit_code == 0
    first = project / "first.jsonl"
    assert invoke(project, "export", "--format", "jsonl", "-o", str(first)).exit_code == 0
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "config.toml").write_text((project / "config.toml").read_text())
    (fresh / "examples").symlink_to(project / "examples")
    assert invoke(fresh, "import", str(first)).exit_code == 0
    assert invoke(fresh, "tag").exit_code == 0
    second = fresh / "second.jsonl"
    assert invoke(fresh, "export", "--format", "jsonl", "-o", str(second)).exit_code == 0
    before = [json.loads(line) for line in first.read_text(encoding="utf-8").splitlines()]
    after = [json.loads(line) for line in second.read_text(encoding="utf-8").splitlines()]
    assert after == before
    by_id = {r["id"]: r for r in before}
    alice = by_id[PEOPLE[0]["id"]]
    for key in ("mentions", "links", "media", "html", "lang", "likes", "quotes", "edited_at"):
        assert alice[key] == PEOPLE[0][key], key
    assert by_id[PEOPLE[4]["id"]]["repost_of"] == PEOPLE[4]["repost_of"]
    assert by_id[PEOPLE[2]["id"]]["quote_of"] == PEOPLE[2]["quote_of"]
    assert by_id["https://m.example/9"]["raw"] == payload
    assert all(
        "session_id" in r and "expected_session" in r
        for r in before
        if r["author"].endswith("example.org")
    )


def test_ids_are_one_line_per_post_with_its_platform(loaded):
    project = loaded
    assert invoke(project, "collect", "--source", "example").exit_code == 0  # the same posts again
    result = invoke(project, "export", "--format", "ids")
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["platform", "post_id"]
    assert len(rows[1:]) == len({tuple(r) for r in rows[1:]})
    assert {tuple(r) for r in rows[1:]} >= {(p["platform"], p["id"]) for p in PEOPLE}
    assert len(rows) - 1 == len(read_csv(invoke(project, "export").stdout))


PAYLOADS = ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\t=tab", "\r=cr", "  =spaced", "\u3000=ideographic",
            "＝fullwidth", "＋1", "－1", "＠x", "=HYPERLINK(\"http://evil.example\",\"x\")"]  # fmt: skip


def hostile_posts() -> list[Post]:
    when = datetime(2016, 11, 28, 13, 30, tzinfo=UTC)
    posts = []
    for i, payload in enumerate(PAYLOADS):
        posts.append(Post(payload if i == 0 else "mastodon", f"{payload}-{i}", when + timedelta(minutes=i), payload,
                          f'{payload} he said "hi",\nthen\r\nleft\x00 #CoPro16', url=payload,
                          author_name=payload, lang=payload, hashtags=[payload, "CoPro16"], mentions=[payload],
                          links=[payload], media=[{"url": payload}], reply_to=payload, repost_of=payload,
                          quote_of=payload, likes=0, reposts=7))  # fmt: skip
    posts.append(Post("x", "98765432109876543210987", when, "longid", "a long id", likes=1))
    return posts


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_case_32_formula_cells_are_neutralised_in_every_column_and_numbers_stay_numbers(
    project, engine, config
):
    save_page(engine, "=evil-source", Page(hostile_posts()))
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE post SET sentiment_polarity = -0.5, sentiment_subjectivity = 0.25")
        )
    out = project / "posts.csv"
    result = invoke(project, "export", "-o", str(out), "--excel")
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and b"\x00" not in data
    with out.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == list(COLUMNS)
    assert len(rows) == len(hostile_posts()) + 1
    bad = [(c, cell) for row in rows for c, cell in zip(rows[0], row, strict=True)
           if FORMULA.match(cell) and not is_number(cell)]  # fmt: skip
    assert bad == []
    by_id = {r[1]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    hostile = by_id["'=1+1-0"]
    assert hostile["text"] == '\'=1+1 he said "hi",\nthen\r\nleft #CoPro16'
    assert (
        hostile["sentiment_polarity"] == "-0.5"
        and hostile["likes"] == "0"
        and hostile["quotes"] == ""
    )
    assert by_id["98765432109876543210987"]["post_id"] == "98765432109876543210987"

    pandas = pytest.importorskip("pandas")
    frame = pandas.read_csv(out, encoding="utf-8-sig", dtype={"post_id": str, "reply_to": str})
    assert list(frame.columns) == list(COLUMNS) and len(frame) == len(hostile_posts())
    assert (
        frame["sentiment_polarity"].dtype.kind == "f"
        and (frame["sentiment_polarity"] == -0.5).all()
    )
    assert frame["reposts"].dtype.kind in "if" and "98765432109876543210987" in set(
        frame["post_id"]
    )


def test_case_32_csv_cell_rules():
    assert csv_cell(-3) == -3 and csv_cell(0.5) == 0.5 and csv_cell(None) == ""
    assert csv_cell("-3") == "'-3" and csv_cell("a=b") == "a=b" and csv_cell("x\x00y") == "xy"


def test_case_33_a_warning_past_one_excel_sheet(example_loaded, monkeypatch):
    project = example_loaded
    assert spreadsheet_warning(1_048_575) is None
    assert "1,048,576" in spreadsheet_warning(1_048_576)
    monkeypatch.setattr(export_module, "EXCEL_MAX_ROWS", 100)
    result = invoke(project, "export", "-o", str(project / "big.csv"))
    assert result.exit_code == 0
    assert "more than one Excel sheet" in result.stderr
    small = invoke(project, "export", "-o", str(project / "small.csv"), "--session", "session-5")
    assert "Excel" not in small.stderr


def searchable(project, *args):
    result = invoke(project, "export", *args, env={"AGGREGATOR_PSEUDONYM_KEY": KEY})
    assert result.exit_code == 0, result.output
    return result.stdout


def leaks(output: str) -> list[str]:
    originals = [*HANDLES, *NAMES, "Alice", "Frank", "O'Neil", "@x/"]
    originals += [
        json.loads(line)["author"] for line in EXAMPLE.read_text(encoding="utf-8").splitlines()
    ]
    lowered, found = output.lower(), []
    for original in set(originals):
        if original.lower() in lowered and re.search(  # the quick test first: 400 authors
            rf"(?<![\w.]){re.escape(original)}(?![\w])", output, flags=re.IGNORECASE
        ):
            found.append(original)
    return found


def test_case_34_pseudonymised_exports_keep_no_handle_or_name(loaded):
    project, cfg = loaded, loaded / "config.toml"  # speakers and handles the programme names too:
    cfg.write_text(cfg.read_text().replace('speakers = ["Rob Webster", "Becky Malby"]',
                                           'speakers = ["Rob Webster", "Becky Malby", "Dave Jones"]\nhandles = ["erin"]'))  # fmt: skip
    plain = invoke(project, "export").stdout
    assert set(leaks(plain)) >= {"alice@mastodon.social", "Dave Jones", "erin"}  # the search works
    for fmt in ("csv", "jsonl"):
        output = searchable(project, "--pseudonymise", "--format", fmt)
        assert leaks(output) == [], fmt
        assert KEY not in output
    rows = read_csv(searchable(project, "--pseudonymise"))
    assert all(re.fullmatch(r"user_[0-9a-f]{12}", r["author"]) for r in rows)
    assert all(r["url"] == "" for r in rows)
    alice, bob = (next(r for r in rows if r["text"].startswith(w)) for w in ("Hello", "Thanks"))
    assert alice["author"] in bob["text"] and alice["author"] in bob["mentions"].split()
    assert (
        alice["author_name"] in bob["text"]
    )  # her display name, written out, became her name pseudonym
    assert bob["reply_to"] == alice["post_id"] != PEOPLE[0]["id"]  # links between posts survive
    for row in rows:
        if row["mentions"]:  # an @mention in the text and the mentions column agree
            assert set(re.findall(r"(?<![/\w])@(user_[0-9a-f]{12})", row["text"])) == set(
                row["mentions"].split()
            )
    again = read_csv(searchable(project, "--pseudonymise"))
    assert again == rows  # stable across exports with the same key


def test_export_streams_rows_as_it_reads_them(example_loaded, monkeypatch):
    project = example_loaded
    config = load_config(project / "config.toml")
    engine = open_database(config.database_url)
    pulled = []
    real = export_module.iter_posts

    def counting(*args, **kwargs):
        for row in real(*args, **kwargs):
            pulled.append(row.post_id)
            yield row

    monkeypatch.setattr(export_module, "iter_posts", counting)
    batches = []
    event.listen(engine, "before_execute",
                 lambda conn, clause, *a: batches.append(clause.get_execution_options().get("yield_per")))  # fmt: skip
    seen_at_write = []

    class Out(io.StringIO):
        def write(self, s):
            seen_at_write.append(len(pulled))
            return super().write(s)

    records = iter_records(engine, config, ExportOptions())
    assert iter(records) is records  # a generator, not a list
    # JSONL: a record a line (a CSV is written by SQL a chunk at a time: test_export_sql.py)
    export_module.export(engine, config, Out(), ExportOptions(fmt="jsonl"))
    assert any(batches), "posts must be read with yield_per"
    assert seen_at_write[1] < len(pulled) == 400  # the first row went out before the last was read
    engine.dispose()
