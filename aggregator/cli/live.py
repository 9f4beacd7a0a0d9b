"""`aggregator live` (being built)."""

from __future__ import annotations

import click

from aggregator.errors import UsageError


@click.command("live")
def live_cmd() -> None:
    """Not available yet."""
    raise UsageError("aggregator live is not available yet")
