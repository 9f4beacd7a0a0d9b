"""Commands that look after the data: `status` (run health), `backup` and `forget` (erasure)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from aggregator.cli.app import fail, get_config, get_engine
from aggregator.errors import UsageError
from aggregator.lock import lock_holder
from aggregator.logs import printable
from aggregator.pipeline import writing


@click.command("status")
@click.option("--runs", default=5, show_default=True, help="How many recent runs to show.")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON for scripts (its shape: docs/operations.md).")  # fmt: skip
@click.pass_context
def status_cmd(ctx: click.Context, runs: int, as_json: bool) -> None:
    """Recent runs and each source's health (with [workers] distributed, the workers and their
    jobs too). Exits 1 when the latest run failed, was interrupted or was missed."""
    from aggregator.health import format_status, status_report

    config = get_config(ctx)
    engine = get_engine(config)
    holder = lock_holder(config)  # the file lock's, or PostgreSQL's advisory lock's
    pid, host = (holder.pid, holder.host) if holder else (None, None)
    report = status_report(engine, config, runs, pid, host)
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        click.echo("\n".join(printable(line, 1000) for line in format_status(report, config)))
    if not report["ok"]:
        latest = report["runs"][0]
        how = {"failed": "failed"}.get(latest["status"], f"was {latest['status']}")
        fail(f"the latest run ({latest['id']}) {how}: {latest['message']}")


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def backup_cmd(ctx: click.Context, path: Path) -> None:
    """Copy the SQLite database to PATH (a new file) with VACUUM INTO: a consistent copy, safe
    while a collection writes. SQLite only: back up PostgreSQL with pg_dump."""
    from storage.queries import backup

    config = get_config(ctx)
    engine = get_engine(config)
    if engine.dialect.name != "sqlite":  # nothing to copy here: the server holds the data
        raise UsageError(
            f"backup copies a SQLite database, but [storage] database is {engine.dialect.name}: "
            "back it up with pg_dump (docs/operations.md, 'PostgreSQL')"
        )
    backup(engine, path)
    click.echo(f"Backed up to {path} ({path.stat().st_size} bytes).")


@click.command("forget")
@click.argument("account")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def forget_cmd(ctx: click.Context, account: str, yes: bool) -> None:
    """Erase ACCOUNT (as in an export's author column): delete its posts everywhere, remove its handle and name from other posts, and record the erasure without it."""
    from aggregator.privacy import check_account, forget
    from aggregator.pseudonym import pseudonym_key

    config = get_config(ctx)
    # PrivacyError, a usage error: a value that cannot be an account, or a key too weak
    acct = check_account(account)
    key = pseudonym_key(os.environ, required=False)
    if not yes:
        click.confirm(
            f"Delete every post by {acct} and remove it from other posts? This cannot be undone",
            abort=True,
        )
    with writing(config) as engine:
        done = forget(engine, acct, key)
    hashed = " (only a keyed hash of it)" if done.hashed else ""
    click.echo(
        f"Forgot {acct}: deleted {done.posts} posts ({done.sightings} sightings, "
        f"{done.assignments} session assignments) and removed it from {done.redacted_posts} other posts. "
        f"The erasure is recorded without the account{hashed}."
    )
    if acct not in config.privacy.opt_out:
        click.echo(
            f'Add "{acct}" to [privacy] opt_out in {config.path.name} so it is not collected again.'
        )
    click.echo(
        "Run `aggregator report` to rewrite the story; exports made before now still hold the posts."
    )
