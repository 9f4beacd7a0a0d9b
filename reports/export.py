"""Research exports (csv, jsonl, ids): records streamed from SQL row by row, and the writers of each
format. A CSV export that is not pseudonymised is written by the database (reports/export_sql.py),
with this module's records as the reference for what SQL cannot write exactly."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from aggregator.clock import EventClock
from aggregator.errors import OutputError
from aggregator.files import atomic_write
from aggregator.privacy import Redactor, opt_out_redactor
from aggregator.pseudonym import Pseudonymiser
from aggregator.safeguarding import scrubber_for
from aggregator.settings import Config
from connectors.base import parse_time
from connectors.undated import undated
from reports import export_sql
from reports.columns import COLUMNS, EXTRAS, INTERCHANGE, csv_cell, iso_utc
from reports.export_options import ExportOptions
from reports.manifest import ExportStats, write_manifest
from reports.manifest import manifest as provenance
from storage.models import POST_TABLE, Assignment
from storage.queries import ASSIGNED, PostFilter, iter_posts, opted_out_filter, resolve_replies

__all__ = [
    "EXCEL_MAX_ROWS",
    "Exported",
    "csv_cell",
    "export",
    "export_to",
    "iter_records",
    "spreadsheet_warning",
]


LIST_DELIMITER = " "  # cannot occur unescaped in a hashtag, handle or URL
EXCEL_MAX_ROWS = 1_048_576  # rows in one Excel sheet, the header included
POSTS = POST_TABLE
ASSIGNMENTS = Assignment.__table__  # type: ignore[attr-defined]


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


def _record(row: Any, titles: Mapping[str, str], clock: EventClock) -> dict[str, Any]:
    """One post as exported; times stay instants (the writers format them), except
    `created_local`, which exists only to be read: the post's time in the event's zone, as text."""
    source, collected = _provenance(row)
    created = None if undated(row.created_at) else row.created_at  # its source gave no time
    return {
        "platform": row.platform, "post_id": row.post_id, "url": row.url,
        "created_at": created, "created_local": created and clock.iso(created),
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


class _Records:
    """How a stored row becomes an exported record: the event's clock and titles, opted-out
    accounts removed, personal identifiers redacted in the fields the format writes, pseudonyms."""

    def __init__(
        self, conn: Connection, config: Config, options: ExportOptions, pseudo: Pseudonymiser | None
    ) -> None:
        self.titles = {s.id: s.title for s in config.sessions}
        self.clock = EventClock(config.event.timezone)
        self.redactor = opt_out_redactor(conn, config.privacy.opt_out)
        self.identifiers = scrubber_for(config.privacy)
        self.written = IDENTIFIER_FIELDS[options.fmt]
        self.pseudo = pseudo

    def __call__(self, row: Any) -> dict[str, Any]:
        rec = _record(row, self.titles, self.clock)
        if self.redactor:
            rec.update(self.redactor.fields(rec))
            rec["tag_reason"] = rec["tag_reason"] and self.redactor.text(rec["tag_reason"])
        if self.identifiers is not None:
            for key in self.written:
                rec[key] = self.identifiers.json(rec[key])
        if self.pseudo:
            _pseudonymise(rec, self.pseudo)
        return rec


def _filters(config: Config, options: ExportOptions) -> PostFilter:
    """The posts `options` select, opted-out accounts' left out."""
    opted_out = opted_out_filter(config.privacy.opt_out).exclude_authors
    return replace(options.filters, exclude_authors=opted_out)


def iter_records(
    engine: Engine,
    config: Config,
    options: ExportOptions,
    stats: ExportStats | None = None,
    pseudo: Pseudonymiser | None = None,
) -> Iterator[dict[str, Any]]:
    """One dict per exported post, streamed from SQL; opted-out accounts left out and removed
    from other posts; pseudonymised when `options.key` is set."""
    with engine.connect() as conn:
        if options.key and pseudo is None:
            pseudo = pseudonymiser(conn, options.key)
        records = _Records(conn, config, options, pseudo)
        if stats is not None and records.identifiers is not None:
            stats.identifiers = records.identifiers.counts  # filled as the rows stream
        for row in _resolved(conn, iter_posts(conn, filters=_filters(config, options))):
            rec = records(row)
            if stats is not None:
                stats.add(rec)
            yield rec


# Where personal identifiers are redacted, by format: the free text people write (a mailto: link,
# alt text, the payload's own copy) that the file holds, so the manifest counts what the file lost.
IDENTIFIER_FIELDS = {
    "csv": ("text", "author_name", "tag_reason", "links"),
    "jsonl": ("text", "html", "author_name", "tag_reason", "links", "media", "raw"),
    "ids": (),
}


def _resolved(conn: Connection, rows: Iterable[Any], size: int = 100) -> Iterator[Any]:
    """Rows with each Mastodon reply's instance-local parent id replaced by the parent's id
    (its uri) where the parent is stored, a batch at a time so the stream stays a stream."""
    batch: list[Any] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield from resolve_replies(conn, batch)
            batch = []
    yield from resolve_replies(conn, batch)


def _cell_list(items: Sequence[Any]) -> str:
    return LIST_DELIMITER.join(str(i).replace(" ", "%20") for i in items if str(i))


def _csv_row(rec: Mapping[str, Any]) -> list[Any]:
    values = dict(rec)
    values["created_at"] = iso_utc(rec["created_at"])
    values["collected_at"] = iso_utc(rec["collected_at"])
    values["mentions"] = [str(m).lstrip("@") for m in rec["mentions"]]
    values["media"] = [m.get("url", "") for m in rec["media"] if isinstance(m, dict)]
    for key in ("hashtags", "mentions", "links", "media"):
        values[key] = _cell_list(values[key])
    return [csv_cell(values[c]) for c in COLUMNS]


def _csv_header(out: TextIO, options: ExportOptions) -> None:
    if options.excel:
        out.write("\ufeff")  # the byte-order mark that makes Excel read UTF-8
    csv.writer(out, lineterminator="\r\n").writerow([csv_cell(c) for c in COLUMNS])


def write_csv(records: Iterator[dict[str, Any]], out: TextIO, options: ExportOptions) -> None:
    _csv_header(out, options)
    writer = csv.writer(out, lineterminator="\r\n")
    for rec in records:
        writer.writerow(_csv_row(rec))


def _reference(conn: Connection, records: _Records) -> export_sql.Reference:
    """The lines this module writes, and their records, for posts SQL cannot write exactly."""

    def lines(pks: Sequence[int]) -> dict[int, tuple[str, Mapping[str, Any]]]:
        rows: list[Any] = []
        for i in range(0, len(pks), 400):  # stay under SQLite's bound-parameter limit
            stmt = (
                select(POSTS, *(ASSIGNMENTS.c[k] for k in ASSIGNED))
                .outerjoin(ASSIGNMENTS, ASSIGNMENTS.c.post_pk == POSTS.c.id)
                .where(POSTS.c.id.in_(pks[i : i + 400]))
            )
            rows += conn.execute(stmt).all()
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        done: dict[int, tuple[str, Mapping[str, Any]]] = {}
        for row in resolve_replies(conn, rows):
            rec = records(row)
            writer.writerow(_csv_row(rec))
            done[row.id] = (buffer.getvalue(), rec)
            buffer.seek(0)
            buffer.truncate()
        return done

    return lines


def _sql_words(redactor: Redactor) -> list[str] | None:
    """The opted-out accounts' redactor's words as SQL's lines can be searched for them; None
    when one holds a space or a quote, which a line writes otherwise (%20, "")."""
    words = sorted({w for n in redactor.needles for w in (n, n.casefold())}) if redactor else []
    return None if any(" " in w or '"' in w for w in words) else words


def _export_csv(engine: Engine, config: Config, out: TextIO, options: ExportOptions) -> ExportStats:
    """A CSV export that is not pseudonymised, its lines written by the database; in one snapshot,
    so the counts from SQL are of the rows written."""
    stats = ExportStats()
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ")
            if (conn.dialect.server_version_info or (0,)) >= (11,):
                # JIT-compiling the long line expressions costs seconds and saves none
                conn.exec_driver_sql("SET LOCAL jit = off")
        records = _Records(conn, config, options, None)
        words = _sql_words(records.redactor)
        if words is None:  # rare: every row through Python
            write_csv(iter_records(engine, config, options, stats), out, options)
            return stats
        gate = None
        if records.identifiers is not None:
            stats.identifiers = records.identifiers.counts  # filled by the rows Python writes
            gate = export_sql.IdentifierGate(records.identifiers.allowlist)
        _csv_header(out, options)
        reference = _reference(conn, records)
        filters = _filters(config, options)
        export_sql.write_csv(conn, out, config, filters, stats, reference, gate, words)
    return stats


def _interchange(rec: Mapping[str, Any], pseudonymised: bool) -> dict[str, Any]:
    times = {"created_at", "edited_at", "collected_at"}
    obj = {
        k: iso_utc(rec[k]) if k in times else rec[k]
        for k in (*INTERCHANGE[1:], *EXTRAS)
        if k != "id"
    }
    obj = {"platform": rec["platform"], "id": rec["post_id"], **obj, "url": rec["url"] or ""}
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
    if options.fmt == "csv" and options.key is None:
        return _export_csv(engine, config, out, options), None
    stats = ExportStats()
    pseudo = None
    if options.key:
        with engine.connect() as conn:
            pseudo = pseudonymiser(conn, options.key)
    WRITERS[options.fmt](iter_records(engine, config, options, stats, pseudo), out, options)
    return stats, pseudo


@dataclass(frozen=True)
class Exported:
    """What `export_to` wrote: the export file, its manifest (None unless asked for) and what
    went into it."""

    path: Path
    stats: ExportStats
    manifest: Path | None = None


def export_to(
    engine: Engine, config: Config, path: Path, options: ExportOptions, *, manifest: bool = False
) -> Exported:
    """Export the posts `options` select into the file `path`, written atomically (a reader sees
    the old file or the whole new one, never a partial export); with `manifest`, then
    FILE.manifest.json beside it (reports/manifest.py), atomically too.

    :raises OutputError: when the export or its manifest cannot be written.
    """
    path = Path(path)
    try:
        with atomic_write(path, newline="") as out:  # csv writes its own \r\n: no translation
            stats, pseudo = export(engine, config, out, options)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    if not manifest:
        return Exported(path, stats)
    data = provenance(engine, config, options, stats, path.name, pseudo)
    try:
        return Exported(path, stats, write_manifest(path, data))
    except OSError as exc:
        raise OutputError(
            f"cannot write the manifest beside {path}: {exc.strerror or exc}"
        ) from exc


def spreadsheet_warning(rows: int) -> str | None:
    """A warning when a CSV has more rows (header included) than one Excel sheet holds."""
    if rows + 1 <= EXCEL_MAX_ROWS:
        return None
    return (
        f"{rows} rows is more than one Excel sheet holds ({EXCEL_MAX_ROWS:,} with the header): "
        "Excel will cut it short; narrow it with --since/--until/--session, or use pandas or R"
    )
