"""The `aggregator` command, the only code that prints or exits.

The group, its global options, the shared helpers and the one place errors become exits are in
`aggregator.cli.app`; the commands live in modules by responsibility and are registered here, one
by one. Each command is a thin layer over the library (aggregator.pipeline): what it runs, a
Python caller can run with the same guarantees (the lock, recovery, alerts, atomic files).
Exit codes: 0 done, 1 failed (a source or step failed; a summary says which), 2 usage or config error.
"""

from __future__ import annotations

from aggregator.cli import admin, collecting, db, live, reporting, tagging, web, worker
from aggregator.cli.app import cli

__all__ = ["cli", "main"]

cli.add_command(collecting.collect_cmd)
cli.add_command(collecting.import_cmd)
cli.add_command(collecting.run_cmd)
cli.add_command(collecting.schedule_cmd)
cli.add_command(tagging.tag_cmd)
cli.add_command(reporting.report_cmd)
cli.add_command(reporting.export_cmd)
cli.add_command(admin.status_cmd)
cli.add_command(admin.backup_cmd)
cli.add_command(admin.forget_cmd)
cli.add_command(live.live_cmd)
cli.add_command(web.serve_cmd)
cli.add_command(worker.worker_cmd)
cli.add_command(db.db_group)


def main() -> None:
    cli()
