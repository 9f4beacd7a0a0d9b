"""Alembic's environment: the revisions run on the connection storage/db.py lends (`config`'s
`connection` attribute), inside its transaction. SQLite alters a table by rebuilding it (batch
mode); storage/db.py turns its foreign keys off around that and checks them before committing."""

from __future__ import annotations

from alembic import context

from storage.migrations import VERSION_TABLE

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("storage/migrations runs through storage.db.upgrade_database, not alone")
context.configure(connection=connection, render_as_batch=True, version_table=VERSION_TABLE)
with context.begin_transaction():  # the lender's transaction: nothing of its own
    context.run_migrations()
