"""`aggregator live`: the streaming sources continuously, the polling ones every few minutes."""

from __future__ import annotations

import click

from aggregator.cli.app import get_config, progress
from aggregator.live import run_live
from aggregator.lock import StopFlag


@click.command("live")
@click.pass_context
def live_cmd(ctx: click.Context) -> None:
    """Collect live until SIGTERM or Ctrl-C: streaming sources (Jetstream) as posts are made,
    the others every [live] poll_minutes during the programme's hours ([live] margin_minutes
    around them), tagging new posts as they are stored. Holds the writers' lock while it runs;
    a stop ends it after the current page, and exits 0. See docs/live.md."""
    config = get_config(ctx)
    quiet = ctx.meta.get("aggregator.quiet")
    with StopFlag().signals() as stop, progress(ctx) as bar:
        note = None if bar is None or quiet else (lambda line: click.echo(line, err=True))
        done = run_live(config, stop, on_page=bar, on_note=note)
    if done.failed:  # each was recorded, and a stream started again: the stop is still clean
        failed = ", ".join(dict.fromkeys(done.failed))
        click.echo(f"! failed while live: {failed} (see `aggregator status`)", err=True)
    click.echo(f"Stopped: {done.new_posts} new posts stored, {done.tagged} tagged, "
               f"{done.rounds} rounds recorded.")  # fmt: skip
