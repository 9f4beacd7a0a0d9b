"""`aggregator serve` (being built)."""

from __future__ import annotations

import click

from aggregator.errors import UsageError


@click.command("serve")
def serve_cmd() -> None:
    """Not available yet."""
    raise UsageError("aggregator serve is not available yet")
