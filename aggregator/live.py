"""`aggregator live`: the streaming sources continuously, the polling ones every few minutes.

One process, under the writers' lock (`pipeline.writing`), as the nightly job is. Each streaming
source (connectors' `STREAMING_TYPES`: Jetstream) runs in a thread of its own, following its
stream; the polling sources are collected every `[live] poll_minutes`, each in a thread, while the
programme is on (a session's hours widened by `[live] margin_minutes` on each side), and not at
all outside them. Every thread hands its pages to this process's one writer, the calling thread,
which saves each page with its cursor in one transaction and then tags what is new, so a wall
shows a post's session seconds after it is made.

The run log has one `live` run per round of `poll_minutes`: each source's outcome in it is what
it did in that round (a stream's pages since the last round), so `aggregator status` shows the
live process and its sources as it shows the nightly job. A stop (SIGTERM, SIGINT: `StopFlag`)
ends every source after its current page or wait; the last round is recorded and the process
ends cleanly.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from aggregator import __version__
from aggregator.config import Config, SourceConfig
from aggregator.errors import UsageError
from aggregator.logs import redact
from aggregator.pipeline import (
    Handed,
    OnPage,
    SourceSummary,
    collect_source,
    outcome_row,
    save_counted,
    tag,
    writing,
)
from aggregator.settings import ARCHIVE_TYPES, STREAMING_TYPES
from aggregator.stop import StopFlag
from connectors import Page
from connectors.http import HttpClient, user_agent
from storage.db import StorageError
from storage.queries import finish_run, record_outcome, start_run, stored_ids, utcnow

__all__ = ["LiveSummary", "live", "polling_hours", "run_live"]

log = logging.getLogger(__name__)
RESTART_SECONDS = 60  # a streaming source that ended with an error starts again after this
Clock = Callable[[], datetime]


@dataclass
class LiveSummary:
    rounds: int = 0  # `live` runs recorded
    new_posts: int = 0
    tagged: int = 0
    failed: list[str] = field(default_factory=list)  # sources that failed, in any round


def polling_hours(config: Config, now: datetime) -> bool:
    """Whether the polling sources are collected at `now`: within a session's hours widened by
    `[live] margin_minutes` on each side; always when the programme has no sessions."""
    margin = timedelta(minutes=config.live.margin_minutes)
    return not config.sessions or any(
        s.start - margin <= now <= s.end + margin for s in config.sessions
    )


@dataclass
class _Ended:
    """A source's thread is done with it: its summary, or what escaped it."""

    name: str
    summary: SourceSummary | None
    started: datetime
    escaped: BaseException | None = None
    final: bool = True  # False: a stream that starts again after RESTART_SECONDS


class _Round:
    """One `live` run: what each source did in it."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine, self.clock = engine, clock
        self.run_id = start_run(engine, "live", pid=os.getpid())
        self.started = clock()
        self.streams: dict[str, SourceSummary] = {}
        self.outcomes: list[tuple[SourceSummary, datetime]] = []

    def stream(self, name: str) -> SourceSummary:
        return self.streams.setdefault(name, SourceSummary(name))

    def finish(self, message: str | None = None) -> list[str]:
        """Record every source's outcome and end the run; the sources that failed."""
        done = [*self.outcomes, *((s, self.started) for s in self.streams.values())]
        for summary, started in done:
            record_outcome(self.engine, self.run_id, outcome_row(summary, started))
        failed = [s.name for s, _ in done if s.status == "failed"]
        status = "failed" if failed else "ok"
        notes = [f"{', '.join(failed)} failed" if failed else None, message]
        finish_run(self.engine, self.run_id, status, "; ".join(n for n in notes if n) or None)
        return failed


class _Live:
    """The live process's one writer and its sources' threads."""

    def __init__(self, engine: Engine, config: Config, stop: StopFlag, clock: Clock,
                 on_page: OnPage | None, context: dict[str, Any]) -> None:  # fmt: skip
        self.engine, self.config, self.stop, self.clock = engine, config, stop, clock
        self.on_page, self.context = on_page, context
        self.queue: queue.Queue[Handed | _Ended] = queue.Queue()
        self.running: set[str] = set()  # sources whose thread is going
        self.done = LiveSummary()
        self.round = _Round(engine, clock)

    # -- the sources' threads --------------------------------------------------------------

    def keep(self, summary: SourceSummary, page: Page) -> None:
        """A source thread's `Keep`: the page saved by the writer, or its error raised here."""
        handed = Handed(summary, page)
        self.queue.put(handed)
        handed.done.wait()
        if handed.error is not None:
            raise handed.error

    def start(self, source: SourceConfig, **extra: Any) -> None:
        """Collect `source` in a thread of its own; a stream (`extra` says how it follows) starts
        again RESTART_SECONDS after it ends with an error, until a stop."""
        self.running.add(source.name)
        threading.Thread(target=self._run, args=(source, extra), name=f"live {source.name}",
                         daemon=True).start()  # fmt: skip

    def _run(self, source: SourceConfig, extra: dict[str, Any]) -> None:
        again = bool(extra)
        while True:
            started = self.clock()
            try:
                summary = collect_source(self.engine, self.config, source, None, self.stop,
                                         self.keep, **self.context, **extra)  # fmt: skip
            except BaseException as exc:  # collect_source raises no Exception: hand on the rest
                self.queue.put(_Ended(source.name, None, started, exc))
                return
            final = not again or self.stop()
            self.queue.put(_Ended(source.name, summary, started, final=final))
            if final:
                return
            log.warning("%s: the stream ended (%s); starting it again in %d s", source.name,
                        summary.error or summary.status, RESTART_SECONDS)  # fmt: skip
            if self.stop.wait(RESTART_SECONDS):
                self.queue.put(_Ended(source.name, None, started))
                return

    # -- the writer ----------------------------------------------------------------------------

    def serve(self, until: datetime | None) -> _Ended | None:
        """Save what the threads hand in until `until` (None: until a thread ends), or until a
        stop; a source's end when one comes."""
        while True:
            wait = 1.0 if until is None else (until - self.clock()).total_seconds()
            if wait <= 0 or (until is not None and self.stop()):
                return None
            try:
                item = self.queue.get(timeout=min(wait, 1.0))
            except queue.Empty:
                continue
            if isinstance(item, _Ended):
                if item.final:
                    self.running.discard(item.name)
                if item.escaped is not None:
                    raise item.escaped
                return item
            self._save(item)

    def _save(self, item: Handed) -> None:
        name, page = item.summary.name, item.page
        try:
            saved = save_counted(self.engine, item.summary, page)
            if self._streaming(name):
                self.round.stream(name).count(page, saved.new, saved.updated)
            for warning in page.warnings:
                log.warning("%s: %s", name, warning)
            self.done.new_posts += saved.new
            if saved.new or saved.updated:
                self.done.tagged += tag(self.engine, self.config).tagged
        except Exception as exc:  # the source fails with it, as it would in the nightly job
            item.error = exc
        finally:
            item.done.set()
        if self.on_page:
            self.on_page(name, page)

    def _streaming(self, name: str) -> bool:
        source = self.config.source(name)
        return source is not None and source.type in STREAMING_TYPES

    def ended(self, end: _Ended) -> None:
        """A source's thread ended: a poll's outcome joins the round; a stream's failure too."""
        summary = end.summary
        if summary is None:
            return
        if summary.status == "failed":
            self.done.failed.append(summary.name)
        if self._streaming(summary.name):
            kept = self.round.stream(summary.name)
            kept.status, kept.error = summary.status, summary.error
            if summary.status == "interrupted" and self.stop():
                kept.status = "ok"  # a stop is how a live stream ends: it lost nothing
        else:
            self.round.outcomes.append((summary, end.started))

    def next_round(self, message: str | None = None) -> None:
        self.round.finish(message)
        self.done.rounds += 1
        if not self.stop():
            self.round = _Round(self.engine, self.clock)


def live(
    engine: Engine,
    config: Config,
    stop: StopFlag,
    *,
    on_page: OnPage | None = None,
    on_note: Callable[[str], None] | None = None,
    clock: Clock = utcnow,
    **context: Any,
) -> LiveSummary:
    """Run the enabled sources live until `stop` (see the module's docstring); what was done.
    `on_page(source, page)` after each page is saved; `on_note(line)` for what a person watching
    should know (a round outside the programme's hours). `context` is lent to every connector
    (`http`, `env`, `clock`...).

    :raises UsageError: no source is enabled.
    """
    sources = [s for s in config.sources if s.enabled]
    if not sources:
        raise UsageError("no source is enabled: set enabled = true on a [[sources]] table")
    streams = [s for s in sources if s.type in STREAMING_TYPES]
    polls = [s for s in sources if s.type not in STREAMING_TYPES]
    made = None
    if "http" not in context and any(s.type not in ARCHIVE_TYPES for s in sources):
        made = context["http"] = HttpClient(sleep=stop.sleep, user_agent=user_agent(__version__))
    run = _Live(engine, config, stop, clock, on_page, context)

    def note(line: str) -> None:
        log.info("%s", line)
        if on_note is not None:
            on_note(line)

    try:
        for source in streams:
            run.start(source, follow=True, stop=stop, sleep=stop.sleep, stored=stored_ids(engine))
        _rounds(run, polls, note)
        while run.running:  # a stop: each thread ends after its current page or wait
            if end := run.serve(None):
                run.ended(end)
        run.next_round("stopped on request")
    except BaseException as exc:  # the round's run ends with it (the threads are daemons)
        stop.set()
        failed = isinstance(exc, Exception)
        with suppress(StorageError):  # a failing database: the next writer marks the run
            finish_run(engine, run.round.run_id, "failed" if failed else "interrupted",
                       redact(str(exc)) if failed else "stopped before the round finished")  # fmt: skip
        raise
    finally:
        if made is not None:
            made.close()
    return run.done


def _rounds(run: _Live, polls: list[SourceConfig], note: Callable[[str], None]) -> None:
    """Round after round of `[live] poll_minutes` until a stop: the polling sources collected at
    its start (within the programme's hours), the streams' pages saved throughout."""
    every = timedelta(minutes=run.config.live.poll_minutes)
    outside = False  # said once when the programme's hours end, not every round
    while not run.stop():
        due = run.clock() + every
        if polls and not polling_hours(run.config, run.clock()):
            if not outside:
                note(f"outside the programme's hours (± {run.config.live.margin_minutes} min): "
                     "polling nothing until they come again; streams stay open")  # fmt: skip
            outside = True
        elif polls:
            if outside:
                note("the programme's hours have come: polling again")
            outside = False
            for source in polls:
                if source.name not in run.running:
                    run.start(source)
        while not run.stop() and (run.clock() < due or _polling(run, polls)):
            if end := run.serve(due if run.clock() < due else None):
                run.ended(end)
        if not run.stop():
            run.next_round()


def _polling(run: _Live, polls: list[SourceConfig]) -> bool:
    return any(s.name in run.running for s in polls)


def run_live(
    config: Config,
    stop: StopFlag,
    *,
    on_page: OnPage | None = None,
    on_note: Callable[[str], None] | None = None,
    **context: Any,
) -> LiveSummary:
    """`aggregator live`: `live` in `writing(config)`, under the writers' lock until it stops.

    :raises LockHeld: another process is writing. :raises UsageError: no source is enabled.
    """
    with writing(config) as engine:
        return live(engine, config, stop, on_page=on_page, on_note=on_note, **context)
