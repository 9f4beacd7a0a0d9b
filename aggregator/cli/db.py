"""`aggregator db` (being built)."""

from __future__ import annotations

import click

from aggregator.errors import UsageError


@click.group("db")
def db_group() -> None:
    """Not available yet."""
    raise UsageError("aggregator db is not available yet")
