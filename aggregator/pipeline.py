"""The job, one stage at a time: collect -> store -> tag -> report. Returns summaries; never prints."""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.engine import Engine

from aggregator.config import Config, SourceConfig
from aggregator.curation import Curated, Curation, load_curation
from aggregator.health import gap_warnings
from aggregator.logs import redact
from aggregator.privacy import Redactor, drop_opted_out
from aggregator.tagging import Decision, Evaluation, Explanation, Programme, TagInput, decide_all
from aggregator.tagging import evaluate as score_labels
from aggregator.tagging import explain as explain_rules
from connectors import ConnectorError, Page, build_connector
from connectors.archives import read_jsonl
from storage.db import StorageError
from storage.models import Assignment, PostAnalysis, PostRow
from storage.queries import (
    finish_run,
    get_cursor,
    record_outcome,
    save_analysis,
    save_assignments,
    save_page,
    start_run,
    utcnow,
)

__all__ = [
    "CollectSummary",
    "EvaluationReport",
    "ImportSummary",
    "NightlySummary",
    "PostExplanation",
    "SourceSummary",
    "TagSummary",
    "analyse",
    "collect",
    "evaluate",
    "explain",
    "import_pages",
    "nightly",
    "report",
    "tag",
]

log = logging.getLogger(__name__)
POSTS = PostRow.__table__  # type: ignore[attr-defined]
ASSIGNMENTS = Assignment.__table__  # type: ignore[attr-defined]
ANALYSIS = PostAnalysis.__table__  # type: ignore[attr-defined]
OnPage = Callable[[str, Page], None]
StopCheck = Callable[[], bool]


@dataclass
class SourceSummary:
    name: str
    status: str = "ok"  # ok | failed | interrupted (a stop was requested after one of its pages)
    new_posts: int = 0
    updated_posts: int = 0
    pages: int = 0
    waits: int = 0
    rejected: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    opted_out: int = 0  # posts not stored: their authors are in [privacy] opt_out
    cursor: dict[str, Any] | None = None
    stopped: bool = False


@dataclass
class CollectSummary:
    run_id: int
    sources: list[SourceSummary]
    stopped: bool = False  # a stop was requested: the run ended after the current page

    @property
    def failed(self) -> list[SourceSummary]:
        return [s for s in self.sources if s.status == "failed"]

    def verdict(self) -> tuple[str, str | None]:
        """The run's status and message for the run log."""
        failed = f"{', '.join(s.name for s in self.failed)} failed" if self.failed else None
        if self.stopped:
            stop = "stopped on request after a page; the next run resumes from the saved cursors"
            return "interrupted", "; ".join(m for m in (stop, failed) if m)
        return ("failed", failed) if failed else ("ok", None)

    @property
    def new_posts(self) -> int:
        return sum(s.new_posts for s in self.sources)


def _drain(
    engine: Engine, name: str, pages: Iterator[Page], summary: SourceSummary, on_page: OnPage | None,
    opt_out: Redactor | None = None, should_stop: StopCheck | None = None,
) -> None:  # fmt: skip
    for page in pages:
        if opt_out:
            page.posts, dropped = drop_opted_out(page.posts, opt_out)
            summary.opted_out += dropped
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
        if should_stop is not None and should_stop():  # between pages: this one and its cursor are saved
            summary.stopped, summary.status = True, "interrupted"
            log.warning("%s: stopped on request after page %d", name, summary.pages)
            return


def collect_source(
    engine: Engine,
    config: Config,
    source: SourceConfig,
    on_page: OnPage | None = None,
    should_stop: StopCheck | None = None,
    **context: Any,
) -> SourceSummary:
    """Run one source from its saved cursor; any failure is caught and recorded, never raised."""
    summary = SourceSummary(source.name)
    try:
        connector = build_connector(source, config, **context)
        cursor = get_cursor(engine, source.name)
        log.debug("%s: resuming from cursor %s", source.name, cursor)
        summary.warnings += gap_warnings(engine, source, cursor)
        for gap in summary.warnings:
            log.warning("%s: %s", source.name, gap)
        _drain(
            engine, source.name, connector.fetch(cursor), summary, on_page,
            Redactor(config.privacy.opt_out), should_stop,
        )  # fmt: skip
    except (ConnectorError, StorageError) as exc:
        summary.status, summary.error = "failed", redact(str(exc))
    except Exception as exc:  # a connector bug must not stop the other sources
        log.exception("source %s crashed", source.name)
        summary.status, summary.error = "failed", redact(f"unexpected {type(exc).__name__}: {exc}")
    log.info("%s: %s, %d new, %d updated, %d pages", source.name, summary.status,
             summary.new_posts, summary.updated_posts, summary.pages)  # fmt: skip
    return summary


def collect(
    engine: Engine,
    config: Config,
    only: str | None = None,
    on_page: OnPage | None = None,
    command: str = "collect",
    should_stop: StopCheck | None = None,
    run_id: int | None = None,
    **context: Any,
) -> CollectSummary:
    """Collect every enabled source (or just `only`), recording the run and each source's outcome.

    `should_stop` is asked between pages; when it says yes the run ends there, as interrupted.
    With `run_id` the outcomes join that run, and finishing it is the caller's job.
    """
    sources = [s for s in config.sources if (s.name == only if only else s.enabled)]
    own = run_id is None
    summary = CollectSummary(start_run(engine, command, pid=os.getpid()) if own else run_id, [])
    try:
        for source in sources:
            if should_stop is not None and should_stop():
                summary.stopped = True
                break
            started = utcnow()
            done = collect_source(engine, config, source, on_page, should_stop, **context)
            summary.sources.append(done)
            record_outcome(engine, summary.run_id, _outcome(done, started))
            summary.stopped = summary.stopped or done.stopped
    except BaseException as exc:
        if own:
            _abandon(engine, summary.run_id, exc)
        raise
    if own:
        finish_run(engine, summary.run_id, *summary.verdict())
    return summary


def _abandon(engine: Engine, run_id: int, exc: BaseException) -> None:
    """Finish a run an exception ended: failed for an error, interrupted for Ctrl-C or an exit."""
    error = isinstance(exc, Exception)
    ours = isinstance(exc, StorageError | ConnectorError)  # our messages say it all; others need their type
    message = str(exc) if ours else f"{type(exc).__name__}: {exc}".rstrip(": ")
    message = redact(message) if error else "stopped before the run finished"
    try:
        finish_run(engine, run_id, "failed" if error else "interrupted", message)
    except StorageError as problem:  # the database itself failed; the next start marks the run
        log.error("%s", problem)


@dataclass
class NightlySummary:
    collected: CollectSummary
    tagged: TagSummary | None = None  # None when a stop was requested before tagging
    files: dict[str, Path] = field(default_factory=dict)


def analyse(engine: Engine, batch: int = 500) -> int:
    """Sentiment, theme terms and question/pledge flags, computed once per post and stored: for
    posts never analysed, changed since, or analysed by an older analyser. Returns how many."""
    from reports.text import ANALYSER, analyse_text  # TextBlob loads NLTK: only when needed

    stale = or_(
        ANALYSIS.c.post_pk.is_(None),
        ANALYSIS.c.analyser != ANALYSER,
        ANALYSIS.c.analysed_at < POSTS.c.updated_at,
        POSTS.c.sentiment_polarity.is_(None),
    )
    pending = select(POSTS.c.id).outerjoin(ANALYSIS, ANALYSIS.c.post_pk == POSTS.c.id).where(stale)
    with engine.connect() as conn:
        ids = list(conn.execute(pending.order_by(POSTS.c.id)).scalars())
    for i in range(0, len(ids), batch):  # one transaction per batch: a stop loses one batch at most
        with engine.connect() as conn:
            rows = conn.execute(
                select(POSTS.c.id, POSTS.c.text).where(POSTS.c.id.in_(ids[i : i + batch]))
            ).all()
        now = utcnow()
        values = []
        for row in rows:
            a = analyse_text(row.text)
            values.append({"post_pk": row.id, "terms": a.terms, "question": a.question,
                           "action": a.action, "analyser": ANALYSER, "analysed_at": now,
                           "polarity": a.polarity, "subjectivity": a.subjectivity})  # fmt: skip
        save_analysis(engine, values)
    return len(ids)


def report(engine: Engine, config: Config) -> dict[str, Path]:
    """Analyse what is new, then write the story (HTML, Markdown, JSON) into [report] output,
    with the organisers' notes from the curation file; the files written, by format."""
    from reports.render import write_report
    from reports.story import build_story

    analyse(engine)
    notes = load_curation(config).notes
    return write_report(build_story(engine, config, notes), config.report_output)


def nightly(
    engine: Engine,
    config: Config,
    on_page: OnPage | None = None,
    should_stop: StopCheck | None = None,
    command: str = "run",
    **context: Any,
) -> NightlySummary:
    """The nightly job (`run` and `schedule`) as one run in the run log: collect, tag, report.

    A stop request ends it after the current page (tag and report wait for the next run); an
    error is recorded against the run, then raised.
    """
    run_id = start_run(engine, command, pid=os.getpid())
    try:
        done = NightlySummary(collect(engine, config, on_page=on_page, should_stop=should_stop,
                                      run_id=run_id, **context))  # fmt: skip
        if not done.collected.stopped:
            done.tagged = tag(engine, config)
            done.files = report(engine, config)
    except BaseException as exc:
        _abandon(engine, run_id, exc)
        raise
    finish_run(engine, run_id, *done.collected.verdict())
    log.info("run %d finished: %s", run_id, done.collected.verdict()[0])
    return done


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
    opted_out: int = 0


def import_pages(
    engine: Engine, path: Path, pages: Iterator[Page], opt_out: tuple[str, ...] = ()
) -> ImportSummary:
    """Store an archive's pages under the source name 'import:<file name>', leaving out posts by
    `opt_out` accounts and removing their handles from the rest. Idempotent."""
    summary = ImportSummary(path)
    redactor = Redactor(opt_out)
    for page in pages:
        page.cursor = None  # a one-off import has no cursor to keep
        page.posts, dropped = drop_opted_out(page.posts, redactor)
        summary.opted_out += dropped
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
    curated: int = 0  # posts an organiser's correction applies to
    unmatched: list[str] = field(default_factory=list)  # corrections that name no stored post


TAG_COLUMNS = (
    "id", "platform", "post_id", "created_at", "text", "hashtags", "mentions", "reply_to", "url",
)  # fmt: skip
STORED = (
    "session_id", "score", "reason", "method", "programme", "excluded", "highlight", "tagged_at",
)  # fmt: skip


def _tag_input(row: Any) -> TagInput:
    return TagInput(
        post_id=row.post_id,
        created_at=row.created_at,
        text=row.text,
        hashtags=tuple(row.hashtags or ()),
        mentions=tuple(row.mentions or ()),
        reply_to=row.reply_to,
        platform=row.platform,
    )


def _fingerprint(programme: Programme, curation: Curation) -> str:
    return f"{programme.fingerprint()}+{curation.fingerprint()}"


def _parents(conn: Any, rows: list[Any]) -> dict[tuple[str, str], Decision]:
    """Stored decisions for the parents of replies in `rows` (which may have been tagged before)."""
    wanted = {(r.platform, r.reply_to) for r in rows if r.reply_to}
    found: dict[tuple[str, str], Decision] = {}
    stmt = select(
        POSTS.c.platform, POSTS.c.post_id, ASSIGNMENTS.c.session_id, ASSIGNMENTS.c.score,
        ASSIGNMENTS.c.reason,
    ).join(ASSIGNMENTS, ASSIGNMENTS.c.post_pk == POSTS.c.id)  # fmt: skip
    ids = sorted({pid for _, pid in wanted})
    for i in range(0, len(ids), 400):
        for r in conn.execute(stmt.where(POSTS.c.post_id.in_(ids[i : i + 400]))):
            if (r.platform, r.post_id) in wanted:
                found[(r.platform, r.post_id)] = Decision(r.session_id, r.score, r.reason)
    return found


def _replies_to(conn: Any, rows: list[Any]) -> list[Any]:
    """Stored replies to `rows` (and theirs in turn): decided before their parent arrived, so redone."""
    stmt = select(*(POSTS.c[k] for k in TAG_COLUMNS))
    seen = {(r.platform, r.post_id) for r in rows}
    frontier, found = set(seen), []
    while frontier:
        ids, step = sorted({pid for _, pid in frontier}), []
        for i in range(0, len(ids), 400):
            for r in conn.execute(stmt.where(POSTS.c.reply_to.in_(ids[i : i + 400]))):
                if (r.platform, r.reply_to) in frontier and (r.platform, r.post_id) not in seen:
                    seen.add((r.platform, r.post_id))
                    step.append(r)
        found += step
        frontier = {(r.platform, r.post_id) for r in step}
    return found


def _to_tag(conn: Any, fingerprint: str, full: bool) -> tuple[list[Any], bool]:
    """Posts with no assignment yet (and replies waiting for them), or all when anything changed."""
    stale = conn.execute(
        select(ASSIGNMENTS.c.post_pk).where(ASSIGNMENTS.c.programme != fingerprint).limit(1)
    ).first()
    full = full or stale is not None
    stmt = select(*(POSTS.c[k] for k in TAG_COLUMNS)).order_by(POSTS.c.created_at, POSTS.c.id)
    if full:
        return list(conn.execute(stmt)), True
    untagged = stmt.outerjoin(ASSIGNMENTS, ASSIGNMENTS.c.post_pk == POSTS.c.id).where(
        ASSIGNMENTS.c.post_pk.is_(None)
    )
    new = list(conn.execute(untagged))
    return new + _replies_to(conn, new), False


def _unmatched(conn: Any, curation: Curation) -> list[str]:
    """Corrections naming no stored post: a typo in an id or url, or a post not collected yet."""
    ids, urls = curation.wanted_ids()
    if not ids and not urls:
        return []
    stmt = select(POSTS.c.platform, POSTS.c.post_id, POSTS.c.url).where(
        or_(POSTS.c.post_id.in_(sorted(ids)), POSTS.c.url.in_(sorted(urls)))
    )
    rows = list(conn.execute(stmt))
    return [
        f"{e.where} matches no stored post (check its id or url)"
        for e in curation.entries
        if not any(e.matches(r.platform, r.post_id, r.url) for r in rows)
    ]


def tag(engine: Engine, config: Config, full: bool = False, batch: int = 2000) -> TagSummary:
    """Tag new posts; everything again when the programme, rules or curation changed (or `full`)."""
    programme, curation = Programme.from_config(config), load_curation(config)
    fingerprint = _fingerprint(programme, curation)
    with engine.connect() as conn:
        rows, full = _to_tag(conn, fingerprint, full)
        known = {} if full else _parents(conn, rows)
        unmatched = _unmatched(conn, curation)
    by_key = {(r.platform, r.post_id): r for r in rows}
    curated: dict[tuple[str, str], Curated] = {}

    def correct(post: TagInput, decision: Decision) -> Decision:
        key = (post.platform, post.post_id)
        curated[key] = curation.apply(post.platform, post.post_id, by_key[key].url, decision)
        return curated[key].decision

    decide_all([_tag_input(r) for r in rows], programme, known, correct)
    now = utcnow()
    values = [
        {"post_pk": by_key[k].id, "session_id": c.decision.session_id, "score": c.decision.score,
         "reason": c.decision.reason, "method": c.method, "programme": fingerprint, "tagged_at": now,
         "excluded": c.excluded, "highlight": c.highlight}
        for k, c in curated.items()
    ]  # fmt: skip
    save_assignments(engine, values, batch)
    counts = Counter(c.decision.session_id for c in curated.values())
    touched = sum(1 for c in curated.values() if c.entries)
    return TagSummary(len(values), full, dict(counts), touched, unmatched)


@dataclass
class PostExplanation:
    """One stored post: what the rules say now and why, the corrections, and what is stored."""

    post: Any  # platform, post_id, created_at, text, url, reply_to
    why: Explanation  # the rules under the current programme
    final: Curated  # after the organisers' corrections
    stored: Any | None  # its stored assignment; None when not tagged yet
    current: bool  # stored under the current programme, rules and curation


def explain(engine: Engine, config: Config, post_id: str) -> list[PostExplanation]:
    """Every stored post with this id (one per platform), explained. Empty when none is stored."""
    programme, curation = Programme.from_config(config), load_curation(config)
    fingerprint = _fingerprint(programme, curation)
    cols = [*(POSTS.c[k] for k in TAG_COLUMNS), *(ASSIGNMENTS.c[k] for k in STORED)]
    stmt = select(*cols).outerjoin(ASSIGNMENTS, ASSIGNMENTS.c.post_pk == POSTS.c.id)
    with engine.connect() as conn:
        rows = list(conn.execute(stmt.where(POSTS.c.post_id == post_id).order_by(POSTS.c.platform)))
        parents = _parents(conn, rows)
    out = []
    for r in rows:
        why = explain_rules(_tag_input(r), programme, parents.get((r.platform, r.reply_to or "")))
        final = curation.apply(r.platform, r.post_id, r.url, why.decision)
        stored = r if r.tagged_at is not None else None
        out.append(PostExplanation(r, why, final, stored, r.programme == fingerprint))
    return out


@dataclass
class EvaluationReport:
    path: Path
    evaluation: Evaluation
    wrong: list[tuple[str, str | None, Decision]]  # post id, expected session, what the rules said
    rejected: list[str]  # lines that could not be read
    unlabelled: int  # posts without expected_session: tagged (they may be parents), not scored


def evaluate(config: Config, path: Path) -> EvaluationReport:
    """Tag a labelled JSONL file in memory with the rules alone; compare with `expected_session`.

    Raises ConnectorError when the file cannot be read.
    """
    programme = Programme.from_config(config)
    posts, labels, rejected = [], {}, []
    for page in read_jsonl(path):
        rejected += page.rejected
        for p in page.posts:
            posts.append(TagInput(p.id, p.created_at, p.text, tuple(p.hashtags),
                                  tuple(p.mentions), p.reply_to, p.platform))  # fmt: skip
            if "expected_session" in p.raw:
                label = p.raw["expected_session"]
                labels[(p.platform, p.id)] = None if label is None else str(label)
    decisions = decide_all(posts, programme)
    pairs = [(label, decisions[k].session_id) for k, label in labels.items()]
    wrong = [(k[1], e, decisions[k]) for k, e in labels.items() if e != decisions[k].session_id]
    return EvaluationReport(path, score_labels(pairs), wrong, rejected, len(posts) - len(labels))
