"""Commands that bring posts in: `collect`, `import`, and the nightly job (`run`, `schedule`)."""

from __future__ import annotations

from pathlib import Path

import click

from aggregator.cli.app import fail, get_config, get_engine, progress
from aggregator.config import Config
from aggregator.lock import StopFlag
from aggregator.pipeline import (
    IMPORT_FORMATS,
    CollectSummary,
    NightlySummary,
    OnPage,
    import_file,
    run_collect,
    run_nightly,
)


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


SHOW_SKIPPED = 20  # skipped lines listed one by one; past that, a count


@click.command("collect")
@click.option("--source", metavar="NAME", help="Collect only this source (even if disabled).")
@click.pass_context
def collect_cmd(ctx: click.Context, source: str | None) -> None:
    """Fetch new posts from every enabled source into the database. Ctrl-C (or SIGTERM) stops it
    after the current page."""
    config = get_config(ctx)
    with StopFlag().signals() as stop, progress(ctx) as bar:
        summary = run_collect(config, only=source, on_page=bar, should_stop=stop)
    _echo_collect(summary)
    _exit_if_failed(summary)


def _echo_nightly(summary: NightlySummary) -> None:
    _echo_collect(summary.collected)
    if summary.tagged is not None:
        click.echo(f"Tagged {summary.tagged.tagged} posts.")
    if "html" in summary.files:
        click.echo(f"Report: {summary.files['html']}")


@click.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(IMPORT_FORMATS), default="jsonl", show_default=True,
              help="The archive's format.")  # fmt: skip
@click.pass_context
def import_cmd(ctx: click.Context, path: Path, fmt: str) -> None:
    """Load an archive file (our JSONL, twarc, or a TAGS CSV) into the database."""
    summary = import_file(get_config(ctx), path, fmt)
    for reason in summary.rejected[:SHOW_SKIPPED]:
        click.echo(f"! {path.name}: skipped {reason}", err=True)
    if len(summary.rejected) > SHOW_SKIPPED:
        click.echo(
            f"! {path.name}: … and {len(summary.rejected) - SHOW_SKIPPED} more lines skipped",
            err=True,
        )
    for warning in dict.fromkeys(summary.warnings):  # a warning repeated on every page is said once
        click.echo(f"! {path.name}: {warning}", err=True)
    if summary.failed:
        fail(
            f"no post could be read from {path.name}: every line was skipped (is it --format {fmt}?)"
        )
    opted = f", {summary.opted_out} not stored (opted out)" if summary.opted_out else ""
    click.echo(f"Imported {path.name}: {summary.new_posts} new, {summary.updated_posts} updated, "
               f"{len(summary.rejected)} skipped{opted}.")  # fmt: skip


def _nightly(
    config: Config, command: str, stop: StopFlag, on_page: OnPage | None = None
) -> NightlySummary:
    """The nightly job here, or with [workers] distributed, its sources collected by
    `aggregator worker` processes while this one waits (docs/scaling.md)."""
    if config.workers.distributed:
        from aggregator.distributed import run_distributed

        return run_distributed(config, command=command, should_stop=stop)
    return run_nightly(config, command=command, on_page=on_page, should_stop=stop)


@click.command("run")
@click.pass_context
def run_cmd(ctx: click.Context) -> None:
    """The nightly job: collect, tag, report. Exits 1 if any source failed (the report is still
    written). Ctrl-C (or SIGTERM) stops it after the current page. With [workers] distributed,
    `aggregator worker` processes collect the sources."""
    config = get_config(ctx)
    with StopFlag().signals() as stop, progress(ctx) as bar:
        summary = _nightly(config, "run", stop, on_page=bar)
    _echo_nightly(summary)
    _exit_if_failed(summary.collected)


@click.command("schedule")
@click.pass_context
def schedule_cmd(ctx: click.Context) -> None:
    """Run the nightly job on [schedule] cron, in the foreground, until SIGTERM or Ctrl-C (a run
    in progress stops after its current page). See docs/operations.md."""
    from aggregator.scheduler import NightlyScheduler

    config = get_config(ctx)
    stop = StopFlag()

    def job() -> None:  # each night: what `run` does, recorded as a `schedule` run
        _echo_nightly(_nightly(config, "schedule", stop))

    scheduler = NightlyScheduler(get_engine(config), config, job, stop)
    stop.on_stop(scheduler.shutdown)
    click.echo(f"Scheduled {config.schedule_cron!r} ({config.event.timezone.key}): next run "
               f"{scheduler.next_run()}. Stop with Ctrl-C or SIGTERM.", err=True)  # fmt: skip
    with stop.signals():
        scheduler.run()
    click.echo("Stopped.", err=True)
