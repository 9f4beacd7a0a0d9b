"""The CSV export written by the database: one SELECT gives each post's line, every cell formatted,
guarded against formulas and quoted as docs/data-dictionary.md says, on SQLite and PostgreSQL
alike, so Python only joins strings and writes them a chunk at a time.

SQL writes what it can write exactly; a row it cannot is written by the Python path of
reports/export.py instead (a `Reference`), so both paths give the same bytes
(tests/reports/test_export_sql.py). Such a row is one with
- a stored value of an unusual form: a list holding something other than text, a time SQLite holds
  in another format, a post time outside the span whose UTC offsets were worked out (`spans`), an
  export's own `collected_at` written otherwise than `2016-11-28T13:07:42Z`: SQL gives no line;
- a NUL character (SQLite keeps them, a cell drops them): the line holds one;
- a personal identifier (aggregator/safeguarding.py) in a cell the export redacts: `IdentifierGate`
  picks the rows that could hold one (a superset of what its patterns match), which are searched;
- one of the opted-out accounts' redactor's words (aggregator/privacy.py) in any cell.
The manifest counts the rows SQL writes exactly from a few narrow columns beside each line, a chunk
at a time (`_count`), and the Python path the others as it writes them. Floats are written by
Python (`repr`, as csv.writer writes them), between the two text parts SQL gives of each line.
"""

from __future__ import annotations

import bisect
import csv
import io
import re
import sys
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from itertools import accumulate
from typing import Any, TextIO

from sqlalchemy import (
    Integer,
    LargeBinary,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB, JSONPATH, aggregate_order_by
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement

from aggregator.clock import EventClock, as_utc
from aggregator.safeguarding import Allowlist, find_identifiers
from aggregator.settings import Config
from connectors.undated import UNDATED
from reports.columns import COLUMNS, FORMULA_FIRST, SPACES, csv_cell
from reports.manifest import ExportStats
from storage.models import POST_TABLE, Assignment, Sighting
from storage.queries import PostFilter, _conditions

__all__ = ["IdentifierGate", "Reference", "spans", "write_csv"]

POSTS = POST_TABLE
ASSIGNMENTS = Assignment.__table__  # type: ignore[attr-defined]
SIGHTINGS = Sighting.__table__  # type: ignore[attr-defined]
CHUNK = 2000  # lines read, checked and written at a time
Expr = ColumnElement[Any]
# The Python path's line, and the record behind it, of each of some posts (by primary key).
Reference = Callable[[Sequence[int]], Mapping[int, tuple[str, Mapping[str, Any]]]]
# From, until (UTC), seconds east of UTC, and the offset as `clock.iso` writes it.
Span = tuple[datetime, datetime, int, str]

# A risky cell starts, after any SPACES but tab and carriage return, with one of FORMULA_FIRST (tab
# and carriage return among them): what reports.columns.FORMULA_START matches, found in SQL.
TRIMMED = "".join(c for c in SPACES if c not in "\t\r")
RISKY = tuple(sorted(ord(c) for c in FORMULA_FIRST))
# A quick first test of that: the first character is one of SPACES or FORMULA_FIRST (a GLOB class).
RISKY_START = "[" + "".join(sorted(set(SPACES + FORMULA_FIRST) - {"-"})) + "-]*"
QUOTED = (",", '"', "\n", "\r")  # a cell holding one is quoted (csv.writer, QUOTE_MINIMAL)
FLOATS = ("tag_score", "sentiment_polarity", "sentiment_subjectivity")  # written by Python
# UTC offsets are worked out this far (ten years) either side of the event; posts further off are
# written by Python.
OFFSET_SPAN = timedelta(days=3653)
OFFSET_STEP = timedelta(hours=6)  # no time zone changes its clocks twice within this


def _text(value: Any) -> Expr:
    return value if isinstance(value, ColumnElement) else literal(value, String)


def _cat(*parts: Any) -> Expr:
    """`a || b || …`: NULL when any part is, which is how a cell says SQL cannot write it."""
    out: Expr = type_coerce(_text(parts[0]), String)
    for part in parts[1:]:
        out = out.concat(_text(part))
    return out


@dataclass(frozen=True)
class _Sql:
    """What SQLite and PostgreSQL write differently, each as an expression."""

    pg: bool

    def has(self, text: Expr, part: str) -> Expr:
        return (func.strpos(text, part) if self.pg else func.instr(text, part)) > 0

    def nul(self, json: Expr) -> Expr:
        """JSON text holds a NUL (\\u0000), which SQLite's JSON functions cut a text at and
        PostgreSQL's refuse to give as text: SQL leaves such a row to Python."""
        return self.has(json, "\\u0000")

    def cell(self, value: Expr, holds: Sequence[str] = QUOTED) -> Expr:
        """`csv_cell` and csv.writer's quoting of a text value (not NULL), in SQL; `holds` is which
        of QUOTED the value may hold (a list written from simple JSON has no quote or line break)."""
        mark = case((self.risky(value), "'"), else_="")
        quoted = or_(*(value.like(f"%{c}%") for c in holds))
        inside = func.replace(value, '"', '""') if '"' in holds else value
        return case((quoted, _cat('"', mark, inside, '"')), else_=_cat(mark, value))

    def risky(self, value: Expr) -> Expr:
        """A spreadsheet would run the value as a formula (FORMULA_START)."""
        first = func.ascii if self.pg else func.unicode  # the first character's code point
        exact = first(func.ltrim(value, TRIMMED)).in_(RISKY)
        return exact if self.pg else and_(value.op("GLOB", is_comparison=True)(RISKY_START), exact)

    def as_text(self, column: Any) -> Expr:
        """A JSON, number or time column as text (SQLite holds them as text already)."""
        return cast(column, String) if self.pg else type_coerce(column, String)

    # times

    def unreadable(self, column: Any) -> list[tuple[Expr, None]]:
        """A CASE branch giving NULL when SQLite holds the time in another form than SQLAlchemy
        writes; none on PostgreSQL, which holds times as times."""
        return [] if self.pg else [(func.length(self.as_text(column)) != 26, None)]

    def utc(self, column: Any) -> Expr:
        """A stored time as `2016-11-28T13:05:00Z` (a fraction dropped); NULL when SQLite holds it
        in another form than SQLAlchemy writes (`2016-11-28 13:05:00.000000`)."""
        if self.pg:
            return func.to_char(func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
        text = self.as_text(column)
        whole = _cat(func.substr(text, 1, 10), "T", func.substr(text, 12, 8), "Z")
        return case((func.length(text) == 26, whole))

    def wall(self, column: Any, seconds: int) -> Expr:
        """A stored time `seconds` later, as `2016-11-28T22:05:00` (a fraction dropped)."""
        if self.pg:
            moved = func.timezone("UTC", column) + func.make_interval(0, 0, 0, 0, 0, 0, seconds)
            return func.to_char(moved, 'YYYY-MM-DD"T"HH24:MI:SS')
        text = self.as_text(column)
        if seconds == 0:
            return _cat(func.substr(text, 1, 10), "T", func.substr(text, 12, 8))
        return func.strftime("%Y-%m-%dT%H:%M:%S", func.substr(text, 1, 19), f"{seconds:+d} seconds")

    def time_shaped(self, text: Expr) -> Expr:
        """`text` is digits, dashes and colons as in 2016-11-28T13:07:42Z."""
        if self.pg:
            digit = "[0123456789]"  # not a range, which a collation could widen
            shape = (
                f"^{digit}{{4}}-{digit}{{2}}-{digit}{{2}}T{digit}{{2}}:{digit}{{2}}:{digit}{{2}}Z$"
            )
            return text.op("~", is_comparison=True)(shape)
        digits = "[0-9]" * 4, "[0-9]" * 2
        return text.op("GLOB", is_comparison=True)(
            f"{digits[0]}-{digits[1]}-{digits[1]}T{digits[1]}:{digits[1]}:{digits[1]}Z"
        )

    # a post's raw payload

    def raw_kind(self, key: str) -> Expr:
        """The JSON type of raw[key] in SQLite's words (text, integer, real, true…), '' when there
        is none; a whole number is an `integer` only when SQL writes its digits as Python does."""
        if self.pg:
            kind = func.json_typeof(POSTS.c.raw.op("->")(literal(key, String)))
            digits = self.raw_value(key).op("~", is_comparison=True)("^(0|-?[1-9][0-9]*)$")
            named = case(
                (kind == "string", "text"),
                (kind == "number", case((digits, "integer"), else_="real")),
                else_=kind,
            )
            return func.coalesce(named, "")
        raw, path = self.as_text(POSTS.c.raw), f"$.{key}"
        kind = func.json_type(raw, path)
        big = func.typeof(func.json_extract(raw, path)) == "real"  # a whole number past 64 bits
        return func.coalesce(case((and_(kind == "integer", big), "real"), else_=kind), "")

    def raw_value(self, key: str) -> Expr:
        """raw[key] as text: a string, or a number's digits."""
        if self.pg:
            return POSTS.c.raw.op("->>", return_type=String)(literal(key, String))
        return cast(func.json_extract(self.as_text(POSTS.c.raw), f"$.{key}"), String)

    # lists

    def json_list(
        self, column: Any, item: Callable[[Expr], Expr], objects: bool = False, at: bool = False
    ) -> Expr:
        """The cell of a list column: `item` of each text (each object, with `objects`; anything
        else is left out, as reports.export leaves it), joined by spaces, a space in an item
        written %20, empty items left out. NULL when the column is not a list, or holds what SQL
        does not write as reports.export does (a number among texts, a url that is not text).
        `at`: `item` takes @ off the start of a text."""
        stored = self.as_text(column)
        general = self._each(column, item, objects)
        odd = (stored == "[]", ""), (self.nul(stored), None)
        if objects:
            return case(*odd, else_=general)
        # Most lists are JSON as Python writes it with no escapes: ["a", "b"]. Its texts are what
        # lies between the quotes, so they can be joined by replacing what is between them.
        inside = func.substr(stored, 3, func.length(stored) - 4)
        joined = func.replace(func.replace(inside, " ", "%20"), '",%20"', " ")
        plain = [stored.like('["%"]'), ~self.has(stored, "\\"), ~self.has(stored, '""')]
        if at:
            plain.append(~self.has(stored, '"@'))
        # every quote was between two texts (no number, list or object); '""' is an empty text
        simple = and_(*plain, ~self.has(joined, '"'))
        return case(*odd, (simple, self.cell(joined, (",",))), else_=general)

    def _each(self, column: Any, item: Callable[[Expr], Expr], objects: bool) -> Expr:
        """`json_list` item by item, for any JSON."""
        if self.pg:
            each = func.json_array_elements(column).table_valued("value", with_ordinality="n")
            each = each.render_derived(name="item", with_types=False)
            kind = func.json_typeof(each.c.value)
            text = item(each.c.value)
            wanted = kind == ("object" if objects else "string")
        else:
            each = func.json_each(column).table_valued("key", "value", "type", name="item")
            text = item(each.c.value)
            wanted = each.c.type == ("object" if objects else "text")
        bad = and_(wanted, text.is_(None)) if objects else or_(~wanted, text.is_(None))
        if not self.pg:  # json_each of an object or of a lone value: keys that are not numbers
            bad = or_(bad, func.typeof(each.c.key) != "integer")
        spaced = case((and_(wanted, text != ""), func.replace(text, " ", "%20")))
        joined: Expr
        any_bad: Expr
        if self.pg:
            joined = func.string_agg(spaced, aggregate_order_by(literal(" "), each.c.n))
            any_bad = func.bool_or(bad)
        else:
            joined, any_bad = func.group_concat(spaced, " "), func.max(bad) == 1
        cell = select(case((any_bad, None), else_=self.cell(func.coalesce(joined, ""))))
        found = cell.select_from(each).scalar_subquery()
        return case((func.json_typeof(column) == "array", found)) if self.pg else found

    def list_text(self, value: Expr) -> Expr:
        """A list item's text when it is a string (SQLite's json_each gives that already)."""
        return value.op("#>>", return_type=String)(literal_column("'{}'")) if self.pg else value

    def media_url(self, value: Expr) -> Expr:
        """A media object's url: its text, '' when it has none, NULL when it is not text."""
        if self.pg:
            url = value.op("->")(literal("url", String))
            text = value.op("->>", return_type=String)(literal("url", String))
            return case((url.is_(None), ""), (func.json_typeof(url) == "string", text))
        kind = func.json_type(value, "$.url")
        return case((kind.is_(None), ""), (kind == "text", func.json_extract(value, "$.url")))

    # what Python searches

    def probe(self, texts: Sequence[Expr], lists: Sequence[Any]) -> Expr:
        """`texts`, then every item of the JSON `lists`, as UTF-8 bytes, each after a NUL (which
        PostgreSQL text cannot hold, so it joins bytes)."""
        nul: Expr
        if self.pg:
            nul = literal(b"\x00", LargeBinary)
            out: Expr = literal(b"", LargeBinary)
            for text in texts:
                out = out.concat(nul).concat(func.convert_to(text, "UTF8"))
            for column in lists:
                each = func.json_array_elements_text(column).table_valued("value")
                each = each.render_derived(name="item", with_types=False)
                items = func.string_agg(nul.concat(func.convert_to(each.c.value, "UTF8")), b"")
                found = select(items).select_from(each).scalar_subquery()
                listed = func.json_typeof(column) == "array"
                out = out.concat(func.coalesce(case((listed, found)), b""))
            return out
        nul = func.char(0)
        parts: list[Any] = [part for text in texts for part in (nul, text)]
        for column in lists:
            each = func.json_each(column).table_valued("value", name="item")
            joined = select(func.group_concat(_cat(nul, each.c.value), "")).select_from(each)
            parts.append(func.coalesce(joined.scalar_subquery(), ""))
        return cast(_cat(*parts), LargeBinary)

    def strings(self, column: Any) -> Expr:
        """Every string anywhere in a JSON value, one a line: where the opted-out accounts'
        words are looked for in media (alt text and account keys, besides the url). NULL when one
        holds a NUL."""
        if self.pg:
            tree = func.jsonb_path_query(
                cast(column, JSONB), cast(literal("strict $.**"), JSONPATH)
            )
            each = tree.table_valued("value").render_derived(name="node", with_types=False)
            text = each.c.value.op("#>>", return_type=String)(literal_column("'{}'"))
            string = func.jsonb_typeof(each.c.value) == "string"
            found = select(func.string_agg(text, "\n")).where(string)
        else:
            each = func.json_tree(column).table_valued("value", "type", name="node")
            found = select(func.group_concat(each.c.value, "\n")).where(each.c.type == "text")
        stored = self.as_text(column)
        every = func.coalesce(found.select_from(each).scalar_subquery(), "")
        return case((stored == "[]", ""), (self.nul(stored), None), else_=every)


# -- times in the event's zone -------------------------------------------------------------------


def spans(clock: EventClock, first: datetime, last: datetime) -> list[Span]:
    """The event zone's UTC offsets from `first` until `last`, one span each, found in steps of
    OFFSET_STEP and each change to its second. An offset with a fraction of a second (no real
    zone's) has no span: its posts are written by Python."""

    def offset(instant: datetime) -> timedelta:
        return clock.local(instant).utcoffset() or timedelta(0)

    edges: list[tuple[datetime, datetime]] = []
    first, last = as_utc(first), as_utc(last)  # arithmetic on instants, not on a wall clock
    start, at, before = first, first, offset(first)
    while at < last:
        step = min(at + OFFSET_STEP, last)
        if (now := offset(step)) != before:  # the change, a whole second, is in (at, step]
            low, high = at, step
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                low, high = (middle, high) if offset(middle) == before else (low, middle)
            edges.append((start, high.replace(microsecond=0)))
            start, before = edges[-1][1], now
        at = step
    edges.append((start, last))
    second = timedelta(seconds=1)
    return [
        (begin, end, offset(begin) // second, clock.iso(begin)[19:])
        for begin, end in edges
        if begin < end and offset(begin) % second == timedelta(0)
    ]


def _window(conn: Connection, config: Config) -> tuple[datetime, datetime] | None:
    """Where the stored posts' times are, bounded to OFFSET_SPAN either side of the event."""
    first = conn.execute(select(func.min(POSTS.c.created_at))).scalar()
    last = conn.execute(select(func.max(POSTS.c.created_at))).scalar()
    if first is None or last is None:
        return None
    anchor = as_utc(min((s.start for s in config.sessions), default=last))
    first, last = max(first, anchor - OFFSET_SPAN), min(last, anchor + OFFSET_SPAN)
    return (first, last + timedelta(seconds=1)) if first <= last else None


# -- the query ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Fixed:
    """The query's expressions that depend only on the database: built once (building is slow)."""

    cells: dict[str, Expr]  # by column, all but created_local and session_title
    tail: Expr  # ",source,collected_at\r\n"; NULL when SQL cannot write the times exactly
    probe: Expr  # what IdentifierGate reads
    media: Expr  # the media's strings, where the opted-out accounts' words are looked for
    # What the manifest counts of a row SQL writes exactly: its source, and its created_at (NULL
    # for a post with no time) and collected_at as ISO text.
    counted: tuple[Expr, Expr, Expr]


@cache
def _fixed(pg: bool) -> _Fixed:
    sql, p, a = _Sql(pg), POSTS.c, ASSIGNMENTS.c
    named, source, collected = _provenance(sql)
    created = sql.utc(p.created_at)

    def text(column: Any) -> Expr:
        return sql.cell(func.coalesce(column, ""))

    cells: dict[str, Expr] = {
        "platform": sql.cell(p.platform),
        "post_id": sql.cell(p.post_id),
        "url": text(p.url),
        "created_at": case((p.created_at == UNDATED, ""), else_=created),
        "author": sql.cell(p.author),
        "author_name": text(p.author_name),
        "text": sql.cell(p.text),
        "lang": text(p.lang),
        "hashtags": sql.json_list(p.hashtags, sql.list_text),
        "mentions": sql.json_list(p.mentions, lambda v: func.ltrim(sql.list_text(v), "@"), at=True),
        "links": sql.json_list(p.links, sql.list_text),
        "media": sql.json_list(p.media, sql.media_url, objects=True),
        "reply_to": _reply_to(sql),
        "repost_of": text(p.repost_of),
        "quote_of": text(p.quote_of),
        **{
            n: func.coalesce(sql.as_text(p[n]), "")
            for n in ("likes", "reposts", "replies", "quotes")
        },
        "session_id": text(a.session_id),
        "tag_reason": text(a.reason),
    }
    plain = {"source": sql.cell(p.source), "collected_at": sql.utc(p.collected_at)}
    ours = {"source": sql.cell(source), "collected_at": collected}
    after = list(COLUMNS)[list(COLUMNS).index(FLOATS[-1]) + 1 :]
    assert after == list(plain)
    tails = [_cat(*(part for n in after for part in (",", c[n])), "\r\n") for c in (plain, ours)]
    texts = [p.text, func.coalesce(p.author_name, ""), func.coalesce(a.reason, "")]
    return _Fixed(
        cells=cells,
        tail=case(*sql.unreadable(p.created_at), (~named, tails[0]), else_=tails[1]),
        probe=sql.probe(texts, [p.links]),
        media=sql.strings(p.media),
        counted=(
            case((named, source), else_=p.source),
            case((p.created_at == UNDATED, None), else_=created),
            case((named, collected), else_=sql.utc(p.collected_at)),
        ),
    )


def _lines_query(
    sql: _Sql,
    config: Config,
    filters: PostFilter,
    zone: Sequence[Span],
    identifiers: bool,
    opted_out: bool,
) -> Select[Any]:
    """Each post's id, the text of its line before the FLOATS, the FLOATS, the rest of the line;
    what IdentifierGate reads and the media's strings (None unless asked for); its platform,
    session, and `_Fixed.counted`."""
    p, a, fixed = POSTS.c, ASSIGNMENTS.c, _fixed(sql.pg)
    undated = p.created_at == UNDATED
    local = case(
        *[
            (and_(p.created_at >= start, p.created_at < end), _cat(sql.wall(p.created_at, s), iso))
            for start, end, s, iso in zone
        ],
        else_=None,
    ) if zone else literal(None, String)  # fmt: skip
    cells = {
        **fixed.cells,
        "created_local": case((undated, ""), else_=local),
        "session_title": _titles(config),
    }
    names = list(COLUMNS)
    at = names.index(FLOATS[0])
    assert set(cells) == set(names[:at]) and names[at : at + len(FLOATS)] == list(FLOATS)
    head = _cat(*(part for n in names[:at] for part in (cells[n], ",")))
    columns: list[Any] = [p.id, head, a.score, p.sentiment_polarity, p.sentiment_subjectivity]
    columns.append(fixed.tail)
    columns.append(fixed.probe if identifiers else literal(None))
    columns.append(fixed.media if opted_out else literal(None))
    columns += [p.platform, a.session_id, *fixed.counted]
    joined = POSTS.outerjoin(ASSIGNMENTS, a.post_pk == p.id)
    where = _conditions("postgresql" if sql.pg else "sqlite", filters)
    return select(*columns).select_from(joined).where(*where).order_by(p.created_at, p.id)


def _reply_to(sql: _Sql) -> Expr:
    """The reply_to cell: a Mastodon reply's instance-local parent id as the parent's own id
    where the parent is stored (storage.queries.resolve_replies, row by row in SQL); the lookup
    written once, inside the cell, not once for each time the cell reads its value."""
    p, parent = POSTS.c, POSTS.alias("parent")
    seen_on = func.substr(SIGHTINGS.c.via, 1, func.length(p.reply_to_via) + 1)
    found = (
        select(sql.cell(parent.c.post_id))
        .select_from(SIGHTINGS.join(parent, parent.c.id == SIGHTINGS.c.post_pk))
        .where(
            SIGHTINGS.c.local_id == p.reply_to,
            seen_on == p.reply_to_via + " ",  # via is "<instance> #<tag>"
            parent.c.platform == p.platform,
        )
        .order_by(parent.c.id)
        .limit(1)
        .scalar_subquery()
    )
    local = and_(p.reply_to_via.is_not(None), p.reply_to != "")
    as_stored = sql.cell(func.coalesce(p.reply_to, ""))
    return case((local, func.coalesce(found, as_stored)), else_=as_stored)


def _titles(config: Config) -> Expr:
    """Each session's title as a cell, by the assignment's session id."""
    titles = {s.id: _python_cell(s.title) for s in config.sessions}
    sid = func.coalesce(ASSIGNMENTS.c.session_id, "")
    return case(titles, value=sid, else_="") if titles else literal("", String)


def _python_cell(value: str) -> str:
    """One text cell as reports.export writes it."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow([csv_cell(value), ""])
    return buffer.getvalue()[:-1]


def _provenance(sql: _Sql) -> tuple[Expr, Expr, Expr]:
    """How reports.export finds `source` and `collected_at`: a post imported from one of our JSONL
    exports keeps the source and time that export named. Whether the raw payload may name them
    (a quick test, false for most posts), then the source and time when it does; NULL when SQL
    cannot tell as Python does (an id that is neither text nor a whole number, or a time not
    written `2016-11-28T13:07:42Z`)."""
    p = POSTS.c
    raw = sql.as_text(p.raw)
    named = and_(raw.like('%"source"%'), raw.like('%"collected_at"%'))
    unsure = sql.nul(raw)
    same = and_(sql.raw_kind("platform") == "text", sql.raw_value("platform") == p.platform)
    known_id = sql.raw_kind("id").in_(["text", "integer"])
    ours = and_(
        sql.raw_value("id") == p.post_id,
        sql.raw_kind("source") == "text",
        sql.raw_kind("collected_at") == "text",
    )
    when = sql.raw_value("collected_at")
    source = case(
        (unsure, None),
        (~same, p.source),
        (~known_id, None),
        (~ours, p.source),
        (_canonical(sql, when), sql.raw_value("source")),
        else_=None,
    )
    collected = case(
        (unsure, None),
        (~same, sql.utc(p.collected_at)),
        (~known_id, None),
        (~ours, sql.utc(p.collected_at)),
        (_canonical(sql, when), when),
        else_=None,
    )
    return named, source, collected


def _canonical(sql: _Sql, when: Expr) -> Expr:
    """`when` is a time as our exports write it (`2016-11-28T13:07:42Z`), a real date and time
    from 1970 to 2099 (what connectors.base.parse_time takes), so it is written as it is."""

    def number(first: int, length: int) -> Expr:
        return cast(func.substr(when, first, length), Integer)

    year, month, day = number(1, 4), number(6, 2), number(9, 2)
    leap = or_(and_(year % 4 == 0, year % 100 != 0), year % 400 == 0)
    days = case((month == 2, case((leap, 29), else_=28)), (month.in_([4, 6, 9, 11]), 30), else_=31)
    valid = and_(
        year.between(1970, 2099), month.between(1, 12), day.between(1, days),
        number(12, 2) <= 23, number(15, 2) <= 59, number(18, 2) <= 59,
    )  # fmt: skip
    return case((sql.time_shaped(when), valid), else_=False)  # no number read from other text


# -- personal identifiers -------------------------------------------------------------------------


def _table(*pairs: tuple[bytes, int]) -> bytes:
    """A bytes.translate table: each byte of each pair's bytes to its one byte, others to themselves."""
    table = bytearray(range(256))
    for chars, to in pairs:
        for c in chars:
            table[c] = to
    return bytes(table)


# Every digit to 0, every ASCII letter to a, every byte of a non-ASCII character to 0x80.
SHAPE = _table(
    (b"0123456789", ord("0")),
    (b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", ord("a")),
    (bytes(range(0x80, 0x100)), 0x80),
)
# In a shape: ten digits or more, apart by at most six of what NHS and phone numbers are written
# with (space, hyphen, dot, brackets, +, a no-break space's two bytes), as safeguarding's
# NHS_NUMBER and PHONE need; or a postcode's end (POSTCODE): a digit, maybe a letter or digit, maybe
# a space, a digit and two letters.
NUMBERS = re.compile(rb"0(?:(?:[ \-.()+\x80]{0,6}0){9}|[a0]? ?0aa)")
EMAIL_LOCAL = b"a0.%+-_\x80"  # what EMAIL's local part is made of (\w, . % + -), in a shape
EMAIL_DOMAIN = re.compile(rb"@[a0.\-]*\.aa")  # @, then a domain ending in a dot and two letters
LOOK_BACK = 256  # bytes read back from an @ for the local part; a longer one is a suspect


@cache
def _other_digits() -> re.Pattern[bytes]:
    """The UTF-8 of any decimal digit outside ASCII (safeguarding's \\d matches them all), as a
    pattern branching byte by byte."""
    wide = next(t for t in "IL" if array(t).itemsize == 4)
    codes = array(wide, range(0x80, 0xD800)) + array(wide, range(0xE000, 0x110000))
    everything = codes.tobytes().decode(f"utf-32-{sys.byteorder[0]}e")  # all but ASCII, surrogates
    digits = re.findall(r"\d", everything)  # what re's \d matches, the same as str.isdecimal
    tree: dict[int, Any] = {}
    for digit in digits:
        node = tree
        for byte in digit.encode("utf-8"):
            node = node.setdefault(byte, {})

    def pattern(node: dict[int, Any]) -> bytes:
        leaves = [b for b, child in node.items() if not child]
        choices = [re.escape(bytes([b])) + pattern(child) for b, child in node.items() if child]
        if leaves:
            choices.append(b"[" + b"".join(re.escape(bytes([b])) for b in leaves) + b"]")
        return choices[0] if len(choices) == 1 else b"(?:" + b"|".join(choices) + b")"

    return re.compile(pattern(tree))


class IdentifierGate:
    """Which rows could hold a personal identifier in a cell the export redacts, read from each
    row's `probe` (its texts as UTF-8, each after a NUL) a chunk at a time: every row where one of
    aggregator.safeguarding's patterns could match, and some where none does; then, for those,
    whether one really is there (`found`)."""

    def __init__(self, allowlist: Allowlist) -> None:
        self.allowlist = allowlist

    def suspects(self, probes: Sequence[bytes]) -> dict[int, set[int]]:
        """The rows that could hold an identifier, by position in `probes`: for each, where in
        its probe each text that could hold one starts."""
        joined = b"".join(probes)
        starts = [0, *accumulate(map(len, probes))]
        found: dict[int, set[int]] = {}

        def hit(at: int) -> None:  # `at` in `joined`: the start of its text, in its probe
            row = bisect.bisect_right(starts, at) - 1
            found.setdefault(row, set()).add(joined.rfind(b"\x00", starts[row], at) - starts[row])

        for m in _other_digits().finditer(joined):
            hit(m.start())
        shape = joined.translate(SHAPE)
        for m in NUMBERS.finditer(shape):
            hit(m.start())
        at = shape.find(b"@")
        while at >= 0:
            before = shape[max(0, at - LOOK_BACK) : at]
            rest = before.rstrip(EMAIL_LOCAL)
            too_long = not rest and at > LOOK_BACK
            if too_long or (
                len(rest) < len(before) and rest[-1:] != b"@" and EMAIL_DOMAIN.match(shape, at)
            ):
                hit(at)
            at = shape.find(b"@", at + 1)
        return found

    def found(self, probe: bytes, starts: Iterable[int]) -> bool:
        """Whether one of the probe's texts starting (after their NUL) at `starts` holds one."""
        for start in starts:
            end = probe.find(b"\x00", start + 1)
            text = probe[start + 1 : end if end >= 0 else len(probe)].decode("utf-8")
            if find_identifiers(text, self.allowlist):
                return True
        return False


# -- writing -----------------------------------------------------------------------------------


def _number(value: float | None) -> str:
    return "" if value is None else repr(value)  # as csv.writer writes a float


def write_csv(
    conn: Connection,
    out: TextIO,
    config: Config,
    filters: PostFilter,
    stats: ExportStats,
    reference: Reference,
    gate: IdentifierGate | None = None,
    words: Sequence[str] = (),
) -> None:
    """Write the lines of the posts `filters` select (the header is the caller's), counting them
    into `stats`. `reference` writes a row SQL cannot; `gate` finds the rows that may hold a
    personal identifier (None: they are not redacted); `words` are the opted-out accounts'
    redactor's (lower case), a row holding one of which Python writes."""
    sql = _Sql(conn.dialect.name == "postgresql")
    window = _window(conn, config)
    zone = spans(EventClock(config.event.timezone), *window) if window else []
    query = _lines_query(sql, config, filters, zone, gate is not None, bool(words))
    for rows in conn.execute(query.execution_options(yield_per=CHUNK)).partitions():
        out.write("".join(_lines(rows, stats, reference, gate, words)))


def _lines(
    rows: Sequence[Any],
    stats: ExportStats,
    reference: Reference,
    gate: IdentifierGate | None,
    words: Sequence[str],
) -> list[str]:
    """The lines of a chunk of rows of `_lines_query`, counted into `stats`."""
    lines = [
        ""
        if head is None or tail is None
        else f"{head}{_number(a)},{_number(b)},{_number(c)}{tail}"
        for _, head, a, b, c, tail, *_ in rows
    ]
    redo = {i for i, row in enumerate(rows) if row[1] is None or row[5] is None}
    if "\x00" in "".join(lines):
        redo.update(i for i, line in enumerate(lines) if "\x00" in line)
    if gate is not None:
        probes = [row[6] for row in rows]
        suspects = gate.suspects(probes).items()
        redo.update(i for i, texts in suspects if i not in redo and gate.found(probes[i], texts))
    if words:
        redo.update(i for i, line in enumerate(lines) if _holds(line, rows[i][7], words))
    _count([row[8:] for row in rows if row[5] is not None], stats)
    if redo:
        done = reference([rows[i][0] for i in sorted(redo)])
        for i in redo:
            lines[i], record = done[rows[i][0]]
            if rows[i][5] is None:  # SQL could not count it
                stats.add(record)
    return lines


def _count(rows: Sequence[Any], stats: ExportStats) -> None:
    """Count rows of (platform, session, source, created_at, collected_at as ISO text)."""
    for (platform, session, source), n in Counter(row[:3] for row in rows).items():
        stats.add_group(platform, session, source, n)
    for column, at in (("created_at", 3), ("collected_at", 4)):
        if times := [row[at] for row in rows if row[at] is not None]:
            stats.widen(
                column, datetime.fromisoformat(min(times)), datetime.fromisoformat(max(times))
            )


def _holds(line: str, media: str | None, words: Sequence[str]) -> bool:
    """Whether a line, or its media's strings (None: not known), holds one of `words`."""
    if media is None:
        return True
    folded = f"{line}\n{media}".casefold()
    return any(word in folded for word in words)
