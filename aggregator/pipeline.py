"""The job, one stage at a time: collect -> store -> tag -> report. Returns summaries; never prints.

The tagging stage (`tag`, `explain`, `evaluate`) lives in aggregator.tagstage and is re-exported here.

What a Python caller needs for the command-line's guarantees is here too: `writing(config)`, the
database under the one writers' lock with killed runs recovered and the event stamp checked (every
writing command runs in it), `reading(config)` for the others, and the commands' jobs whole:
`run_nightly` (`run`, `schedule`: lock, nightly job, alerts), `run_collect` and `import_file`.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine

from aggregator import __version__
from aggregator.alerts import after_run
from aggregator.clock import EventClock
from aggregator.config import Config, SourceConfig
from aggregator.curation import load_curation
from aggregator.errors import AggregatorError, UsageError
from aggregator.health import gap_warnings, recover_interrupted
from aggregator.lock import StopFlag, StopRequested, writers_lock
from aggregator.logs import IN_SUMMARY, redact
from aggregator.media import Archive, MediaSummary, archive_media, media_folder
from aggregator.privacy import Redactor, drop_opted_out, redact_quarantined
from aggregator.settings import ARCHIVE_TYPES, STREAMING_TYPES
from aggregator.stamp import mismatch, record_event, recorded_event
from aggregator.tagstage import (
    EvaluationReport,
    PostExplanation,
    TagSummary,
    evaluate,
    explain,
    tag,
)
from connectors import Page, build_connector
from connectors.http import HttpClient, user_agent
from storage.analysis import count_stale, stale_rows, store_analysis
from storage.db import StorageError, open_database
from storage.inputs import fingerprint, posts_state, remember, remembered, tables_state
from storage.models import POST_TABLE
from storage.queries import (
    SavedPage,
    finish_run,
    get_cursor,
    record_outcome,
    save_page,
    start_run,
    stored_ids,
    utcnow,
)
from storage.runlog import source_health

__all__ = [
    "IMPORT_FORMATS",
    "CollectSummary",
    "Collector",
    "EvaluationReport",
    "Handed",
    "ImportSummary",
    "NightlySummary",
    "PostExplanation",
    "SourceSummary",
    "TagSummary",
    "abandon_run",
    "analyse",
    "archive_new_media",
    "archive_reader",
    "collect",
    "ended_by",
    "evaluate",
    "explain",
    "import_file",
    "import_pages",
    "nightly",
    "outcome_row",
    "reading",
    "report",
    "run_collect",
    "run_nightly",
    "save_counted",
    "tag",
    "writing",
]

log = logging.getLogger(__name__)
POSTS = POST_TABLE
OnPage = Callable[[str, Page], None]
StopCheck = Callable[[], bool]
Clock = Callable[[], datetime]


@dataclass
class SourceSummary:
    name: str
    status: str = "ok"  # ok | failed | interrupted (a stop was requested during it)
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

    def count(self, page: Page, new: int, updated: int) -> None:
        """A saved page counted: its posts, waits, skipped records, warnings and cursor."""
        self.pages += 1
        self.new_posts += new
        self.updated_posts += updated
        self.waits += page.waits
        self.rejected += page.rejected
        self.warnings += page.warnings
        if page.cursor is not None:
            self.cursor = page.cursor


@dataclass
class CollectSummary:
    run_id: int
    sources: list[SourceSummary]
    stopped: bool = False  # a stop was requested: the run ended after a page, or in a wait
    # images archived after collecting ([media] archive); None when that did not run: one source
    # collected, a stop, or nothing it reads changed since a pass that left nothing to do
    media: MediaSummary | None = None

    @property
    def failed(self) -> list[SourceSummary]:
        return [s for s in self.sources if s.status == "failed"]

    def verdict(self) -> tuple[str, str | None]:
        """The run's status and message for the run log."""
        failed = f"{', '.join(s.name for s in self.failed)} failed" if self.failed else None
        if self.stopped:
            stop = "stopped on request; the next run resumes from the saved cursors"
            return "interrupted", "; ".join(m for m in (stop, failed) if m)
        return ("failed", failed) if failed else ("ok", None)

    @property
    def new_posts(self) -> int:
        return sum(s.new_posts for s in self.sources)


Keep = Callable[[SourceSummary, Page], None]
"""Stores one page of a source, its cursor with it, and counts it in the source's summary; or
raises, and the source fails with it."""


def save_counted(engine: Engine, summary: SourceSummary, page: Page) -> SavedPage:
    """One page of a source saved with its cursor, what it skipped redacted and logged, and the
    page counted in the source's summary: what a run's writer does with each page."""
    saved = save_page(engine, summary.name, page)
    page.rejected += [str(q) for q in saved.refused]  # posts the database could not hold
    # what is said of a skipped record may quote it: no secret, no personal identifier
    page.rejected = [redact(r) for r in page.rejected]
    page.warnings = [redact(w) for w in page.warnings]
    summary.count(page, saved.new, saved.updated)
    for reason in page.rejected:
        log.warning("%s: skipped %s", summary.name, reason)
    return saved


def _keeper(engine: Engine, on_page: OnPage | None) -> Keep:
    """Saving pages here, in the calling thread: what the run's writer does with each page."""

    def keep(summary: SourceSummary, page: Page) -> None:
        save_counted(engine, summary, page)
        if on_page:
            on_page(summary.name, page)

    return keep


def _drain(
    pages: Iterator[Page], summary: SourceSummary, keep: Keep, opt_out: Redactor | None = None,
    should_stop: StopCheck | None = None,
) -> None:  # fmt: skip
    for page in pages:
        if opt_out:
            page.posts, dropped = drop_opted_out(page.posts, opt_out)
            page.quarantined = redact_quarantined(page.quarantined, opt_out)
            summary.opted_out += dropped
        keep(summary, page)
        # between pages: this one and its cursor are saved
        if should_stop is not None and should_stop():
            summary.stopped, summary.status = True, "interrupted"
            log.warning("%s: stopped on request after page %d", summary.name, summary.pages)
            return


def collect_source(
    engine: Engine,
    config: Config,
    source: SourceConfig,
    on_page: OnPage | None = None,
    should_stop: StopCheck | None = None,
    keep: Keep | None = None,
    **context: Any,
) -> SourceSummary:
    """Run one source from its saved cursor; any failure is caught and recorded (and logged as
    one error line), never raised. A stop during one of its waits ends it as interrupted.
    `keep` saves each page (default: here, then `on_page`); `collect` hands them to its writer."""
    summary = SourceSummary(source.name)
    try:
        if source.type in STREAMING_TYPES:  # deletions name a post by id: lend the stored ids
            context = {"stored": stored_ids(engine), **context}
        connector = build_connector(source, config.event, **context)
        cursor = get_cursor(engine, source.name)
        log.debug("%s: resuming from cursor %s", source.name, cursor)
        summary.warnings += gap_warnings(engine, source, cursor, EventClock(config.event.timezone))
        for gap in summary.warnings:
            log.warning("%s: %s", source.name, gap)
        _drain(
            connector.fetch(cursor), summary, keep or _keeper(engine, on_page),
            Redactor(config.privacy.opt_out), should_stop,
        )  # fmt: skip
    except StopRequested as exc:
        summary.stopped, summary.status = True, "interrupted"
        log.warning("%s: %s", source.name, exc)
    except AggregatorError as exc:  # a source's or the database's known failure: one line
        summary.status, summary.error = "failed", redact(str(exc))
        # the file keeps it with its time; on stderr the command's summary says it (✗ name: error)
        log.error("%s: %s", source.name, summary.error, extra=IN_SUMMARY)
    except Exception as exc:  # a connector bug must not stop the other sources
        log.exception("source %s crashed", source.name)
        summary.status, summary.error = "failed", redact(f"unexpected {type(exc).__name__}: {exc}")
    log.info("%s: %s, %d new, %d updated, %d pages", source.name, summary.status,
             summary.new_posts, summary.updated_posts, summary.pages)  # fmt: skip
    return summary


@dataclass
class Handed:
    """A page a worker hands the writer; `done` is set once it is saved, or `error` says why not."""

    summary: SourceSummary
    page: Page
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


@dataclass
class _Finished:
    """A worker's word that a source is over: its summary (None: a stop came before it started),
    when it started, or what escaped it; `done` is set once the writer has taken it."""

    summary: SourceSummary | None
    started: datetime | None = None
    escaped: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


class _Writer:
    """The run's one writer. Workers fetch their sources at once and hand it each page through a
    bounded queue, waiting while it saves it (the page and its cursor in one transaction), so
    SQLite's one writer is never contended and each source's pages are saved in their order, as
    if it ran alone. It runs in the calling thread, which records each outcome as it comes."""

    def __init__(self, engine: Engine, on_page: OnPage | None, workers: int) -> None:
        self._keep = _keeper(engine, on_page)
        # a worker waits while what it handed in is in the queue: never more than one each
        self._queue: queue.Queue[Handed | _Finished] = queue.Queue(maxsize=workers)
        self._lock = threading.Lock()
        self._closed = False

    def keep(self, summary: SourceSummary, page: Page) -> None:
        """A worker's `Keep`: the page saved by the writer, or its error raised here."""
        handed = Handed(summary, page)
        self._hand(handed)
        handed.done.wait()
        if handed.error is not None:
            raise handed.error

    def finish(self, end: _Finished) -> None:
        """A worker's call at the end of each source, whatever happened."""
        with suppress(StopRequested):  # the run ended already: nobody is listening
            self._hand(end)
            end.done.wait()

    def _hand(self, item: Handed | _Finished) -> None:
        with self._lock:
            if self._closed:
                raise StopRequested("the run ended before this page could be saved")
            self._queue.put_nowait(item)

    def serve(self, sources: int, finished: Callable[[_Finished], None]) -> None:
        """Save what the workers hand in, in the order it comes, until every source is over."""
        while sources:
            item = self._queue.get()
            if isinstance(item, _Finished):
                sources -= 1
                try:
                    finished(item)
                finally:
                    item.done.set()
                continue
            try:
                self._keep(item.summary, item.page)
            except Exception as exc:  # the worker's source fails with it, as it would alone
                item.error = exc
            except BaseException:
                item.error = StopRequested("the run was stopped while this page was saved")
                raise
            finally:
                item.done.set()

    def close(self) -> None:
        """Take nothing more; each page still waiting goes back unsaved (its worker stops)."""
        with self._lock:
            self._closed = True
        with suppress(queue.Empty):
            while True:
                item = self._queue.get_nowait()
                if isinstance(item, Handed):
                    item.error = StopRequested("the run ended before this page could be saved")
                item.done.set()


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

    Sources are fetched at once, up to [collect] concurrency, each in its own thread; their pages
    are saved by one writer in this thread (`_Writer`), which also calls `on_page` and records
    each source's outcome as it finishes. `summary.sources` keeps the config's order.

    The run's live sources share one HTTP client (`http`), made here with the user agent naming
    this version and closed when the run ends, unless `context` lends one (its owner closes it);
    `context` also brings its `sleep` and `clock`, and the connectors' `env` and `clock`.
    `should_stop` is asked between pages; when it says yes every source ends there, as
    interrupted. A `StopFlag` also ends the retry and rate-limit waits (it becomes the client's
    `sleep`, unless `context` brings one). With `run_id` the outcomes join that run, and
    finishing it is the caller's job.
    """
    if isinstance(should_stop, StopFlag):
        context.setdefault("sleep", should_stop.sleep)
    sources = [s for s in config.sources if (s.name == only if only else s.enabled)]
    halt = StopFlag()  # the run ended early (an error, Ctrl-C twice): every worker ends too
    sleep, made = context.pop("sleep", None), None
    if "http" not in context and any(s.type not in ARCHIVE_TYPES for s in sources):
        made = context["http"] = HttpClient(
            sleep=sleep or halt.sleep, clock=context.get("clock"),
            user_agent=user_agent(__version__),
        )  # fmt: skip
    own = run_id is None
    if run_id is None:
        run_id = start_run(engine, command, pid=os.getpid())
    summary = CollectSummary(run_id, [])
    try:
        _collect_all(engine, config, sources, summary, on_page, should_stop, halt, context)
        if not summary.stopped and only is None:
            summary.media, summary.stopped = archive_new_media(engine, config, should_stop)
    except BaseException as exc:
        if own:
            abandon_run(engine, summary.run_id, exc)
        raise
    finally:
        if made is not None:
            made.close()
    if own:
        finish_run(engine, summary.run_id, *summary.verdict())
    return summary


def _collect_all(
    engine: Engine, config: Config, sources: list[SourceConfig], summary: CollectSummary,
    on_page: OnPage | None, should_stop: StopCheck | None, halt: StopFlag, context: dict[str, Any],
) -> None:  # fmt: skip
    """Each source in a worker thread, [collect] concurrency at a time; their pages saved and their
    outcomes recorded here. Whatever ends this early (an error, Ctrl-C twice) halts the workers,
    each after its current request or at once in a wait the run's own client makes; they are
    daemon threads, which hold no transaction, so a process ending then never waits for them."""
    if not sources:
        return
    workers = min(len(sources), config.collect.concurrency)
    writer = _Writer(engine, on_page, workers)
    todo: queue.SimpleQueue[SourceConfig] = queue.SimpleQueue()
    for source in sources:
        todo.put(source)

    def stop() -> bool:
        return halt() or (should_stop is not None and should_stop())

    def work() -> None:
        with suppress(queue.Empty):  # until every source is taken
            while True:
                source = todo.get_nowait()
                threading.current_thread().name = f"collect {source.name}"  # %(threadName)s
                writer.finish(one(source))

    def one(source: SourceConfig) -> _Finished:
        try:
            if stop():  # not started: it keeps its cursor and gets no outcome
                return _Finished(None)
            started = utcnow()
            done = collect_source(engine, config, source, None, stop, writer.keep, **context)
            return _Finished(done, started)
        except BaseException as exc:  # collect_source raises no Exception: hand on the rest
            return _Finished(None, escaped=exc)

    def finished(end: _Finished) -> None:
        if end.escaped is not None:
            raise end.escaped
        if end.summary is None:
            summary.stopped = True
            return
        summary.sources.append(end.summary)
        record_outcome(engine, summary.run_id, outcome_row(end.summary, end.started))
        summary.stopped = summary.stopped or end.summary.stopped

    threads = [threading.Thread(target=work, name=f"collect {n}", daemon=True)
               for n in range(workers)]  # fmt: skip
    try:
        for thread in threads:
            thread.start()
        writer.serve(len(sources), finished)
    except BaseException:
        halt.set()
        writer.close()
        raise
    for thread in threads:
        thread.join()  # each has handed in its last source: ending now
    order = {s.name: n for n, s in enumerate(sources)}
    summary.sources.sort(key=lambda s: order[s.name])


MEDIA_KEY = "media"  # in `meta`: the inputs of the last archive pass that left nothing to do


def archive_new_media(
    engine: Engine, config: Config, should_stop: StopCheck | None
) -> tuple[MediaSummary | None, bool]:
    """The posts' images as [media] asks (nothing when archiving is off; thumbnails of posts no
    longer shown are removed either way), and whether a stop ended it. A failing image is a
    warning, never a failed run. Skipped when nothing it reads changed since a pass that left no
    image waiting and none failing (`_media_inputs`)."""
    if (remembered(engine, MEDIA_KEY) or {}).get("inputs") == _media_inputs(engine, config):
        log.info("media: nothing new since the archive was last brought up to date")
        return None, False
    try:
        done = archive_media(engine, config, should_stop=should_stop)
    except StopRequested:
        return None, True
    if not (done.waiting or done.failed):  # nothing left to try: the next pass can wait for news
        remember(engine, MEDIA_KEY, {"inputs": _media_inputs(engine, config)})
    return done, False


def _media_inputs(engine: Engine, config: Config) -> str:
    """A fingerprint of what an archive pass reads: the posts, the [media] and opt-out settings,
    and the archive itself (its images and those that failed)."""
    archive = Archive(media_folder(config))
    with engine.connect() as conn:
        posts = posts_state(conn)
    return fingerprint(repr(config.media), config.privacy.opt_out, str(archive.folder),
                       archive.images, archive.failed, posts)  # fmt: skip


def outcome_row(s: SourceSummary, started: Any) -> dict[str, Any]:
    """A source's summary as its `sourceoutcome` row in the run log."""
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


def ended_by(exc: BaseException) -> tuple[str, str]:
    """Status and message for what an exception ended: failed for an error, interrupted for
    Ctrl-C or an exit."""
    if not isinstance(exc, Exception):
        return "interrupted", "stopped before the run finished"
    # our messages (every AggregatorError's) say it all; others need their type
    ours = isinstance(exc, AggregatorError)
    return "failed", redact(str(exc) if ours else f"{type(exc).__name__}: {exc}".rstrip(": "))


def abandon_run(engine: Engine, run_id: int, exc: BaseException) -> None:
    """Finish a run an exception ended, as `ended_by` says."""
    try:
        finish_run(engine, run_id, *ended_by(exc))
    except StorageError as problem:  # the database itself failed; the next start marks the run
        log.error("%s", problem)


@contextmanager
def writing(config: Config) -> Iterator[Engine]:
    """The config's database for a writing step, as every writing command has it: under the one
    writers' lock (aggregator.lock), opened and upgraded to the schema this version needs
    (storage.db.upgrade_database: a SQLite file copied beside itself first), the runs a killed
    process left 'running' marked interrupted, and the config's event recorded as the database's
    if none is (a warning is logged when the database holds another event's posts). Its
    connections are closed at the end; the engine stays usable.

    :raises LockHeld: another process is writing (no waiting). :raises LockError: the lock file
        cannot be made. :raises StorageError: the database cannot be opened or updated.
    """
    with writers_lock(config):  # a file lock on SQLite, an advisory lock on PostgreSQL
        engine = open_database(config.database_url)
        try:
            recover_interrupted(engine)
            _check_event(engine, config, record=True)
            yield engine
        finally:
            engine.dispose()


@contextmanager
def reading(config: Config) -> Iterator[Engine]:
    """The config's database for reading, without the lock (SQLite's WAL lets it read while a run
    writes): opened, with a warning logged when it holds another event's posts. Its connections
    are closed at the end. :raises StorageError: it cannot be opened. :raises SchemaBehind: it
    needs `aggregator db upgrade` first (a reader never changes its schema; a new one is made).
    """
    engine = open_database(config.database_url, upgrade=False)
    try:
        _check_event(engine, config)
        yield engine
    finally:
        engine.dispose()


def _check_event(engine: Engine, config: Config, record: bool = False) -> None:
    """Warn when the database holds another event's posts (a config copied beside another one
    shares its database); with `record`, first record the config's event if none is yet."""
    recorded = record_event(engine, config.event.name) if record else recorded_event(engine)
    if warning := mismatch(engine, recorded, config.event.name):
        log.warning("%s", warning)


def run_collect(
    config: Config,
    *,
    only: str | None = None,
    on_page: OnPage | None = None,
    should_stop: StopCheck | None = None,
    **context: Any,
) -> CollectSummary:
    """`aggregator collect`: every enabled source (or only the one named `only`, enabled or not)
    in `writing(config)`. `should_stop` and `context` as for `collect`.

    :raises UsageError: no source is named `only`. :raises LockHeld: another process is writing.
    """
    if only is not None and config.source(only) is None:
        names = ", ".join(s.name for s in config.sources) or "none"
        raise UsageError(f"no source named {only!r} (configured: {names})")
    with writing(config) as engine:
        return collect(engine, config, only=only, on_page=on_page, should_stop=should_stop,
                       **context)  # fmt: skip


@dataclass
class NightlySummary:
    collected: CollectSummary
    tagged: TagSummary | None = None  # None when a stop was requested before tagging
    files: dict[str, Path] = field(default_factory=dict)


def _profile(limit: int) -> Any:
    """The author's profile text where the source keeps one in the payload: Mastodon's
    account.note, X's and twarc's author (or v1 user) description, Bluesky's author description."""
    paths = (("account", "note"), ("author", "description"), ("user", "description"))
    return func.substr(func.coalesce(*(POSTS.c.raw[p].as_string() for p in paths)), 1, limit)


def analyse(
    engine: Engine,
    batch: int = 500,
    workers: int | None = None,
    analyser: Callable[[str, str | None], Any] | None = None,
) -> int:
    """What the story needs of each post (reports/features.py: editorial classes, copy key,
    disclosure, role, terms, sentiment), computed once and stored: for posts never analysed,
    changed since, or analysed by an older analyser. Reads a bounded prefix of each post and
    profile, `batch` posts at a time, each batch stored in one transaction. Returns how many posts
    it analysed.

    The work is spread over `workers` processes (default: one per core) when there are at least
    four batches for each, else done here; the results are the same. A post whose analysis raises,
    or ends its worker process, is stored as unreadable (reports.features.unreadable: counted,
    never shown) with a warning, and the others are analysed. `analyser` stands in for
    reports.features.features: a module-level function, so that a spawned worker can import it.
    Workers import the main module again: a script calling this needs `if __name__ == "__main__":`.
    """
    from contextlib import closing
    from functools import partial
    from itertools import chain

    from aggregator.workers import map_chunks
    from reports.features import FAILED, PROFILE_READ, analyse_rows, features, outcomes
    from reports.text import ANALYSER, MAX_ANALYSED

    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1 or batch < 1:
        raise ValueError(f"analyse needs a batch and workers of at least 1, not {batch}, {workers}")
    current = (ANALYSER, FAILED)
    text = func.substr(POSTS.c.text, 1, MAX_ANALYSED)
    chunks = stale_rows(engine, current, (POSTS.c.id, text, _profile(PROFILE_READ)), batch)
    first = next(chunks, None)
    if first is None:
        return 0  # nothing new: nothing counted, no worker started
    chunks = chain([first], chunks)
    work = partial(analyse_rows, analyser=analyser or features)
    spread = workers > 1 and count_stale(engine, current) >= 4 * workers * batch
    done = map_chunks(work, chunks, workers) if spread else ((c, work(c)) for c in chunks)
    analysed = 0
    with closing(done):  # a failed write ends the workers at once
        for chunk, results in done:
            now, values = utcnow(), []
            for pk, version, found, failed in outcomes(chunk, results):
                if failed:
                    log.warning("post %d could not be analysed (%s): stored as unreadable, "
                                "never shown unless pinned", pk, failed)  # fmt: skip
                values.append({"post_pk": pk, "analyser": version, "analysed_at": now, **found})
            store_analysis(engine, values)
            analysed += len(chunk)
    return analysed


REVIEW_PAGE = "review.html"  # beside config.toml: the organisers' page, never in the report folder


def report(
    engine: Engine, config: Config, review: bool = False, skip_unchanged: bool = False
) -> dict[str, Path]:
    """Tag and analyse what is new (so a pin, exclusion or move pasted into the curation file shows
    at once), then write the story (HTML, Markdown, JSON) into [report] output,
    with the curation file's notes, mutes and roles; the files written, by format. With `review`,
    also the organisers' review page ("review"), beside config.toml: it lists what the story
    leaves out (flagged disclosures among it), so it never goes where the report is published.
    With `skip_unchanged` (the nightly job), a story whose inputs (`_story_inputs`) are those it
    was last written from, and whose files are still as written then, is left as it is: its files
    are returned unwritten."""
    from reports.render import write_report, write_review
    from reports.review import build_review
    from reports.story import tell

    tag(engine, config)  # new posts, and every post again when the curation file changed
    analyse(engine)
    inputs = _story_inputs(engine, config)
    if skip_unchanged and not review and (kept := _story_kept(engine, config, inputs)):
        return kept
    told = tell(engine, config, load_curation(config))
    files = write_report(told.story, config.report_output)
    remember(engine, STORY_KEY, {"inputs": inputs, "files": _written(files)})
    if review:
        files["review"] = write_review(build_review(told, config), config.base_dir / REVIEW_PAGE)
    return files


STORY_KEY = "report"  # in `meta`: the inputs and files of the story last written


def _story_inputs(engine: Engine, config: Config) -> str:
    """A fingerprint of everything the story reads but the time: the posts, their sessions and
    analyses (storage.inputs), the config, the curation file, the archived photos, the templates
    and this version, and each source's health as the story shows it, without the time of its last
    success. So on a night when every source worked and nothing else changed, the story stays as
    it was written, with the time it says it was written and each source's last success then."""
    from reports.render import file_digests, templates_digest

    with engine.connect() as conn:
        tables = tables_state(conn)
    health = [
        [h.name, h.enabled, h.last_success is None, h.warnings,
         [h.last_error, h.last_error_at] if h.failures_in_a_row else None]
        for h in source_health(engine, config)
    ]  # fmt: skip
    curation = file_digests({"curation": config.curation} if config.curation else {})
    photos = Archive(media_folder(config)).images
    return fingerprint(__version__, templates_digest(), dict(config.raw), curation, photos,
                       tables, health)  # fmt: skip


def _story_kept(engine: Engine, config: Config, inputs: str) -> dict[str, Path] | None:
    """The story's files when it was last written from `inputs` and each is still as written;
    else None."""
    from reports.render import report_files

    last = remembered(engine, STORY_KEY) or {}
    files = report_files(config.report_output)
    if last.get("inputs") != inputs or last.get("files") != _written(files):
        return None
    log.info("report: nothing it shows changed since it was written; %s left as it is",
             config.report_output)  # fmt: skip
    return files


def _written(files: Mapping[str, Path]) -> dict[str, str | None]:
    """Each of the story's files' digest (None: missing), by its full path (a moved [report]
    output is a change)."""
    from reports.render import file_digests

    return file_digests({str(path.resolve()): path for path in files.values()})


Collector = Callable[[Engine, int], CollectSummary]
"""How a nightly run collects, when not here: the run's engine and id in, its sources collected
and their outcomes recorded against that run (aggregator.distributed: by workers)."""


def nightly(
    engine: Engine,
    config: Config,
    on_page: OnPage | None = None,
    should_stop: StopCheck | None = None,
    command: str = "run",
    collector: Collector | None = None,
    **context: Any,
) -> NightlySummary:
    """The nightly job (`run` and `schedule`) as one run in the run log: collect (here, or by
    `collector`), tag, report.

    A stop request ends it after the current page or wait; tag and report then wait for the next
    run, also when the stop came after the last source. An error is recorded against the run,
    then raised.
    """
    run_id = start_run(engine, command, pid=os.getpid())
    try:
        if collector is not None:
            collected = collector(engine, run_id)
        else:
            collected = collect(engine, config, on_page=on_page, should_stop=should_stop,
                                run_id=run_id, **context)  # fmt: skip
        done = NightlySummary(collected)
        if should_stop is not None and should_stop():
            done.collected.stopped = True
        if not done.collected.stopped:
            done.tagged = tag(engine, config)
            done.files = report(engine, config, skip_unchanged=True)
    except BaseException as exc:
        abandon_run(engine, run_id, exc)
        raise
    finish_run(engine, run_id, *done.collected.verdict())
    log.info("run %d finished: %s", run_id, done.collected.verdict()[0])
    return done


def run_nightly(
    config: Config,
    *,
    command: str = "run",
    on_page: OnPage | None = None,
    should_stop: StopCheck | None = None,
    env: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    collector: Collector | None = None,
    **context: Any,
) -> NightlySummary:
    """The nightly job as `aggregator run` and every scheduled run do it: `nightly` in
    `writing(config)`, recorded under `command` in the run log; then the [alerts] alert, if one
    is due (a source failing `after_failures` runs in a row), sent after the lock is released.
    When the job raises, the alert says the run failed and the error goes on.

    `env` holds the alert's secrets (default: the environment); `clock` says when the alert's run
    was (default: now). `on_page`, `should_stop` and `context` as for `collect`; `collector` as
    for `nightly`.

    :raises LockHeld: another process is writing: nothing ran, no alert.
    """
    with writing(config) as engine:
        try:
            done = nightly(engine, config, on_page=on_page, should_stop=should_stop,
                           command=command, collector=collector, **context)  # fmt: skip
        except Exception as exc:
            after_run(engine, config, ended_by(exc)[1], env=env, now=clock and clock())
            raise
    try:  # writing() closed the engine's connections: reading the run log reopens one, closed here
        after_run(engine, config, env=env, now=clock and clock())
    finally:
        engine.dispose()
    return done


@dataclass
class ImportSummary:
    path: Path
    run_id: int  # its `import` run in the run log
    read: int = 0  # posts read from the file, stored or not
    pages: int = 0
    new_posts: int = 0
    updated_posts: int = 0
    rejected: list[str] = field(default_factory=list)
    opted_out: int = 0
    warnings: list[str] = field(default_factory=list)  # e.g. a TAGS file read as Windows-1252

    @property
    def source(self) -> str:
        """The source name its posts are stored under, and its outcome's in the run log."""
        return f"import:{self.path.name}"

    @property
    def failed(self) -> bool:
        """Nothing could be read: every line of the file was skipped."""
        return bool(self.rejected) and not self.read

    def outcome(self, status: str, error: str | None) -> SourceSummary:
        """As one source of its run, for the run log."""
        return SourceSummary(
            self.source, status, self.new_posts, self.updated_posts, self.pages,
            rejected=self.rejected, warnings=list(dict.fromkeys(self.warnings)), error=error,
        )  # fmt: skip


def import_pages(
    engine: Engine, path: Path, pages: Iterator[Page], opt_out: tuple[str, ...] = ()
) -> ImportSummary:
    """Store an archive's pages under the source name 'import:<file name>', leaving out posts by
    `opt_out` accounts and removing their handles from the rest. Idempotent.

    Recorded in the run log as an `import` run with that one source: failed when every line was
    skipped, and, when an exception ends it, failed (an error) or interrupted (Ctrl-C) before the
    exception goes on; a killed import stays `running` until the next writer marks it interrupted.
    """
    run_id = start_run(engine, "import", pid=os.getpid())
    summary, started = ImportSummary(path, run_id), utcnow()
    try:
        _store(engine, summary, pages, Redactor(opt_out))
    except BaseException as exc:
        with suppress(
            StorageError
        ):  # a failing database: abandon_run logs it, the next run marks it
            record_outcome(engine, run_id, outcome_row(summary.outcome(*ended_by(exc)), started))
        abandon_run(engine, run_id, exc)
        raise
    status, error = "ok", None
    if summary.failed:
        status, error = "failed", f"no post could be read from {path.name}: every line was skipped"
    record_outcome(engine, run_id, outcome_row(summary.outcome(status, error), started))
    finish_run(engine, run_id, status, error)
    return summary


IMPORT_FORMATS = ("jsonl", "twarc", "tags")  # archive files `import_file` reads


def archive_reader(fmt: str) -> Callable[[Path], Iterator[Page]]:
    """The reader of an archive format in IMPORT_FORMATS: path -> pages.

    :raises UsageError: for any other format.
    """
    from connectors.archives import read_jsonl
    from connectors.tags import read_tags
    from connectors.twarc import read_twarc

    readers = {"jsonl": read_jsonl, "twarc": read_twarc, "tags": read_tags}
    if fmt not in readers:
        raise UsageError(f"cannot import {fmt!r} files: use one of {', '.join(IMPORT_FORMATS)}")
    return readers[fmt]


def import_file(config: Config, path: Path, fmt: str = "jsonl") -> ImportSummary:
    """`aggregator import`: an archive file of format `fmt` (IMPORT_FORMATS) stored by
    `import_pages` in `writing(config)`, leaving out [privacy] opt_out accounts.

    :raises UsageError: an unknown format. :raises LockHeld: another process is writing.
    """
    read = archive_reader(fmt)
    with writing(config) as engine:
        return import_pages(engine, path, read(path), config.privacy.opt_out)


def _store(
    engine: Engine, summary: ImportSummary, pages: Iterator[Page], redactor: Redactor
) -> None:
    for page in pages:
        page.cursor = None  # a one-off import has no cursor to keep
        summary.read += len(page.posts)
        page.posts, dropped = drop_opted_out(page.posts, redactor)
        page.quarantined = redact_quarantined(page.quarantined, redactor)
        summary.opted_out += dropped
        saved = save_page(engine, summary.source, page)
        summary.pages += 1
        summary.new_posts += saved.new
        summary.updated_posts += saved.updated
        skipped = [redact(r) for r in (*page.rejected, *(str(q) for q in saved.refused))]
        for reason in skipped:  # the command lists them; the log file keeps them too
            log.warning("%s: skipped %s", summary.source, reason, extra=IN_SUMMARY)
        summary.rejected += skipped
        summary.warnings += [redact(w) for w in page.warnings]
