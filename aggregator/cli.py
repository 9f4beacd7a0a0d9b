"""The `aggregator` command. The only module that prints or exits.

Exit codes: 0 done, 1 failed (a source or step failed; a summary says which), 2 usage or config error.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, NoReturn

import click
from sqlalchemy.engine import Engine

from aggregator import __version__
from aggregator.config import Config, ConfigError, load_config, resolve_config_path
from aggregator.pipeline import CollectSummary, collect, import_pages, tag
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
    raise Failed(message)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help="The event's config file. [default: $AGGREGATOR_CONFIG, else ./config.toml]",
)
@click.version_option(__version__, prog_name="aggregator")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Collect an event's hashtag posts, tag them to the programme's sessions, and tell the story."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = resolve_config_path(config_path)


def get_config(ctx: click.Context) -> Config:
    try:
        return load_config(ctx.find_root().obj)
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
    except (StorageError, ConnectorError) as exc:
        fail(str(exc))


def _echo_collect(summary: CollectSummary) -> None:
    for s in summary.sources:
        if s.status == "failed":
            click.echo(f"✗ {s.name}: {s.error}", err=True)
            continue
        extra = f", {len(s.rejected)} skipped" if s.rejected else ""
        updated = f", {s.updated_posts} updated" if s.updated_posts else ""
        click.echo(f"✓ {s.name}: {s.new_posts} new{updated}{extra} ({s.pages} pages)")
        for warning in s.warnings:
            click.echo(f"! {s.name}: {warning}", err=True)
    if not summary.sources:
        click.echo("No sources are enabled: set enabled = true on a [[sources]] table.", err=True)


def _progress() -> Any:
    """Per-page progress on a terminal; nothing under cron or in a pipe."""
    if not sys.stderr.isatty():
        return None

    def on_page(name: str, page: Any) -> None:
        click.echo(f"\r{name}: +{len(page.posts)} posts", err=True, nl=False)

    return on_page


def _collect(
    ctx: click.Context, source: str | None, command: str
) -> tuple[Config, Engine, CollectSummary]:
    config = get_config(ctx)
    if source and config.source(source) is None:
        names = ", ".join(s.name for s in config.sources) or "none"
        raise click.BadParameter(
            f"no source named {source!r} (configured: {names})", param_hint="--source"
        )
    engine = get_engine(config)
    with failures():
        summary = collect(engine, config, only=source, on_page=_progress(), command=command)
    if sys.stderr.isatty():
        click.echo("\r", err=True, nl=False)
    _echo_collect(summary)
    return config, engine, summary


def _exit_if_failed(summary: CollectSummary) -> None:
    if summary.failed:
        fail(f"{len(summary.failed)} source(s) failed: {', '.join(s.name for s in summary.failed)}")


@cli.command("collect")
@click.option("--source", metavar="NAME", help="Collect only this source (even if disabled).")
@click.pass_context
def collect_cmd(ctx: click.Context, source: str | None) -> None:
    """Fetch new posts from every enabled source into the database."""
    _, _, summary = _collect(ctx, source, "collect")
    _exit_if_failed(summary)


@cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(IMPORT_FORMATS), default="jsonl", show_default=True,
              help="The archive's format.")  # fmt: skip
@click.pass_context
def import_cmd(ctx: click.Context, path: Path, fmt: str) -> None:
    """Load an archive file (our JSONL, twarc, or a TAGS CSV) into the database."""
    config = get_config(ctx)
    engine = get_engine(config)
    with failures():
        summary = import_pages(engine, path, _reader(fmt)(path))
    for reason in summary.rejected:
        click.echo(f"! {path.name}: skipped {reason}", err=True)
    click.echo(f"Imported {path.name}: {summary.new_posts} new, {summary.updated_posts} updated, "
               f"{len(summary.rejected)} skipped.")  # fmt: skip


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


@cli.command("tag")
@click.option("--all", "full", is_flag=True, help="Re-tag every post, not only new ones.")
@click.pass_context
def tag_cmd(ctx: click.Context, full: bool) -> None:
    """Match each post to a session of the programme (new posts only, unless the programme changed)."""
    config = get_config(ctx)
    engine = get_engine(config)
    with failures():
        summary = tag(engine, config, full=full)
    scope = "all posts (programme changed or --all)" if summary.full else "new posts"
    click.echo(f"Tagged {summary.tagged} {scope}.")


def _report(config: Config, engine: Engine) -> dict[str, Path]:
    from reports.render import write_report
    from reports.story import build_story

    with failures():
        return write_report(build_story(engine, config), config.report_output)


@cli.command("report")
@click.pass_context
def report_cmd(ctx: click.Context) -> None:
    """Write the story (HTML and Markdown) into [report] output."""
    config = get_config(ctx)
    for fmt, path in _report(config, get_engine(config)).items():
        click.echo(f"{fmt}: {path}")


@cli.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv"]), default="csv", show_default=True)
@click.option("--output", "-o", metavar="FILE", default="-", show_default=True,
              help="Where to write; - for standard output.")  # fmt: skip
@click.pass_context
def export_cmd(ctx: click.Context, fmt: str, output: str) -> None:
    """Export every post, one row per post, for researchers."""
    from reports.export import export_csv

    config = get_config(ctx)
    engine = get_engine(config)
    with failures(), _output(output) as out:
        count = export_csv(engine, out)
    if output != "-":
        click.echo(f"Exported {count} posts to {output}.", err=True)


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
    """The nightly job: collect, tag, report. Exits 1 if any source failed (the report is still written)."""
    config, engine, summary = _collect(ctx, None, "run")
    with failures():
        tagged = tag(engine, config)
    click.echo(f"Tagged {tagged.tagged} posts.")
    files = _report(config, engine)
    click.echo(f"Report: {files['html']}")
    _exit_if_failed(summary)


@cli.command("status")
@click.option("--runs", default=5, show_default=True, help="How many recent runs to show.")
@click.pass_context
def status_cmd(ctx: click.Context, runs: int) -> None:
    """Recent runs and what each source did. Exits 1 when the latest run failed."""
    from storage.queries import post_count, recent_runs

    config = get_config(ctx)
    engine = get_engine(config)
    history = recent_runs(engine, runs)
    click.echo(
        f"{config.event.name}: {post_count(engine)} posts stored in {engine.url.render_as_string()}"
    )
    if not history:
        click.echo("No runs yet: try `aggregator run`.")
        return
    for run, outcomes in history:
        when = run.started_at.strftime("%Y-%m-%d %H:%M UTC")
        click.echo(f"run {run.id} ({run.command}) {when}: {run.status}")
        for o in outcomes:
            detail = (
                f"error: {o.error}"
                if o.error
                else f"{o.new_posts} new, {o.pages} pages, {o.waits} waits"
            )
            click.echo(f"  {o.source}: {o.status}, {detail}")
    if history[0][0].status == "failed":
        fail(f"the latest run ({history[0][0].id}) failed: {history[0][0].message}")


def main() -> None:
    cli()
