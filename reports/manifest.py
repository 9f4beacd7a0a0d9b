"""FILE.manifest.json: an export's provenance (event, sources, window, counts, gaps, filters, columns)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from aggregator import __version__
from aggregator.clock import EventClock, utcnow
from aggregator.files import write_text
from aggregator.pseudonym import Pseudonymiser
from aggregator.safeguarding import KINDS
from aggregator.settings import Config
from reports.columns import COLUMNS, EXTRAS, INTERCHANGE, iso_utc
from reports.export_options import GENERAL, ExportOptions
from storage.models import SourceOutcome

__all__ = ["ExportStats", "manifest", "manifest_path", "write_manifest"]


@dataclass
class ExportStats:
    """What was written: counts and time windows, gathered while streaming, a record (`add`) or
    a chunk of lines (`add_group`, `widen`) at a time."""

    rows: int = 0
    platforms: Counter[str] = field(default_factory=Counter)
    sessions: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)
    windows: dict[str, list[datetime]] = field(default_factory=dict)  # column -> [first, last]
    identifiers: Counter[str] | None = None  # redacted, by kind; None when redaction is off

    def add(self, rec: Mapping[str, Any]) -> None:
        """Count one exported record; a time of None (a post whose source gave no readable time,
        connectors.undated) is in no window."""
        self.add_group(rec["platform"], rec["session_id"], rec["source"], 1)
        for column in ("created_at", "collected_at"):
            if (when := rec[column]) is not None:
                self.widen(column, when, when)

    def add_group(self, platform: str, session: str | None, source: str, rows: int) -> None:
        """Count `rows` exported records of one platform, session and source."""
        self.rows += rows
        self.platforms[platform] += rows
        self.sessions[session or GENERAL] += rows
        self.sources[source] += rows

    def widen(self, column: str, first: datetime, last: datetime) -> None:
        """Take exported records from `first` to `last` (a `column` time) into its window."""
        was = self.windows.get(column, (first, last))
        self.windows[column] = [min(was[0], first), max(was[1], last)]

    def window(self, column: str, end: int) -> str | None:
        return iso_utc(self.windows[column][end]) if column in self.windows else None


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
                    "started_at": iso_utc(o.started_at), "error": scrub(o.error) if o.error else None,
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
    clock = EventClock(config.event.timezone)
    columns = {"csv": COLUMNS, "ids": {k: COLUMNS[k] for k in ("platform", "post_id")}}
    return {
        "file": file_name,
        "format": options.fmt,
        "generated_at": iso_utc(utcnow()),
        "tool": {"name": "hashtag-aggregator", "version": __version__},
        "event": {"name": config.event.name, "timezone": str(config.event.timezone),
                  "hashtags": list(config.event.hashtags),
                  "sessions": [{"id": s.id, "title": s.title, "start": clock.iso(s.start),
                                "end": clock.iso(s.end)} for s in config.sessions]},
        "sources": [{"name": s.name, "type": s.type, "enabled": s.enabled} for s in config.sources],
        "collection": {f"{edge}_{column}": stats.window(column, i)
                       for column in ("created_at", "collected_at")
                       for i, edge in enumerate(("first", "last"))},
        "counts": {"posts": stats.rows, "by_platform": dict(sorted(stats.platforms.items())),
                   "by_session": dict(sorted(stats.sessions.items())),
                   "by_source": dict(sorted(stats.sources.items()))},
        "filters": {"session": [s or GENERAL for s in f.sessions], "platform": list(f.platforms),
                    "since": iso_utc(f.since), "until": iso_utc(f.until), "hashtag": list(f.hashtags),
                    "opted_out_accounts_left_out": len(config.privacy.opt_out)},
        "pseudonymised": options.key is not None,
        "identifiers_redacted": (
            None if stats.identifiers is None
            else {kind: stats.identifiers.get(kind, 0) for kind in KINDS}
        ),
        "spreadsheet_safe": options.fmt != "jsonl",
        "known_gaps": _gaps(engine, pseudo),
        "columns": columns.get(options.fmt, {k: COLUMNS.get(k, "see docs/jsonl.md") for k in (*INTERCHANGE, *EXTRAS)}),
        "dictionary": "docs/data-dictionary.md",
    }  # fmt: skip


def manifest_path(output: Path) -> Path:
    """Where the manifest of `output` goes: FILE.manifest.json beside it."""
    return output.with_name(output.name + ".manifest.json")


def write_manifest(output: Path, data: Mapping[str, Any]) -> Path:
    """Write FILE.manifest.json beside the export, atomically; returns its path."""
    path = manifest_path(output)
    write_text(path, json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    return path
