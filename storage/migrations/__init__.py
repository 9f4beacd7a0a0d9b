"""Alembic migrations for SQLite and PostgreSQL, configured here in code: users need no alembic.ini.

`env.py` runs the revisions in `versions/` on the connection it is lent (`config(connection)`),
inside the caller's transaction; storage/db.py decides when (docs/scaling.md, "Migrations").
Revisions are written by hand as explicit operations (the baseline is the schema of the last
release without migrations), so none drifts when the models change; a test compares the schema
they build with the models on both backends, so a model change without a revision fails it.

A new revision: make its file from script.py.mako, then write its operations by hand
(tests/storage/test_migrations.py lists, as Alembic operations, what the models have that the
revisions do not build):

    python -c "from alembic import command; from storage import migrations; \\
               command.revision(migrations.config(), 'what changes', rev_id='0003')"
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

__all__ = [
    "BASELINE",
    "FOREIGN_TABLES",
    "VERSION_TABLE",
    "config",
    "head",
    "is_foreign",
    "known",
    "scripts",
]

FOLDER = Path(__file__).parent
BASELINE = "0001"  # the schema of the release before migrations (8343dd1)
VERSION_TABLE = "alembic_version"
# Tables in the same database that other software keeps (Procrastinate's queue): never compared
# with the models, never copied by `db copy`.
FOREIGN_TABLES = ("procrastinate_",)


def config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for this package: the scripts here, and the connection the
    migrations run on, inside its transaction."""
    cfg = Config()
    cfg.set_main_option("script_location", str(FOLDER))
    cfg.set_main_option("file_template", "v%%(rev)s_%%(slug)s")  # a module name mypy accepts
    cfg.attributes["connection"] = connection
    return cfg


@cache
def scripts() -> ScriptDirectory:
    """The revisions, read once per process."""
    return ScriptDirectory.from_config(config())


def head() -> str:
    """The revision this version of the code needs."""
    found = scripts().get_current_head()
    assert found is not None, "storage/migrations/versions holds no revision"
    return found


def known(revision: str) -> bool:
    """Whether `revision` is one of ours (False: a newer version made the database)."""
    return revision in {script.revision for script in scripts().walk_revisions()}


def is_foreign(table: str) -> bool:
    """A table another program keeps in the same database."""
    return table.startswith(FOREIGN_TABLES)
