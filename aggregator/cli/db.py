"""`aggregator db`: the database's schema (`current`, `upgrade`) and moving it to another database
(`copy --to URL`). docs/scaling.md."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from aggregator.cli.app import fail, get_config
from aggregator.errors import UsageError
from aggregator.pipeline import writing
from aggregator.stamp import database_label
from storage import migrations
from storage.copy import BATCH, Counted, OnBatch, copy_database
from storage.db import LEGACY, StorageError, make_engine, open_database, schema_revision


@click.group("db")
def db_group() -> None:
    """The database: its schema version, upgrading it, copying it to another database."""


def _revision_of(url: str) -> str | None:
    engine = make_engine(url)
    try:
        return schema_revision(engine)
    finally:
        engine.dispose()


def _said(revision: str | None) -> str:
    if revision is None:
        return "none (a new database)"
    return "from before migrations" if revision == LEGACY else revision


@db_group.command("current")
@click.pass_context
def current_cmd(ctx: click.Context) -> None:
    """Print the database's schema revision and the one this version needs."""
    config = get_config(ctx)
    revision = _revision_of(config.database_url)
    head = migrations.head()
    if revision == head:
        state = "up to date"
    elif revision not in (None, LEGACY) and not migrations.known(revision):
        state = "made by a newer version of aggregator: install it"
    else:
        state = "behind: run `aggregator db upgrade`"
    click.echo(f"revision: {_said(revision)} (this version needs {head}): {state}")


@db_group.command("upgrade")
@click.pass_context
def upgrade_cmd(ctx: click.Context) -> None:
    """Bring the database to the schema this version needs, under the writers' lock, in one
    transaction (a SQLite file is first copied beside itself, FILE.before-REVISION). Writing
    commands do it too; reading commands refuse an older database."""
    config = get_config(ctx)
    before = _revision_of(config.database_url)
    with writing(config):  # the writers' lock taken and the database upgraded: nothing more
        pass
    head = migrations.head()
    if before == head:
        click.echo(f"Already at revision {head}.")
    else:
        click.echo(f"Upgraded the database from {_said(before)} to revision {head}.")


@contextmanager
def _bars(ctx: click.Context) -> Iterator[OnBatch | None]:
    """A progress bar per table on a terminal; nothing under cron, in a pipe or with --quiet."""
    if ctx.find_root().meta.get("aggregator.quiet") or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=Console(stderr=True)) as bars:
        tasks: dict[str, TaskID] = {}

        def on_batch(table: str, done: int, total: int) -> None:
            if table not in tasks:
                tasks[table] = bars.add_task(table, total=total)
            bars.update(tasks[table], completed=done)

        yield on_batch


def _echo_counts(counts: list[Counted]) -> None:
    width = max((len(c.table) for c in counts), default=5)
    click.echo(f"{'table':<{width}}  {'source':>9}  {'copied':>9}")
    for c in counts:
        mark = "" if c.equal else "  ✗ differs"
        click.echo(f"{c.table:<{width}}  {c.source:>9}  {c.target:>9}{mark}")


@db_group.command("copy")
@click.option("--to", "to_url", required=True, metavar="URL",
              help="The database to copy into (a SQLite path or postgresql+psycopg://…); new or empty.")  # fmt: skip
@click.option("--batch", default=BATCH, show_default=True, type=click.IntRange(min=1),
              help="Rows a transaction.")  # fmt: skip
@click.pass_context
def copy_cmd(ctx: click.Context, to_url: str, batch: int) -> None:
    """Copy the whole database into another one (SQLite to PostgreSQL, or back), in batches,
    under the writers' lock; run it again after an interruption to carry on. Checks each table's
    rows at the end (exit 1 if a count differs). Point [storage] database at the new one after."""
    config = get_config(ctx)
    if "://" not in to_url:  # a path, as [storage] database takes one
        to_url = f"sqlite:///{Path(to_url).resolve()}"
    try:  # the URL's form, before anything runs: a bad one is a usage error
        make_engine(to_url).dispose()
    except StorageError as exc:
        raise UsageError(f"--to: {exc}") from None
    with writing(config) as source:
        target = open_database(to_url)
        try:
            with _bars(ctx) as on_batch:
                counts = copy_database(source, target, batch=batch, on_batch=on_batch)
            where = database_label(target)
        finally:
            target.dispose()
    _echo_counts(counts)
    differ = [c.table for c in counts if not c.equal]
    if differ:
        fail(f"the copy in {where} differs from the source in {', '.join(differ)}: run it again")
    click.echo(f"Copied into {where}: every table's rows counted equal.")
