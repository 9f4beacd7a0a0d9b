"""The CSV export the database writes (reports/export_sql.py) against the Python path it stands in
for (reports/export.py's records through csv.writer, which pseudonymised exports still take): the
same bytes and the same manifest counts, on hostile generated posts, on SQLite and, when
AGGREGATOR_TEST_POSTGRES_URL names a server, on PostgreSQL."""

from __future__ import annotations

import io
import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select, update

import reports.export as export_module
import reports.export_sql as export_sql
from aggregator.clock import EventClock, iso_utc
from aggregator.config import load_config
from aggregator.safeguarding import DEFAULT_ALLOWLIST, find_identifiers
from connectors.base import Page, Post
from connectors.undated import UNDATED
from reports.columns import FORMULA_FIRST, FORMULA_START, SPACES
from reports.export import export, iter_records, write_csv
from reports.export_options import ExportOptions, make_options
from reports.export_sql import IdentifierGate, spans
from reports.manifest import ExportStats
from storage.db import open_database
from storage.models import POST_TABLE, Assignment, Sighting
from storage.queries import save_assignments, save_page
from tests.helpers import ROOT, postgres_engine

POSTS = POST_TABLE
ASSIGNMENTS = Assignment.__table__  # type: ignore[attr-defined]
SIGHTINGS = Sighting.__table__  # type: ignore[attr-defined]
FIXTURES = ROOT / "tests" / "fixtures" / "safeguarding"

# What a spreadsheet, a CSV reader or the redaction could trip on, and text around it.
ATOMS = [
    "=1+1", "+", "-", "@", "\t", "\r", "\n", "\r\n", '"', '""', ",", " ", "  ", "'", "%20",
    "\u3000", "\xa0", "\x1c", "\x85", "\u2028", "＝", "＋", "－", "＠", "=HYPERLINK(\"x\",\"y\")",
    "07700 900123", "943 476 5919", "9434765919", "+44 (0) 20 7946 0958", "0300 123 4567",
    "jo.bloggs@gmail.com", "enquiries@example-trust.nhs.uk", "hello@carers.example.org",
    "12 Acacia Road, Leeds LS6 2AB", "LS6 2AB", "٩٤٣٤٧٦٥٩١٩", "𝟗𝟒𝟑𝟒𝟕𝟔𝟓𝟗𝟏𝟗", "ISBN 0306406152",
    "@alice@mastodon.social", "alice@mastodon.social", "@alice", "Alice Smith", "bob", "Bob",
    "https://mastodon.social/@alice/1", "#CoPro16", "CoPro16", "é", "😀", "’", "2016-11-28",
    "\x00", "x",
]  # fmt: skip
TEXT = st.lists(st.sampled_from(ATOMS) | st.text(max_size=4), max_size=6).map("".join)
SHORT = st.lists(st.sampled_from(ATOMS) | st.text(max_size=3), max_size=2).map("".join)
WORDY = TEXT.filter(lambda t: bool(t.strip()))
# Around the clock changes of the event's zone (Europe/London), the reserved "no time", a time a
# fraction short of the next second, the ends of what storage holds and of the worked-out spans
# (ten years either side of the first session).
EDGES = [
    UNDATED, UNDATED + timedelta(microseconds=1), datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
    datetime(2016, 3, 27, 0, 59, 59, tzinfo=UTC), datetime(2016, 3, 27, 1, tzinfo=UTC),
    datetime(2016, 10, 30, 0, 59, 59, 999999, tzinfo=UTC), datetime(2016, 10, 30, 1, tzinfo=UTC),
    datetime(2016, 11, 28, 13, 5, 59, 999999, tzinfo=UTC), datetime(1, 1, 2, tzinfo=UTC),
    datetime(9999, 12, 30, 23, 59, 59, tzinfo=UTC), datetime(2006, 11, 28, 12, tzinfo=UTC),
    datetime(2026, 11, 28, 12, 0, 0, 1, tzinfo=UTC),
]  # fmt: skip
TIMES = st.sampled_from(EDGES) | st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
# How an imported export's collected_at may read: as we write it, or anything near that.
WRITTEN = [
    "2016-11-28T13:07:42Z", "2016-02-29T00:00:00Z", "2015-02-29T00:00:00Z", "2016-13-01T00:00:00Z",
    "1969-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "2099-12-31T23:59:59Z", "2100-01-01T00:00:00Z",
    "2016-11-28T13:07:42+01:00", " 2016-11-28T13:07:42Z", "2016-11-28T13:07:42z", "2016-11-28",
    "2016-11-28T24:00:00Z", "2016-11-28T13:07:60Z", "2016-11-28T13:07:42.5Z", "２016-11-28T13:07:42Z",
    "not a time", "",
]  # fmt: skip
JSON_VALUE = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | SHORT
FLOATS = (
    st.none()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0.0, -0.0, 1.0, 0.1, 1 / 3, -0.5, 1e-05, 1e16, 123456789012345.6])
)
INSTANCE = "a.example"
HUGE = "<huge>"  # a post's text that `store` makes thousands of characters long (a short repr)


@st.composite
def stored_posts(draw: st.DrawFn) -> list[tuple[Post, dict[str, Any] | None, tuple]]:
    """Posts as connectors hand them to storage, each with the assignment and sentiment it gets."""
    made = []
    for n in range(draw(st.integers(1, 10))):
        numbered = draw(st.booleans())
        platform = draw(st.just("mastodon") | WORDY)
        post_id = str(10**12 + n) if numbered else draw(SHORT) + f"/{n}"
        raw_id = draw(
            st.sampled_from([post_id, int(post_id) if numbered else post_id, None, 1.5, True])
        )
        raw = draw(
            st.just({})
            | st.fixed_dictionaries(
                {"platform": st.just(platform) | SHORT, "id": st.just(raw_id),
                 "source": SHORT | st.integers(), "collected_at": st.sampled_from(WRITTEN) | SHORT}
            )
            | st.dictionaries(st.sampled_from(["platform", "id", "source", "x"]), JSON_VALUE, max_size=3)
        )  # fmt: skip
        parent, reply = draw(st.sampled_from([(None, None), (str(n), None), (None, str(n - 1))]))
        post = Post(
            platform, post_id, draw(TIMES), draw(WORDY | st.sampled_from(["alice@mastodon.social"])),
            draw(TEXT | st.just(HUGE)), url=draw(st.none() | TEXT),
            author_name=draw(st.none() | TEXT), reply_to=reply if reply else draw(st.none() | TEXT),
            repost_of=draw(st.none() | SHORT), quote_of=draw(st.none() | SHORT),
            likes=draw(st.none() | st.integers(-(2**31), 2**31 - 1)), reposts=draw(st.none() | st.integers(0, 9)),
            lang=draw(st.none() | SHORT), hashtags=draw(st.lists(SHORT, max_size=3)),
            mentions=draw(st.lists(SHORT | st.just("@bob"), max_size=3)), links=draw(st.lists(SHORT, max_size=2)),
            media=draw(st.lists(st.dictionaries(st.sampled_from(["url", "alt", "acct"]), JSON_VALUE, max_size=3), max_size=2)),
            deleted=draw(st.integers(0, 9)) == 0, raw=raw,
            via=f"{INSTANCE} #CoPro16" if parent else None, local_id=parent,
            reply_to_via=INSTANCE if reply else None,
        )  # fmt: skip
        assignment = draw(
            st.none()
            | st.fixed_dictionaries(
                {"session_id": st.none() | st.sampled_from(["session-1", "panel-closing", "gone", "=x,y"]),
                 "score": st.floats(allow_nan=False, allow_infinity=False), "reason": TEXT}
            )
        )  # fmt: skip
        made.append((post, assignment, (draw(FLOATS), draw(FLOATS))))
    return made


def store(engine, made: list) -> None:
    """The posts in a database emptied first, assigned and analysed as drawn."""
    with engine.begin() as conn:
        for table in (SIGHTINGS, ASSIGNMENTS, POSTS):
            conn.execute(delete(table))
    huge = "=" + 'x, "y"\n' * 3000
    posts = [replace(post, text=huge) if post.text == HUGE else post for post, _, _ in made]
    save_page(engine, '=source, "one"', Page(posts))
    with engine.connect() as conn:
        pks = dict(conn.execute(select(POSTS.c.post_id, POSTS.c.id)).all())
    values = [
        {"post_pk": pks[post.id], "method": "auto", "programme": "p", "tagged_at": UNDATED,
         "excluded": False, "highlight": False, **assignment}
        for post, assignment, _ in made
        if assignment is not None and post.id in pks
    ]  # fmt: skip
    if engine.dialect.name == "postgresql":  # which holds no NUL; the tagger writes none
        values = [{**v, "reason": v["reason"].replace("\x00", "")} for v in values]
    save_assignments(engine, values)
    with engine.begin() as conn:
        for post, _, (polarity, subjectivity) in made:
            if post.id in pks:
                conn.execute(
                    update(POSTS).where(POSTS.c.id == pks[post.id])
                    .values(sentiment_polarity=polarity, sentiment_subjectivity=subjectivity)
                )  # fmt: skip


def both(engine, config, options: ExportOptions | None = None) -> tuple[tuple, tuple]:
    """What the SQL path and the Python path write of a CSV export, and their counts."""
    options = options or ExportOptions()
    sql_out, python_out = io.StringIO(), io.StringIO()
    sql_stats, _ = export(engine, config, sql_out, options)
    python_stats = ExportStats()
    write_csv(iter_records(engine, config, options, python_stats), python_out, options)
    return (sql_out.getvalue(), counted(sql_stats)), (python_out.getvalue(), counted(python_stats))


def counted(stats: ExportStats) -> dict[str, Any]:
    return {
        "rows": stats.rows,
        "platforms": dict(stats.platforms),
        "sessions": dict(stats.sessions),
        "sources": dict(stats.sources),
        "windows": {c: (stats.window(c, 0), stats.window(c, 1)) for c in ("created_at", "collected_at")},
        "identifiers": stats.identifiers,
    }  # fmt: skip


def configs(config):
    """The shipped config as exports see it: as shipped; with opted-out accounts; without
    redaction. The last two with a session title that needs quoting and guarding."""
    titled = tuple(replace(s, title='=SUM(1), "a"\nb') if s.id == "session-1" else s
                   for s in config.sessions)  # fmt: skip
    opted = replace(config.privacy, opt_out=("alice@mastodon.social", "Bob"))
    unredacted = replace(config.privacy, redact_identifiers=False)
    return {
        "shipped": config,
        "opted-out": replace(config, privacy=opted, sessions=titled),
        "unredacted": replace(config, privacy=unredacted, sessions=titled),
    }


HOSTILE = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
)  # fmt: skip


@pytest.mark.parametrize("variant", ["shipped", "opted-out", "unredacted"])
@HOSTILE
@given(made=stored_posts())
def test_sql_writes_the_same_bytes_and_counts_as_python_on_sqlite(engine, config, variant, made):
    store(engine, made)
    sql, python = both(engine, configs(config)[variant])
    assert sql == python


@pytest.fixture(scope="module")
def pg_engine():
    with postgres_engine(
        "PostgreSQL: set AGGREGATOR_TEST_POSTGRES_URL to run it here too"
    ) as engine:
        yield engine


@HOSTILE
@given(made=stored_posts())
def test_sql_writes_the_same_bytes_and_counts_as_python_on_postgresql(pg_engine, config, made):
    store(pg_engine, made)  # posts PostgreSQL cannot hold (a NUL) are quarantined, not stored
    sql, python = both(pg_engine, configs(config)["opted-out"])  # redaction and opt-outs both
    assert sql == python


def test_a_plain_export_is_written_by_sql_and_only_the_odd_rows_by_python(
    engine, config, monkeypatch
):
    real = export_module._reference
    asked: list[int] = []

    def counting(conn, records):
        lines = real(conn, records)

        def counted_lines(pks):
            asked.extend(pks)
            return lines(pks)

        return counted_lines

    monkeypatch.setattr(export_module, "_reference", counting)
    when = datetime(2016, 11, 28, 13, 5, tzinfo=UTC)
    plain = [Post("mastodon", f"https://m.example/{n}", when, f"u{n}@m.example", f"Post {n}, \"quoted\"",
                  hashtags=["CoPro16", "a b"], links=["https://x.example/1"], likes=n)
             for n in range(50)]  # fmt: skip
    odd = [
        Post("mastodon", "phone", when, "p@m.example", "Ring 07700 900123"),  # redacted by Python
        Post("mastodon", "nul", when, "n@m.example", "a\x00b"),  # NUL: a cell drops it
        Post("mastodon", "number", when, "q@m.example", "x", hashtags=["a"]),
    ]
    save_page(engine, "example", Page(plain + odd))
    with engine.begin() as conn:  # a list holding a number, as an older version could store
        conn.execute(update(POSTS).where(POSTS.c.post_id == "number").values(hashtags=["a", 5]))
    sql, python = both(engine, config)
    assert sql == python
    with engine.connect() as conn:
        names = dict(conn.execute(select(POSTS.c.id, POSTS.c.post_id)).all())
    assert sorted(names[pk] for pk in asked) == ["nul", "number", "phone"]
    assert sql[1]["identifiers"]["phone"] == 1 and "[phone removed]" in sql[0]


@pytest.mark.parametrize(
    "chosen",
    [
        {"sessions": ["session-1", "general"], "excel": True},
        {"platforms": ["mastodon"], "since": "2016-11-28T14:00", "until": "2016-11-28"},
        {"hashtags": ["#CovMindTheGap", "everyoneincluded"]},
    ],
)
def test_filters_select_the_same_posts_in_sql_as_in_python(example_loaded, chosen):
    config = load_config(example_loaded / "config.toml")
    engine = open_database(config.database_url)
    sql, python = both(engine, config, make_options(config, **chosen))
    engine.dispose()
    assert sql == python
    assert 0 < sql[1]["rows"] < 400  # a filter chose some of the example's posts


def test_a_reply_by_an_instance_local_id_points_at_its_parent_in_sql_as_in_python(engine, config):
    when = datetime(2016, 11, 28, 13, 5, tzinfo=UTC)
    parent = Post("mastodon", "https://a.example/users/x/statuses/1", when, "x@a.example", "Parent",
                  via=f"{INSTANCE} #CoPro16", local_id="109")  # fmt: skip
    reply = Post("mastodon", "https://b.example/users/y/statuses/2", when + timedelta(minutes=1),
                 "y@b.example", "Reply", reply_to="109", reply_to_via=INSTANCE)  # fmt: skip
    elsewhere = replace(reply, id="https://b.example/users/y/statuses/3", reply_to_via="c.example")
    save_page(engine, "example", Page([parent, reply, elsewhere]))
    sql, python = both(engine, config)
    assert sql == python
    lines = sql[0].splitlines()
    assert ",https://a.example/users/x/statuses/1," in lines[2] and ",109," in lines[3]


def test_an_imported_export_keeps_the_source_and_time_it_named_in_sql_as_in_python(engine, config):
    when = datetime(2016, 11, 28, 13, 5, tzinfo=UTC)
    ours = {"platform": "mastodon", "id": "1", "source": "old-source",
            "collected_at": "2016-11-28T14:00:00Z"}  # fmt: skip
    loose = {**ours, "id": "2", "collected_at": "2016-11-28T14:00:00+00:00"}  # Python reads it
    save_page(engine, "import:posts.jsonl", Page([
        Post("mastodon", "1", when, "a@m.example", "one", raw=ours),
        Post("mastodon", "2", when, "b@m.example", "two", raw=loose),
        Post("mastodon", "3", when, "c@m.example", "three", raw={**ours, "id": "9"}),
    ]))  # fmt: skip
    sql, python = both(engine, config)
    assert sql == python
    assert sql[1]["sources"] == {"old-source": 2, "import:posts.jsonl": 1}
    assert sql[1]["windows"]["collected_at"][0] == "2016-11-28T14:00:00Z"


def test_the_export_streams_a_chunk_at_a_time(engine, config, monkeypatch):
    when = datetime(2016, 11, 28, 13, 5, tzinfo=UTC)
    posts = [Post("x", str(n), when + timedelta(seconds=n), "a", f"post {n}") for n in range(120)]
    save_page(engine, "example", Page(posts))
    monkeypatch.setattr("reports.export_sql.CHUNK", 50)
    written: list[int] = []

    class Out(io.StringIO):
        def write(self, text: str) -> int:
            written.append(text.count("\r\n"))
            return super().write(text)

    export(engine, config, Out(), ExportOptions())
    assert written == [1, 50, 50, 20]  # the header, then each chunk as it was read


def test_the_manifest_counts_what_the_csv_holds_and_sql_counts_as_python(engine, config):
    when = datetime(2016, 11, 28, 13, 5, tzinfo=UTC)
    save_page(engine, "example", Page([
        Post("mastodon", "1", when, "a@m.example", "call 07700 900123",
             html="<p>call 07700 900123</p>", raw={"text": "call 07700 900123"}),
        Post("feed", "2", UNDATED, "b@m.example", "no time"),
    ]))  # fmt: skip
    sql, python = both(engine, config)
    assert sql == python
    counts = sql[1]
    assert counts["identifiers"] == {"phone": 1}  # the text's: html and raw are not in a CSV
    assert counts["windows"]["created_at"] == (iso_utc(when), iso_utc(when))  # "no time" is in none
    assert counts["platforms"] == {"mastodon": 1, "feed": 1}


# -- the pieces --------------------------------------------------------------------------------


def test_the_guard_characters_are_those_the_formula_pattern_matches():
    assert re.fullmatch(r"\s+", SPACES) and "\u3000" in SPACES
    every = [chr(c) for c in range(0x3001)]
    assert {c for c in every if re.fullmatch(r"\s", c)} == set(SPACES)
    for c in [*every, "＝", "＋", "－", "＠"]:
        for text in (c, c + "=", c + "a", " " + c):
            expected = bool(re.match(r"^[\s\u3000]*[=+\-@\t\r＝＋－＠]", text))
            assert bool(FORMULA_START.match(text)) == expected, repr(text)
    assert set(FORMULA_FIRST) == set("=+-@＝＋－＠\t\r")


def labelled_texts() -> list[str]:
    texts = []
    for name in ("labelled.jsonl", "heldout.jsonl"):
        for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            texts += [record["text"], record.get("bio", "")]
    return texts


def probe(*texts: str) -> bytes:
    return b"".join(b"\x00" + t.encode("utf-8") for t in texts)


def test_the_identifier_gate_lets_no_labelled_identifier_through():
    gate = IdentifierGate(DEFAULT_ALLOWLIST)
    texts = labelled_texts()
    with_one = [t for t in texts if find_identifiers(t)]
    assert len(with_one) > 100  # the labelled sets are read
    probes = [probe("", t) for t in texts]
    suspects = gate.suspects(probes)
    missed = [t for i, t in enumerate(texts) if find_identifiers(t) and i not in suspects]
    assert missed == []
    assert all(
        gate.found(probes[i], starts)
        for i, starts in suspects.items()
        if find_identifiers(texts[i])
    )


PIECES = st.sampled_from(
    ["0", "1", "7", "44", "+", "(", ")", " ", "-", ".", "\xa0", "@", "a", "Z", "_", "%", "é", "٣",
     "𝟗", "Road ", "LS6 ", "2AB", ",", "\n", "jo", "nhs.uk", ".com", "ISBN"]
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(texts=st.lists(st.lists(PIECES, max_size=30).map("".join), min_size=1, max_size=4))
def test_the_identifier_gate_suspects_every_text_with_an_identifier(texts):
    gate = IdentifierGate(DEFAULT_ALLOWLIST)
    probes = [probe(t, "x") for t in texts]
    suspects = gate.suspects(probes)
    for i, text in enumerate(texts):
        if find_identifiers(text):
            assert i in suspects and gate.found(probes[i], suspects[i]), text


@pytest.mark.parametrize(
    "zone", ["Europe/London", "Australia/Lord_Howe", "America/St_Johns", "UTC"]
)
def test_the_zone_s_spans_change_at_the_second_its_clocks_do(zone):
    clock = EventClock(ZoneInfo(zone))
    first, last = datetime(2015, 1, 1, tzinfo=UTC), datetime(2018, 1, 1, tzinfo=UTC)
    found = spans(clock, first, last)
    assert found[0][0] == first and found[-1][1] == last
    assert all(a[1] == b[0] for a, b in pairwise(found))
    for start, end, seconds, written in found:
        for instant in (start, end - timedelta(microseconds=1)):
            local = clock.iso(instant)
            assert local.endswith(written)
            moved = (instant + timedelta(seconds=seconds)).replace(tzinfo=None, microsecond=0)
            assert local == moved.isoformat() + written
    changes = {"Europe/London": 6, "Australia/Lord_Howe": 6, "America/St_Johns": 6, "UTC": 0}
    assert len(found) == changes[zone] + 1


def test_a_csv_export_that_fails_midway_leaves_the_old_file_and_no_manifest(
    engine, config, monkeypatch
):
    when = datetime(2016, 11, 28, 13, 5, tzinfo=UTC)
    save_page(engine, "example", Page([Post("x", str(n), when, "a", "post") for n in range(30)]))
    out = config.path.parent / "posts.csv"
    out.write_text("an older export\n", encoding="utf-8")
    monkeypatch.setattr("reports.export_sql.CHUNK", 10)
    real, seen = export_sql._lines, []

    def breaking(rows, *args):
        if seen:
            raise RuntimeError("the database went away")
        seen.append(out.read_text(encoding="utf-8"))  # what a reader sees while it is written
        return real(rows, *args)

    monkeypatch.setattr(export_sql, "_lines", breaking)
    with pytest.raises(RuntimeError, match="went away"):
        export_module.export_to(engine, config, out, ExportOptions(), manifest=True)
    assert seen == ["an older export\n"]
    assert out.read_text(encoding="utf-8") == "an older export\n"
    assert not out.with_name("posts.csv.manifest.json").exists()
