"""`aggregator worker` (being built)."""

from __future__ import annotations

import click

from aggregator.errors import UsageError


@click.command("worker")
def worker_cmd() -> None:
    """Not available yet."""
    raise UsageError("aggregator worker is not available yet")
