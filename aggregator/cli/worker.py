"""`aggregator worker`: runs the nightly job's collection jobs on PostgreSQL (docs/scaling.md)."""

from __future__ import annotations

import click

from aggregator.cli.app import get_config


@click.command("worker")
@click.option("--concurrency", type=click.IntRange(min=1), default=None, metavar="N",
              help="Jobs run at once (default: [workers] concurrency).")  # fmt: skip
@click.pass_context
def worker_cmd(ctx: click.Context, concurrency: int | None) -> None:
    """Collect the sources `aggregator run` queues, with [workers] distributed = true on
    PostgreSQL; run it on as many machines as you like. Runs until SIGTERM or Ctrl-C (the jobs
    running finish first); a worker killed mid-job has its job finished by another."""
    from aggregator.distributed import run_worker

    run_worker(get_config(ctx), concurrency)
