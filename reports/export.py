"""Research exports (csv, jsonl, ids) streamed from SQL row by row, and the manifest beside them."""

from __future__ import annotations

import csv
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from aggregator import __version__
from aggregator.config import Config
from aggregator.privacy import Pseudonymiser, opt_out_redactor, pseudonym_key
from connectors.base import parse_time
from storage.models import PostRow, SourceOutcome
from storage.queries import PostFilter, iter_posts, opted_out_filter

__all__ = [
    "COLUMNS",
    "EXCEL_MAX_ROWS",
    "FORMATS",
    "ExportOptions",
    "ExportStats",
    "ExportUsage",
    "csv_cell",
    "export",
    "iter_records",
    "make_options",
    "manifest_path",
    "parse_when",
    "spreadsheet_warning",
    "write_manifest",
]

FORMATS = ("csv", "jsonl", "ids")
GENERAL = "general"  # --session value for posts outside every session
LIST_DELIMITER = " "  # cannot occur unescaped in a hashtag, handle or URL
EXCEL_MAX_ROWS = 1_048_576  # rows in one Excel sheet, the header included
# A spreadsheet runs a cell as a formula when it starts with one of these, even after spaces.
FORMULA_START = re.compile(r"^[\s\u3000]*[=+\-@\t\r＝＋－＠]")
POSTS = PostRow.__table__  # type: ignore[attr-defined]

# The CSV columns, in order; docs/data-dictionary.md says the same at length.
COLUMNS: dict[str, str] = {
    "platform": "text: mastodon, bluesky, x, feed, or an archive's own name",
    "post_id": "text: the post's id on its platform (never a number: long ids stay exact)",
    "url": "text: link to the post; empty when unknown, always empty when pseudonymised",
    "created_at": "ISO 8601 date-time in UTC, ending in Z",
    "created_local": "ISO 8601 date-time in the event's time zone, with its offset",
    "author": "text: the account (user@instance, a handle, or a screen name); a pseudonym when pseudonymised",
    "author_name": "text: the display name; empty when unknown; a pseudonym when pseudonymised",
    "text": "text: the post's plain text",
    "lang": "text: language code; empty when unknown",
    "hashtags": "list: hashtags without #",
    "mentions": "list: accounts mentioned, without @",
    "links": "list: URLs in the post",
    "media": "list: URLs of attached media (alt text is in the JSONL export)",
    "reply_to": "text: id of the post this replies to; empty when not a reply",
    "repost_of": "text: id of the post this reposts; empty when not a repost",
    "quote_of": "text: id of the post this quotes; empty when not a quote",
    "likes": "whole number when collected; empty when the source did not say",
    "reposts": "whole number when collected; empty when the source did not say",
    "replies": "whole number when collected; empty when the source did not say",
    "quotes": "whole number when collected; empty when the source did not say",
    "session_id": "text: the programme session; empty for a general post or one not yet tagged",
    "session_title": "text: that session's title",
    "tag_reason": "text: why the post was put in its session; empty when not yet tagged",
    "tag_score": "number 0-1: how sure the tagger was; empty when not yet tagged",
    "sentiment_polarity": "number -1 to 1; empty when not computed",
    "sentiment_subjectivity": "number 0 to 1; empty when not computed",
    "source": "text: the source that first found the post",
    "collected_at": "ISO 8601 date-time in UTC when the post was first stored",
}
INTERCHANGE = (
    "platform", "id", "created_at", "author", "text", "url", "author_name", "reply_to", "repost_of",
    "quote_of", "likes", "reposts", "replies", "quotes", "lang", "hashtags", "mentions", "links",
    "media", "edited_at", "html",
)  # fmt: skip
EXTRAS = (
    "created_local", "session_id", "session_title", "tag_reason", "tag_score",
    "sentiment_polarity", "sentiment_subjectivity", "source", "collected_at",
)  # fmt: skip


class ExportUsage(ValueError):
    """A bad export option: `param` names it, the message says how to fix it."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class ExportOptions:
    fmt: str = "csv"
    filters: PostFilter = field(default_factory=PostFilter)
    key: bytes | None = None  # pseudonymise when set
    excel: bool = False


@dataclass
class ExportStats:
    """What was written: counts and time windows, gathered while streaming."""

    rows: int = 0
    platforms: Counter[str] = field(default_factory=Counter)
    sessions: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)
    windows: dict[str, list[datetime]] = field(default_factory=dict)  # column -> [first, last]

    def add(self, rec: Mapping[str, Any]) -> None:
        self.rows += 1
        self.platforms[rec["platform"]] += 1
        self.sessions[rec["session_id"] or GENERAL] += 1
        self.sources[rec["source"]] += 1
        for column in ("created_at", "collected_at"):
            when = rec[column]
            first, last = self.windows.get(column, (when, when))
            self.windows[column] = [min(first, when), max(last, when)]

    def window(self, column: str, end: int) -> str | None:
        return _iso(self.windows[column][end]) if column in self.windows else None


def parse_when(value: str, tz: tzinfo, end: bool = False) -> datetime:
    """A date or date-time, in `tz` unless it carries an offset, as aware UTC. With `end`,
    a bare date means the end of that day."""
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a date (2016-11-28) or date-time (2016-11-28T13:00, "
            "with an offset such as +01:00 or Z if it is not in the event's time zone)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    try:
        date.fromisoformat(text)
        is_date = True
    except ValueError:
        is_date = False
    return (parsed + timedelta(days=1) if end and is_date else parsed).astimezone(UTC)


def make_options(
    config: Config,
    fmt: str = "csv",
    sessions: Sequence[str] = (),
    platforms: Sequence[str] = (),
    since: str | None = None,
    until: str | None = None,
    hashtags: Sequence[str] = (),
    pseudonymise: bool = False,
    excel: bool = False,
    env: Mapping[str, str] | None = None,
) -> ExportOptions:
    """Validate the command's options into ExportOptions; ExportUsage or PrivacyError if wrong."""
    if excel and fmt != "csv":
        raise ExportUsage("--excel", "--excel applies to --format csv only")
    if pseudonymise and fmt == "ids":
        raise ExportUsage("--pseudonymise", "an ids export exists to look posts up again, "
                          "so it cannot be pseudonymised: use csv or jsonl")  # fmt: skip
    filters = PostFilter(
        sessions=_sessions(config, sessions),
        platforms=tuple(dict.fromkeys(platforms)),
        hashtags=tuple(dict.fromkeys(h.strip().lstrip("#＃").lower() for h in hashtags)),
    )
    tz = config.event.timezone
    try:
        filters = replace(filters, since=since and parse_when(since, tz),
                          until=until and parse_when(until, tz, end=True))  # fmt: skip
    except ValueError as exc:
        raise ExportUsage("--since/--until", str(exc)) from None
    if filters.since and filters.until and filters.since >= filters.until:
        raise ExportUsage("--since/--until", f"--since {since} is not before --until {until}")
    key = pseudonym_key(os.environ if env is None else env) if pseudonymise else None
    return ExportOptions(fmt=fmt, filters=filters, key=key, excel=excel)


def _sessions(config: Config, chosen: Sequence[str]) -> tuple[str | None, ...]:
    """Session ids as given; 'general' (unless a session has that id) as None: no session."""
    known = {s.id for s in config.sessions}
    for sid in chosen:
        if sid not in known and sid != GENERAL:
            raise ExportUsage("--session", f"no session {sid!r} (sessions: {', '.join(sorted(known))}, "
                              f"or {GENERAL!r} for posts outside every session)")  # fmt: skip
    return tuple(dict.fromkeys(None if s == GENERAL and s not in known else s for s in chosen))


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def _provenance(row: Any) -> tuple[str, datetime]:
    """Who found the post first and when; for a post imported from one of our JSONL exports,
    the source and time that export named (so a re-export of an import loses nothing)."""
    raw = row.raw if isinstance(row.raw, dict) else {}
    if raw.get("platform") == row.platform and str(raw.get("id")) == row.post_id:
        source, when = raw.get("source"), raw.get("collected_at")
        if isinstance(source, str) and isinstance(when, str):
            try:
                return source, parse_time(when)
            except ValueError:
                pass
    return row.source, row.collected_at


def _record(row: Any, titles: Mapping[str, str], tz: tzinfo) -> dict[str, Any]:
    source, collected = _provenance(row)
    return {
        "platform": row.platform, "post_id": row.post_id, "url": row.url,
        "created_at": row.created_at, "created_local": row.created_at.astimezone(tz),
        "author": row.author, "author_name": row.author_name, "text": row.text, "lang": row.lang,
        "hashtags": list(row.hashtags or []), "mentions": list(row.mentions or []),
        "links": list(row.links or []), "media": list(row.media or []),
        "reply_to": row.reply_to, "repost_of": row.repost_of, "quote_of": row.quote_of,
        "likes": row.likes, "reposts": row.reposts, "replies": row.replies, "quotes": row.quotes,
        "session_id": row.session_id, "session_title": titles.get(row.session_id or ""),
        "tag_reason": row.reason, "tag_score": row.score,
        "sentiment_polarity": row.sentiment_polarity,
        "sentiment_subjectivity": row.sentiment_subjectivity,
        "source": source, "collected_at": collected,
        "html": row.html, "edited_at": row.edited_at, "raw": row.raw or {},
    }  # fmt: skip


def pseudonymiser(conn: Connection, key: bytes) -> Pseudonymiser:
    """Every account and display name in the database (not only the exported rows), so a
    name written in a post's text is replaced whoever it belongs to."""
    accounts: set[str] = set()
    names: set[str] = set()
    stmt = select(POSTS.c.author, POSTS.c.author_name, POSTS.c.mentions)
    for row in conn.execute(stmt.execution_options(yield_per=2000)):
        accounts.add(row.author)
        accounts.update(str(m) for m in row.mentions or [])
        if row.author_name:
            names.add(row.author_name)
    return Pseudonymiser(key, accounts, names)


def _pseudonymise(rec: dict[str, Any], p: Pseudonymiser) -> None:
    mentions = [str(m) for m in rec["mentions"]]
    rec["author"] = p.account(rec["author"])
    rec["author_name"] = p.name(rec["author_name"]) if rec["author_name"] else None
    rec["mentions"] = [p.mention(m) for m in mentions]
    rec["url"], rec["html"], rec["raw"] = None, None, {}  # a post URL names its author
    for key in ("post_id", "reply_to", "repost_of", "quote_of", "text", "source", "session_title"):
        rec[key] = p.text(rec[key], mentions=mentions) if rec[key] else rec[key]
    rec["tag_reason"] = p.text(rec["tag_reason"], True, mentions) if rec["tag_reason"] else None
    rec["links"] = [p.text(str(u), mentions=mentions) for u in rec["links"]]
    rec["media"] = [
        {k: p.text(v, mentions=mentions) if isinstance(v, str) else v for k, v in m.items()}
        for m in rec["media"]
        if isinstance(m, dict)
    ]


def iter_records(
    engine: Engine,
    config: Config,
    options: ExportOptions,
    stats: ExportStats | None = None,
    pseudo: Pseudonymiser | None = None,
) -> Iterator[dict[str, Any]]:
    """One dict per exported post, streamed from SQL; opted-out accounts left out and removed
    from other posts; pseudonymised when `options.key` is set."""
    opt_out = config.privacy.opt_out
    filters = replace(options.filters, exclude_authors=opted_out_filter(opt_out).exclude_authors)
    titles = {s.id: s.title for s in config.sessions}
    with engine.connect() as conn:
        redactor = opt_out_redactor(conn, opt_out)
        if options.key and pseudo is None:
            pseudo = pseudonymiser(conn, options.key)
        for row in iter_posts(conn, filters=filters):
            rec = _record(row, titles, config.event.timezone)
            if redactor:
                rec.update(redactor.fields(rec))
                rec["tag_reason"] = rec["tag_reason"] and redactor.text(rec["tag_reason"])
            if pseudo:
                _pseudonymise(rec, pseudo)
            if stats is not None:
                stats.add(rec)
            yield rec


def csv_cell(value: Any) -> Any:
    """A cell a spreadsheet shows as written: formula-like text gets a leading apostrophe, NUL
    is dropped, numbers stay numbers, None is empty."""
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    text = str(value).replace("\x00", "")
    return "'" + text if FORMULA_START.match(text) else text


def _cell_list(items: Sequence[Any]) -> str:
    return LIST_DELIMITER.join(str(i).replace(" ", "%20") for i in items if str(i))


def _csv_row(rec: Mapping[str, Any]) -> list[Any]:
    values = dict(rec)
    values["created_at"] = _iso(rec["created_at"])
    values["created_local"] = rec["created_local"].isoformat()
    values["collected_at"] = _iso(rec["collected_at"])
    values["mentions"] = [str(m).lstrip("@") for m in rec["mentions"]]
    values["media"] = [m.get("url", "") for m in rec["media"] if isinstance(m, dict)]
    for key in ("hashtags", "mentions", "links", "media"):
        values[key] = _cell_list(values[key])
    return [csv_cell(values[c]) for c in COLUMNS]


def write_csv(records: Iterator[dict[str, Any]], out: TextIO, options: ExportOptions) -> None:
    if options.excel:
        out.write("\ufeff")  # the byte-order mark that makes Excel read UTF-8
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([csv_cell(c) for c in COLUMNS])
    for rec in records:
        writer.writerow(_csv_row(rec))


def _interchange(rec: Mapping[str, Any], pseudonymised: bool) -> dict[str, Any]:
    times = {"created_at", "edited_at", "collected_at"}
    obj = {
        k: _iso(rec[k]) if k in times else rec[k] for k in (*INTERCHANGE[1:], *EXTRAS) if k != "id"
    }
    obj = {"platform": rec["platform"], "id": rec["post_id"], **obj, "url": rec["url"] or ""}
    obj["created_local"] = rec["created_local"].isoformat()
    raw = rec["raw"]
    if pseudonymised or not raw:
        return obj
    if raw.get("platform") == rec["platform"] and str(raw.get("id")) == rec["post_id"]:
        # an interchange line: its own extra keys (e.g. expected_session) go back beside ours
        return {**obj, **{k: v for k, v in raw.items() if k not in obj}}
    return {**obj, "raw": raw}  # a platform's payload, kept whole


def write_jsonl(records: Iterator[dict[str, Any]], out: TextIO, options: ExportOptions) -> None:
    for rec in records:
        out.write(json.dumps(_interchange(rec, options.key is not None), ensure_ascii=False) + "\n")


def write_ids(records: Iterator[dict[str, Any]], out: TextIO, options: ExportOptions) -> None:
    writer = csv.writer(out, lineterminator="\r\n")  # posts are unique on (platform, post_id)
    writer.writerow(["platform", "post_id"])
    for rec in records:
        writer.writerow([csv_cell(rec["platform"]), csv_cell(rec["post_id"])])


WRITERS: dict[str, Callable[[Iterator[dict[str, Any]], TextIO, ExportOptions], None]] = {
    "csv": write_csv,
    "jsonl": write_jsonl,
    "ids": write_ids,
}


def export(
    engine: Engine, config: Config, out: TextIO, options: ExportOptions
) -> tuple[ExportStats, Pseudonymiser | None]:
    """Stream the posts `options` select into `out`; returns what was written."""
    stats = ExportStats()
    pseudo = None
    if options.key:
        with engine.connect() as conn:
            pseudo = pseudonymiser(conn, options.key)
    WRITERS[options.fmt](iter_records(engine, config, options, stats, pseudo), out, options)
    return stats, pseudo


def spreadsheet_warning(rows: int) -> str | None:
    """A warning when a CSV has more rows (header included) than one Excel sheet holds."""
    if rows + 1 <= EXCEL_MAX_ROWS:
        return None
    return (
        f"{rows} rows is more than one Excel sheet holds ({EXCEL_MAX_ROWS:,} with the header): "
        "Excel will cut it short; narrow it with --since/--until/--session, or use pandas or R"
    )


def _gaps(engine: Engine, pseudo: Pseudonymiser | None) -> list[dict[str, Any]]:
    """Every source outcome that failed or warned: what may be missing from the data."""
    table = SourceOutcome.__table__  # type: ignore[attr-defined]
    scrub = pseudo.text if pseudo else str
    gaps = []
    with engine.connect() as conn:
        for o in conn.execute(select(table).order_by(table.c.id)):
            if o.status != "ok" or o.warnings or o.error:
                gaps.append({
                    "run_id": o.run_id, "source": o.source, "status": o.status,
                    "started_at": _iso(o.started_at), "error": scrub(o.error) if o.error else None,
                    "warnings": [scrub(str(w)) for w in o.warnings or []],
                })  # fmt: skip
    return gaps


def manifest(
    engine: Engine,
    config: Config,
    options: ExportOptions,
    stats: ExportStats,
    file_name: str,
    pseudo: Pseudonymiser | None = None,
) -> dict[str, Any]:
    """Provenance for an export: the event, sources, window, counts, gaps, filters and columns."""
    f = options.filters
    columns = {"csv": COLUMNS, "ids": {k: COLUMNS[k] for k in ("platform", "post_id")}}
    return {
        "file": file_name,
        "format": options.fmt,
        "generated_at": _iso(datetime.now(UTC)),
        "tool": {"name": "hashtag-aggregator", "version": __version__},
        "event": {"name": config.event.name, "timezone": str(config.event.timezone),
                  "hashtags": list(config.event.hashtags),
                  "sessions": [{"id": s.id, "title": s.title, "start": s.start.isoformat(),
                                "end": s.end.isoformat()} for s in config.sessions]},
        "sources": [{"name": s.name, "type": s.type, "enabled": s.enabled} for s in config.sources],
        "collection": {f"{edge}_{column}": stats.window(column, i)
                       for column in ("created_at", "collected_at")
                       for i, edge in enumerate(("first", "last"))},
        "counts": {"posts": stats.rows, "by_platform": dict(stats.platforms),
                   "by_session": dict(stats.sessions), "by_source": dict(stats.sources)},
        "filters": {"session": [s or GENERAL for s in f.sessions], "platform": list(f.platforms),
                    "since": _iso(f.since), "until": _iso(f.until), "hashtag": list(f.hashtags),
                    "opted_out_accounts_left_out": len(config.privacy.opt_out)},
        "pseudonymised": options.key is not None,
        "spreadsheet_safe": options.fmt != "jsonl",
        "known_gaps": _gaps(engine, pseudo),
        "columns": columns.get(options.fmt, {k: COLUMNS.get(k, "see docs/jsonl.md") for k in (*INTERCHANGE, *EXTRAS)}),
        "dictionary": "docs/data-dictionary.md",
    }  # fmt: skip


def manifest_path(output: Path) -> Path:
    return output.with_name(output.name + ".manifest.json")


def write_manifest(output: Path, data: Mapping[str, Any]) -> Path:
    """Write FILE.manifest.json beside the export, atomically."""
    path = manifest_path(output)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
