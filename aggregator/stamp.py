"""Which event a database belongs to: the first writing command records the config's `[event] name`
in the `meta` table, so that a config for another event opening the same database (a config.toml
copied beside the first one shares its database and report folder) is warned about. Never prints."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Engine

from storage.db import writer
from storage.models import Meta
from storage.queries import storage_errors, utcnow

__all__ = ["EVENT_KEY", "database_label", "mismatch", "record_event", "recorded_event"]

META = Meta.__table__  # type: ignore[attr-defined]
EVENT_KEY = "event"


def recorded_event(engine: Engine) -> str | None:
    """The event that first wrote to this database, or None if none has yet."""
    with (
        storage_errors("could not read which event the database belongs to"),
        engine.connect() as conn,
    ):
        return conn.execute(select(META.c.value).where(META.c.key == EVENT_KEY)).scalar()


def record_event(engine: Engine, name: str) -> str:
    """Record `name` as the database's event unless one is recorded already; returns the recorded one."""
    with storage_errors("could not record the database's event"), writer(engine).begin() as conn:
        found = conn.execute(select(META.c.value).where(META.c.key == EVENT_KEY)).scalar()
        if found is not None:
            return str(found)
        conn.execute(META.insert().values(key=EVENT_KEY, value=name, updated_at=utcnow()))
        return name


def database_label(engine: Engine) -> str:
    """The database as people know it: a SQLite file's path, else its URL without the password."""
    if engine.dialect.name == "sqlite" and engine.url.database:
        return engine.url.database
    return engine.url.render_as_string(hide_password=True)


def mismatch(engine: Engine, recorded: str | None, event: str) -> str | None:
    """One line saying the database holds another event's posts and how to fix it; None if not."""
    if recorded is None or recorded == event:
        return None
    return (
        f"the database {database_label(engine)} holds the posts of the event {recorded!r}, not "
        f"{event!r}: give the new event its own [storage] database and [report] output, "
        "or put its config.toml in a new folder"
    )
