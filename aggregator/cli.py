"""The `aggregator` command. The only module that prints or exits.

Exit codes: 0 done, 1 failed (a source or step failed; a summary says which), 2 usage or config error.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, NoReturn

import click
from sqlalchemy.engine import Engine

from aggregator import __version__
from aggregator.config import Config, ConfigError, load_config, resolve_config_path
from aggregator.curation import load_curation
from aggregator.lock import LockError, LockHeld, RunLock, StopFlag, holder_pid, lock_path
from aggregator.logs import redact, secret_env_names, setup_logging, teardown_logging, watch_secrets
from aggregator.pipeline import CollectSummary, NightlySummary, collect, import_pages, nightly, tag
from connectors import ConnectorError
from storage.db import StorageError, open_database

log = logging.getLogger("aggregator")

IMPORT_FORMATS = ("jsonl", "twarc", "tags")


class Failed(click.ClickException):
    """Exit 1 with one line on stderr."""

    exit_code = 1


class ConfigProblem(click.ClickException):
    exit_code = 2


def fail(message: str) -> NoReturn:
    raise Failed(redact(message))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help="The event's config file. [default: $AGGREGATOR_CONFIG, else ./config.toml]",
)
@click.option("--log-file", type=click.Path(dir_okay=False, path_type=Path), metavar="PATH",
              help="Also append log lines, with times, to this file (info and up).")  # fmt: skip
@click.option("--verbose", "-v", is_flag=True, help="Log everything, debug lines included.")
@click.option("--quiet", "-q", is_flag=True, help="Only errors on stderr; no progress bars.")
@click.version_option(__version__, prog_name="aggregator")
@click.pass_context
def cli(
    ctx: click.Context, config_path: str | None, log_file: Path | None, verbose: bool, quiet: bool
) -> None:
    """Collect an event's hashtag posts, tag them to the programme's sessions, and tell the story."""
    if verbose and quiet:
        raise click.UsageError("use --verbose or --quiet, not both")
    try:
        setup_logging(verbose, quiet, log_file)
    except OSError as exc:
        message = f"cannot open {log_file}: {exc.strerror}"
        raise click.BadParameter(message, param_hint="--log-file") from None
    ctx.call_on_close(teardown_logging)
    ctx.meta["aggregator.quiet"] = quiet
    ctx.obj = resolve_config_path(config_path)


def get_config(ctx: click.Context) -> Config:
    try:
        config = load_config(ctx.find_root().obj)
        load_curation(config)  # a bad curation file is a config error too: nothing runs
        watch_secrets(secret_env_names(config.raw))  # never log what the *_env variables hold
        return config
    except ConfigError as exc:
        if len(exc.problems) == 1:
            raise ConfigProblem(f"{exc.path}: {exc.problems[0]}") from None
        lines = "\n".join(f"  {p}" for p in exc.problems)
        raise ConfigProblem(f"{exc.path} has {len(exc.problems)} problems:\n{lines}") from None


def get_engine(config: Config) -> Engine:
    try:
        return open_database(config.database_url)
    except StorageError as exc:
        fail(str(exc))


@contextmanager
def failures() -> Iterator[None]:
    """Turn the project's own errors into one line and exit 1."""
    try:
        yield
    except LockHeld as exc:
        fail(f"{exc}: wait for it to finish (`aggregator status` shows it)")
    except (LockError, StorageError, ConnectorError) as exc:
        fail(str(exc))
    except OSError as exc:  # e.g. the report folder is not writable, or the disk is full
        if exc.errno is None:  # not the system's error (jinja2's TemplateNotFound is an OSError)
            raise
        fail(f"cannot write {exc.filename or 'a file'}: {exc.strerror}")


@contextmanager
def writing(config: Config) -> Iterator[Engine]:
    """The database under the one writers' lock; runs a killed process left 'running' are marked.

    :raises LockHeld: another run holds the lock (use inside `failures()` for the one-line exit).
    """
    from aggregator.health import recover_interrupted

    with RunLock(lock_path(config)):
        engine = open_database(config.database_url)
        try:
            recover_interrupted(engine)
            yield engine
        finally:
            engine.dispose()  # `schedule` opens one a night: close its connections (it stays usable)


def _is_terminal() -> bool:
    return sys.stderr.isatty()


@contextmanager
def _progress(ctx: click.Context) -> Iterator[Any]:
    """Progress bars on a terminal, one per source (pages, posts); nothing under cron, in a pipe
    or with --quiet. Yields the per-page callback, or None."""
    if ctx.meta.get("aggregator.quiet") or not _is_terminal():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    tasks: dict[str, Any] = {}
    pages: dict[str, int] = {}
    columns = (SpinnerColumn(), TextColumn("{task.description}"),
               TextColumn("{task.fields[pages]} pages, {task.completed:.0f} posts"), TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=Console(stderr=True, force_terminal=True)) as bars:

        def on_page(name: str, page: Any) -> None:
            pages[name] = pages.get(name, 0) + 1
            if name not in tasks:
                tasks[name] = bars.add_task(_printable(name, 40), total=None, pages=0)
            bars.update(tasks[name], advance=len(page.posts), pages=pages[name])

        yield on_page


def _echo_collect(summary: CollectSummary) -> None:
    for s in summary.sources:
        if s.status == "failed":
            click.echo(f"✗ {s.name}: {s.error}", err=True)
            continue
        extra = f", {len(s.rejected)} skipped" if s.rejected else ""
        extra += f", {s.opted_out} not stored (opted out)" if s.opted_out else ""
        updated = f", {s.updated_posts} updated" if s.updated_posts else ""
        stopped = ", stopped on request" if s.stopped else ""
        click.echo(f"✓ {s.name}: {s.new_posts} new{updated}{extra} ({s.pages} pages{stopped})")
        for warning in s.warnings:
            click.echo(f"! {s.name}: {warning}", err=True)
    if not summary.sources and not summary.stopped:
        click.echo("No sources are enabled: set enabled = true on a [[sources]] table.", err=True)


def _exit_if_failed(summary: CollectSummary) -> None:
    if summary.stopped:
        fail("stopped on request after the current page: run it again to resume from there")
    if summary.failed:
        fail(f"{len(summary.failed)} source(s) failed: {', '.join(s.name for s in summary.failed)}")


@cli.command("collect")
@click.option("--source", metavar="NAME", help="Collect only this source (even if disabled).")
@click.pass_context
def collect_cmd(ctx: click.Context, source: str | None) -> None:
    """Fetch new posts from every enabled source into the database. Ctrl-C (or SIGTERM) stops it
    after the current page."""
    config = get_config(ctx)
    if source and config.source(source) is None:
        names = ", ".join(s.name for s in config.sources) or "none"
        raise click.BadParameter(
            f"no source named {source!r} (configured: {names})", param_hint="--source"
        )
    with failures(), writing(config) as engine, StopFlag().signals() as stop, _progress(ctx) as bar:
        summary = collect(engine, config, only=source, on_page=bar, should_stop=stop)
    _echo_collect(summary)
    _exit_if_failed(summary)


def _nightly(config: Config, command: str, stop: StopFlag, on_page: Any = None) -> NightlySummary:
    """The nightly job under the lock, as `run` and every scheduled run do it; then any alert."""
    from aggregator.alerts import after_run

    with writing(config) as engine:
        try:
            summary = nightly(engine, config, on_page=on_page, should_stop=stop, command=command)
        except Exception as exc:
            ours = isinstance(exc, StorageError | ConnectorError)
            after_run(engine, config, error=str(exc) if ours else f"{type(exc).__name__}: {exc}")
            raise
    after_run(engine, config)
    return summary


def _echo_nightly(summary: NightlySummary) -> None:
    _echo_collect(summary.collected)
    if summary.tagged is not None:
        click.echo(f"Tagged {summary.tagged.tagged} posts.")
    if "html" in summary.files:
        click.echo(f"Report: {summary.files['html']}")


@cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(IMPORT_FORMATS), default="jsonl", show_default=True,
              help="The archive's format.")  # fmt: skip
@click.pass_context
def import_cmd(ctx: click.Context, path: Path, fmt: str) -> None:
    """Load an archive file (our JSONL, twarc, or a TAGS CSV) into the database."""
    config = get_config(ctx)
    with failures(), writing(config) as engine:
        summary = import_pages(engine, path, _reader(fmt)(path), config.privacy.opt_out)
    for reason in summary.rejected:
        click.echo(f"! {path.name}: skipped {reason}", err=True)
    opted = f", {summary.opted_out} not stored (opted out)" if summary.opted_out else ""
    click.echo(f"Imported {path.name}: {summary.new_posts} new, {summary.updated_posts} updated, "
               f"{len(summary.rejected)} skipped{opted}.")  # fmt: skip


def _reader(fmt: str) -> Any:
    from connectors import archives

    readers = {"jsonl": archives.read_jsonl}
    for name, module, attr in (
        ("twarc", "connectors.twarc", "read_twarc"),
        ("tags", "connectors.tags", "read_tags"),
    ):
        with suppress(ImportError, AttributeError):  # not every format ships in every version
            readers[name] = getattr(__import__(module, fromlist=[attr]), attr)
    if fmt not in readers:
        raise click.BadParameter(
            f"{fmt} import is not available in this version", param_hint="--format"
        )
    return readers[fmt]


def _printable(text: str, limit: int = 280) -> str:
    """Post text is hostile: no terminal control sequences, one line."""
    text = "".join(c if c.isprintable() else " " for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _named(session_id: str | None) -> str:
    return session_id or "general"


def _explanation_lines(config: Config, x: Any) -> list[str]:
    """`tag --explain` for one post: the decision, then every reason behind it."""
    tz, p, why, d = config.event.timezone, x.post, x.why, x.final.decision
    lines = [
        f"{p.platform} {p.post_id} at {p.created_at.astimezone(tz):%Y-%m-%d %H:%M %Z} {p.url or ''}",
        f"  {_printable(p.text)!r}",
        f"Decision: {_named(d.session_id)} (score {d.score:.2f}, {x.final.method}): {d.reason}",
        "Cues: "
        + ("; ".join(f"{c.describe()} -> {', '.join(c.sessions)}" for c in why.cues) or "none"),
    ]
    live = config.session(why.live) if why.live else None
    if live is None:
        lines.append("Live session: none (outside every session)")
    else:
        grace = " (within the grace minutes)" if why.in_grace else ""
        span = f"{live.start.astimezone(tz):%H:%M}–{live.end.astimezone(tz):%H:%M}"
        lines.append(f"Live session: {live.id} ({span}){grace}")
    if p.reply_to:
        parent = why.parent
        state = f"in {_named(parent.session_id)}: {parent.reason}" if parent else "not tagged"
        lines.append(f"Reply to: {p.reply_to}, {state}")
    lines.append("Curation: " + ("; ".join(e.describe() for e in x.final.entries) or "none"))
    s = x.stored
    if s is None:
        return [*lines, "Stored: not tagged yet (run `aggregator tag`)"]
    flags = (", excluded" if s.excluded else "") + (", highlight" if s.highlight else "")
    stale = "" if x.current else " (from an older programme or curation: run `aggregator tag`)"
    return [
        *lines,
        f"Stored: {_named(s.session_id)} (score {s.score:.2f}, {s.method}{flags}){stale}",
    ]


def _echo_explanation(config: Config, engine: Engine, post_id: str) -> None:
    from aggregator.pipeline import explain

    with failures():
        found = explain(engine, config, post_id)
    if not found:
        fail(f"no stored post has id {post_id!r} (check the id, or collect the post first)")
    for x in found:
        click.echo("\n".join(_printable(line, 2000) for line in _explanation_lines(config, x)))


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _echo_evaluation(config: Config, path: Path) -> None:
    from aggregator.pipeline import evaluate

    try:
        report = evaluate(config, path)
    except ConnectorError as exc:
        raise ConfigProblem(str(exc)) from None
    for reason in report.rejected:
        click.echo(f"! {path.name}: skipped {reason}", err=True)
    ev = report.evaluation
    if not ev.pairs:
        raise ConfigProblem(f'{path}: no labelled posts (each line needs "expected_session")')
    click.echo(f"{path.name}: {len(ev.pairs)} labelled posts, tagged by the rules (no curation)")
    click.echo(f"Accuracy: {ev.accuracy:.1%} ({ev.correct} of {len(ev.pairs)})\n")
    click.echo(f"{'session':<20} {'precision':>9} {'recall':>7} {'labelled':>8}")
    stats = ev.per_session()
    order = [s.id for s in config.sessions] + [None]
    for name in order + sorted((n for n in stats if n not in order), key=str):
        if name in stats:
            precision, recall, count = stats[name]
            row = f"{_named(name):<20} {_percent(precision):>9} {_percent(recall):>7} {count:>8}"
            click.echo(row + ("" if name in order else "  (not a session in the programme)"))
    click.echo("\nMost common confusions (expected -> tagged):")
    for (expected, got), count in ev.confusions():
        click.echo(f"  {count:>4}  {_named(expected)} -> {_named(got)}")
    if not ev.confusions():
        click.echo("  none")
    for post_id, expected, d in report.wrong[:10]:
        click.echo(
            f"  wrong: {post_id} expected {_named(expected)}: {_named(d.session_id)}, {d.reason}"
        )
    if report.unlabelled:
        click.echo(f"({report.unlabelled} posts without expected_session: context, not scored.)")


@cli.command("tag")
@click.option("--all", "full", is_flag=True, help="Re-tag every post, not only new ones.")
@click.option("--explain", "post_id", metavar="POST_ID",
              help="Say why a stored post is in its session: every cue, the live session, the "
                   "parent, any correction. Exits 1 if no stored post has this id.")  # fmt: skip
@click.option("--evaluate", "labelled", metavar="FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Score the rules against labelled JSONL (expected_session on each line): "
                   "accuracy, precision and recall, confusions. Changes nothing.")  # fmt: skip
@click.pass_context
def tag_cmd(ctx: click.Context, full: bool, post_id: str | None, labelled: Path | None) -> None:
    """Match each post to a session of the programme (new posts only, unless the programme or the
    curation changed)."""
    if sum(map(bool, (full, post_id, labelled))) > 1:
        raise click.UsageError("use one of --all, --explain and --evaluate at a time")
    config = get_config(ctx)
    if labelled is not None:
        return _echo_evaluation(config, labelled)
    engine = get_engine(config)
    if post_id is not None:
        return _echo_explanation(config, engine, post_id)
    with failures(), writing(config) as engine:
        summary = tag(engine, config, full=full)
    for problem in summary.unmatched:
        click.echo(f"! {config.curation}: {problem}", err=True)
    scope = "all posts (programme or curation changed, or --all)" if summary.full else "new posts"
    curated = f"; {summary.curated} corrected by the curation file" if summary.curated else ""
    click.echo(f"Tagged {summary.tagged} {scope}{curated}.")


def _report(config: Config, engine: Engine) -> dict[str, Path]:
    from aggregator.pipeline import report

    with failures():
        try:
            return report(engine, config)
        except OSError as exc:
            if exc.errno is None:  # not the system's error (jinja2's TemplateNotFound is an OSError)
                raise
            fail(f"cannot write the report into {config.report_output}: {exc.strerror}")


@cli.command("report")
@click.pass_context
def report_cmd(ctx: click.Context) -> None:
    """Write the story (HTML, Markdown and JSON) into [report] output."""
    config = get_config(ctx)
    with failures(), writing(config) as engine:
        files = _report(config, engine)
    for fmt, path in files.items():
        click.echo(f"{fmt}: {path}")


@cli.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "ids"]), default="csv", show_default=True,
              help="csv: one row per post; jsonl: the interchange format, re-importable; ids: platform and id only.")  # fmt: skip
@click.option("--output", "-o", metavar="FILE", default="-", show_default=True,
              help="Where to write; - for standard output.")  # fmt: skip
@click.option("--session", "sessions", metavar="ID", multiple=True,
              help="Only this session (repeatable); 'general' for posts outside every session.")  # fmt: skip
@click.option("--platform", "platforms", metavar="NAME", multiple=True,
              help="Only this platform (repeatable), e.g. mastodon.")  # fmt: skip
@click.option("--since", metavar="WHEN",
              help="Posts from this date or date-time on, e.g. 2016-11-28T13:00: in the event's time zone unless it has an offset (Z, +01:00).")  # fmt: skip
@click.option("--until", metavar="WHEN",
              help="Posts before this date-time; a date alone includes that whole day. Event time zone unless it has an offset.")  # fmt: skip
@click.option("--hashtag", "hashtags", metavar="TAG", multiple=True,
              help="Only posts carrying this hashtag (repeatable; any case, # optional).")  # fmt: skip
@click.option("--pseudonymise", is_flag=True,
              help="Replace accounts, display names and @mentions with keyed pseudonyms (key in $AGGREGATOR_PSEUDONYM_KEY); post URLs are left out.")  # fmt: skip
@click.option("--excel", is_flag=True, help="csv for Excel: UTF-8 with a byte-order mark.")
@click.option("--manifest", is_flag=True,
              help="Also write FILE.manifest.json: event, sources, collection window, counts, gaps, filters, columns.")  # fmt: skip
@click.pass_context
def export_cmd(ctx: click.Context, fmt: str, output: str, manifest: bool, **chosen: Any) -> None:
    """Export posts for researchers (columns: docs/data-dictionary.md); formula-like cells are neutralised."""
    from aggregator.privacy import PrivacyError
    from reports import export as ex

    config = get_config(ctx)
    if manifest and output == "-":
        raise click.BadParameter("a manifest goes beside the export file: add --output FILE", param_hint="--manifest")
    try:
        options = ex.make_options(config, fmt, env=os.environ, **chosen)
    except ex.ExportUsage as exc:
        raise click.BadParameter(str(exc), param_hint=exc.param) from None
    except PrivacyError as exc:
        raise ConfigProblem(str(exc)) from None
    engine = get_engine(config)
    with failures(), _output(output) as out:
        stats, pseudo = ex.export(engine, config, out, options)
    if fmt == "csv" and (warning := ex.spreadsheet_warning(stats.rows)):
        click.echo(f"! {warning}", err=True)
    if output != "-":
        click.echo(f"Exported {stats.rows} posts to {output}.", err=True)
    if manifest:
        data = ex.manifest(engine, config, options, stats, Path(output).name, pseudo)
        try:
            click.echo(f"Manifest: {ex.write_manifest(Path(output), data)}", err=True)
        except OSError as exc:
            fail(f"cannot write the manifest beside {output}: {exc.strerror}")


@cli.command("forget")
@click.argument("account")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def forget_cmd(ctx: click.Context, account: str, yes: bool) -> None:
    """Erase ACCOUNT (as in an export's author column): delete its posts everywhere, remove its handle and name from other posts, and record the erasure without it."""
    from aggregator.privacy import PrivacyError, check_account, forget, pseudonym_key

    config = get_config(ctx)
    try:
        acct = check_account(account)
    except PrivacyError as exc:
        raise click.BadParameter(str(exc), param_hint="ACCOUNT") from None
    try:
        key = pseudonym_key(os.environ, required=False)
    except PrivacyError as exc:
        raise ConfigProblem(str(exc)) from None
    if not yes:
        click.confirm(f"Delete every post by {acct} and remove it from other posts? This cannot be undone", abort=True)
    with failures(), writing(config) as engine:
        done = forget(engine, acct, key)
    hashed = " (only a keyed hash of it)" if done.hashed else ""
    click.echo(f"Forgot {acct}: deleted {done.posts} posts ({done.sightings} sightings, "
               f"{done.assignments} session assignments) and removed it from {done.redacted_posts} other posts. "
               f"The erasure is recorded without the account{hashed}.")
    if acct not in config.privacy.opt_out:
        click.echo(f'Add "{acct}" to [privacy] opt_out in {config.path.name} so it is not collected again.')
    click.echo("Run `aggregator report` to rewrite the story; exports made before now still hold the posts.")


@contextmanager
def _output(output: str) -> Iterator[Any]:
    """stdout for '-'; otherwise a temporary file renamed into place only when complete."""
    if output == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    path = Path(output)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            yield fh
        tmp.replace(path)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror}")
    finally:
        tmp.unlink(missing_ok=True)


@cli.command("run")
@click.pass_context
def run_cmd(ctx: click.Context) -> None:
    """The nightly job: collect, tag, report. Exits 1 if any source failed (the report is still
    written). Ctrl-C (or SIGTERM) stops it after the current page."""
    config = get_config(ctx)
    with failures(), StopFlag().signals() as stop, _progress(ctx) as bar:
        summary = _nightly(config, "run", stop, bar)
    _echo_nightly(summary)
    _exit_if_failed(summary.collected)


@cli.command("schedule")
@click.pass_context
def schedule_cmd(ctx: click.Context) -> None:
    """Run the nightly job on [schedule] cron, in the foreground, until SIGTERM or Ctrl-C (a run
    in progress stops after its current page). See docs/operations.md."""
    from aggregator.scheduler import NightlyScheduler

    config = get_config(ctx)
    stop = StopFlag()
    scheduler = NightlyScheduler(get_engine(config), config,
                                 lambda: _echo_nightly(_nightly(config, "schedule", stop)), stop)  # fmt: skip
    stop.on_stop(scheduler.shutdown)
    click.echo(f"Scheduled {config.schedule_cron!r} ({config.event.timezone.key}): next run "
               f"{scheduler.next_run()}. Stop with Ctrl-C or SIGTERM.", err=True)  # fmt: skip
    with failures(), stop.signals():
        scheduler.run()
    click.echo("Stopped.", err=True)


@cli.command("status")
@click.option("--runs", default=5, show_default=True, help="How many recent runs to show.")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON for scripts (its shape: docs/operations.md).")  # fmt: skip
@click.pass_context
def status_cmd(ctx: click.Context, runs: int, as_json: bool) -> None:
    """Recent runs and each source's health. Exits 1 when the latest run failed, was interrupted
    or was missed."""
    from aggregator.health import format_status, status_report

    config = get_config(ctx)
    engine = get_engine(config)
    with failures():
        report = status_report(engine, config, runs, holder_pid(lock_path(config)))
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        click.echo("\n".join(_printable(line, 1000) for line in format_status(report, config)))
    if not report["ok"]:
        latest = report["runs"][0]
        how = {"failed": "failed"}.get(latest["status"], f"was {latest['status']}")
        fail(f"the latest run ({latest['id']}) {how}: {latest['message']}")


@cli.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def backup_cmd(ctx: click.Context, path: Path) -> None:
    """Copy the SQLite database to PATH (a new file) with VACUUM INTO: a consistent copy, safe
    while a collection writes."""
    from storage.queries import backup

    config = get_config(ctx)
    with failures():
        backup(get_engine(config), path)
    click.echo(f"Backed up to {path} ({path.stat().st_size} bytes).")


def main() -> None:
    cli()
