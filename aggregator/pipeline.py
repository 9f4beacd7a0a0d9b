"""The job, one stage at a time: collect -> store -> tag -> report. Returns summaries; never prints."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from aggregator.config import Config, SourceConfig
from aggregator.tagging import Decision, Programme, TagInput, decide
from connectors import ConnectorError, Page, build_connector
from storage.db import StorageError
from storage.models import Assignment, PostRow
from storage.queries import (
    finish_run,
    get_cursor,
    record_outcome,
    save_assignments,
    save_page,
    start_run,
    utcnow,
)

__all__ = [
    "CollectSummary",
    "ImportSummary",
    "SourceSummary",
    "TagSummary",
    "collect",
    "import_pages",
    "tag",
]

log = logging.getLogger(__name__)
POSTS = PostRow.__table__  # type: ignore[attr-defined]
ASSIGNMENTS = Assignment.__table__  # type: ignore[attr-defined]
OnPage = Callable[[str, Page], None]


@dataclass
class SourceSummary:
    name: str
    status: str = "ok"  # ok | failed
    new_posts: int = 0
    updated_posts: int = 0
    pages: int = 0
    waits: int = 0
    rejected: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    cursor: dict[str, Any] | None = None


@dataclass
class CollectSummary:
    run_id: int
    sources: list[SourceSummary]

    @property
    def failed(self) -> list[SourceSummary]:
        return [s for s in self.sources if s.status == "failed"]

    @property
    def new_posts(self) -> int:
        return sum(s.new_posts for s in self.sources)


def _drain(
    engine: Engine, name: str, pages: Iterator[Page], summary: SourceSummary, on_page: OnPage | None
) -> None:
    for page in pages:
        saved = save_page(engine, name, page)
        summary.pages += 1
        summary.new_posts += saved.new
        summary.updated_posts += saved.updated
        summary.waits += page.waits
        summary.rejected += page.rejected
        summary.warnings += page.warnings
        if page.cursor is not None:
            summary.cursor = page.cursor
        for reason in page.rejected:
            log.warning("%s: skipped %s", name, reason)
        if on_page:
            on_page(name, page)


def collect_source(
    engine: Engine,
    config: Config,
    source: SourceConfig,
    on_page: OnPage | None = None,
    **context: Any,
) -> SourceSummary:
    """Run one source from its saved cursor; any failure is caught and recorded, never raised."""
    summary = SourceSummary(source.name)
    try:
        connector = build_connector(source, config, **context)
        _drain(
            engine, source.name, connector.fetch(get_cursor(engine, source.name)), summary, on_page
        )
    except (ConnectorError, StorageError) as exc:
        summary.status, summary.error = "failed", str(exc)
    except Exception as exc:  # a connector bug must not stop the other sources
        log.exception("source %s crashed", source.name)
        summary.status, summary.error = "failed", f"unexpected {type(exc).__name__}: {exc}"
    return summary


def collect(
    engine: Engine,
    config: Config,
    only: str | None = None,
    on_page: OnPage | None = None,
    command: str = "collect",
    **context: Any,
) -> CollectSummary:
    """Collect every enabled source (or just `only`), recording the run and each source's outcome."""
    sources = [s for s in config.sources if (s.name == only if only else s.enabled)]
    run_id = start_run(engine, command, pid=os.getpid())
    summaries: list[SourceSummary] = []
    try:
        for source in sources:
            started = utcnow()
            summary = collect_source(engine, config, source, on_page, **context)
            summaries.append(summary)
            record_outcome(engine, run_id, _outcome(summary, started))
    except BaseException:
        finish_run(engine, run_id, "interrupted", "stopped before every source had run")
        raise
    failed = [s.name for s in summaries if s.status == "failed"]
    finish_run(
        engine,
        run_id,
        "failed" if failed else "ok",
        f"failed: {', '.join(failed)}" if failed else None,
    )
    return CollectSummary(run_id, summaries)


def _outcome(s: SourceSummary, started: Any) -> dict[str, Any]:
    return {
        "source": s.name,
        "status": s.status,
        "new_posts": s.new_posts,
        "updated_posts": s.updated_posts,
        "pages": s.pages,
        "waits": s.waits,
        "rejected": len(s.rejected),
        "error": s.error,
        "warnings": s.warnings + s.rejected[:20],
        "cursor": s.cursor,
        "started_at": started,
        "finished_at": utcnow(),
    }


@dataclass
class ImportSummary:
    path: Path
    new_posts: int = 0
    updated_posts: int = 0
    rejected: list[str] = field(default_factory=list)


def import_pages(engine: Engine, path: Path, pages: Iterator[Page]) -> ImportSummary:
    """Store an archive's pages under the source name 'import:<file name>'. Idempotent."""
    summary = ImportSummary(path)
    for page in pages:
        page.cursor = None  # a one-off import has no cursor to keep
        saved = save_page(engine, f"import:{path.name}", page)
        summary.new_posts += saved.new
        summary.updated_posts += saved.updated
        summary.rejected += page.rejected
    return summary


@dataclass
class TagSummary:
    tagged: int
    full: bool
    by_session: dict[str | None, int]


def _tag_input(row: Any) -> TagInput:
    return TagInput(
        post_id=row.post_id,
        created_at=row.created_at,
        text=row.text,
        hashtags=tuple(row.hashtags or ()),
        mentions=tuple(row.mentions or ()),
        reply_to=row.reply_to,
    )


def _parents(engine: Engine, rows: list[Any]) -> dict[tuple[str, str], Decision]:
    """Existing decisions for the parents of replies in `rows` (which may have been tagged before)."""
    wanted = {(r.platform, r.reply_to) for r in rows if r.reply_to}
    found: dict[tuple[str, str], Decision] = {}
    if not wanted:
        return found
    stmt = select(
        POSTS.c.platform, POSTS.c.post_id, ASSIGNMENTS.c.session_id, ASSIGNMENTS.c.reason
    ).join(ASSIGNMENTS, ASSIGNMENTS.c.post_pk == POSTS.c.id)
    with engine.connect() as conn:
        ids = sorted({pid for _, pid in wanted})
        for i in range(0, len(ids), 400):
            for r in conn.execute(stmt.where(POSTS.c.post_id.in_(ids[i : i + 400]))):
                if (r.platform, r.post_id) in wanted:
                    found[(r.platform, r.post_id)] = Decision(r.session_id, 0.0, r.reason)
    return found


def tag(engine: Engine, config: Config, full: bool = False, batch: int = 2000) -> TagSummary:
    """Tag posts with no assignment yet; everything again when the programme changed (or `full`)."""
    programme = Programme.from_config(config)
    fingerprint = programme.fingerprint()
    with engine.connect() as conn:
        stale = conn.execute(
            select(ASSIGNMENTS.c.post_pk).where(ASSIGNMENTS.c.programme != fingerprint).limit(1)
        ).first()
        full = full or stale is not None
        cols = [
            POSTS.c[k]
            for k in (
                "id",
                "platform",
                "post_id",
                "created_at",
                "text",
                "hashtags",
                "mentions",
                "reply_to",
            )
        ]
        stmt = select(*cols).order_by(POSTS.c.created_at, POSTS.c.id)
        if not full:
            stmt = stmt.outerjoin(ASSIGNMENTS, ASSIGNMENTS.c.post_pk == POSTS.c.id).where(
                ASSIGNMENTS.c.post_pk.is_(None)
            )
        rows = list(conn.execute(stmt))
    decided = {} if full else _parents(engine, rows)
    counts: dict[str | None, int] = {}
    values = []
    now = utcnow()
    for row in rows:
        d = decide(_tag_input(row), programme, decided.get((row.platform, row.reply_to or "")))
        decided[(row.platform, row.post_id)] = d
        counts[d.session_id] = counts.get(d.session_id, 0) + 1
        values.append(
            {"post_pk": row.id, "session_id": d.session_id, "score": d.score, "reason": d.reason,
             "method": "auto", "programme": fingerprint, "tagged_at": now}
        )  # fmt: skip
    save_assignments(engine, values, batch)
    return TagSummary(tagged=len(values), full=full, by_session=counts)
