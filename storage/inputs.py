"""Whether what a step read has changed since it last ran: the state of the tables it reads, as a
few aggregates (rows, the highest id, the latest change), folded with anything else it reads into
one fingerprint, and the fingerprint it last ran on remembered in the `meta` table under the step's
key. The nightly job's media archive and story skip their work when nothing they read changed
(aggregator.pipeline); every other command does its work whatever the fingerprint says.

A post's every change sets its `updated_at` (storage.queries, aggregator.privacy), a deletion
removes its rows, and tagging and analysis stamp what they write (`tagged_at`, `analysed_at`), so
these aggregates move whenever what a story shows could.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.engine import Engine

from storage.db import writer
from storage.models import POST_TABLE, Assignment, Meta, PostAnalysis
from storage.queries import _insert, storage_errors, utcnow

__all__ = ["fingerprint", "posts_state", "remember", "remembered", "tables_state"]

META = Meta.__table__  # type: ignore[attr-defined]
ASSIGNMENTS = Assignment.__table__  # type: ignore[attr-defined]
ANALYSIS = PostAnalysis.__table__  # type: ignore[attr-defined]
POSTS = POST_TABLE


def fingerprint(*parts: Any) -> str:
    """One digest of `parts` (JSON-able; times and paths as their text), the same for equal parts."""
    text = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def posts_state(conn: Connection) -> list[Any]:
    """The posts' rows, highest id and latest change: any post stored, changed or removed moves it."""
    row = conn.execute(
        select(func.count(), func.max(POSTS.c.id), func.max(POSTS.c.updated_at))
    ).one()
    return list(row)


def tables_state(conn: Connection) -> dict[str, list[Any]]:
    """`posts_state`, and the rows and latest write of the session assignments and the analyses."""
    assigned = conn.execute(select(func.count(), func.max(ASSIGNMENTS.c.tagged_at))).one()
    analysed = conn.execute(select(func.count(), func.max(ANALYSIS.c.analysed_at))).one()
    return {"post": posts_state(conn), "assignment": list(assigned), "analysis": list(analysed)}


def remembered(engine: Engine, key: str) -> dict[str, Any] | None:
    """What `remember` kept under `key`; None when nothing (or nothing readable) was."""
    with storage_errors("could not read what the last run remembered"), engine.connect() as conn:
        value = conn.execute(select(META.c.value).where(META.c.key == key)).scalar()
    try:
        found = json.loads(value) if value is not None else None
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def remember(engine: Engine, key: str, value: dict[str, Any]) -> None:
    """Keep `value` (JSON-able) under `key`, replacing what was kept."""
    row = {"key": key, "value": json.dumps(value, sort_keys=True), "updated_at": utcnow()}
    with storage_errors("could not remember what this run did"), writer(engine).begin() as conn:
        stmt = _insert(conn, META).values(row)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["key"],
                set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
            )
        )
