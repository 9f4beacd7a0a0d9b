"""The tagging stage over the database: incremental, redone when the programme changes, and the
same sessions as the labels say with the event and the example moved to Tokyo (times read back
from the database are UTC, the programme's are Tokyo's)."""

from __future__ import annotations

import json

from sqlalchemy import select

from aggregator.pipeline import collect
from aggregator.tagstage import tag
from storage.db import open_database
from storage.models import Assignment, PostRow
from tests.helpers import EXAMPLE, in_zone


def test_tagging_is_incremental_and_redone_when_the_programme_changes(project):
    config = in_zone(project, "Asia/Tokyo", example=True)
    engine = open_database(config.database_url)
    collect(engine, config)
    first = tag(engine, config)
    assert first.tagged == 400 and not first.full
    with engine.connect() as conn:
        stored = dict(conn.execute(select(PostRow.post_id, Assignment.session_id).join(
            Assignment, Assignment.post_pk == PostRow.id)).all())  # fmt: skip
    labels = [json.loads(line) for line in EXAMPLE.read_text(encoding="utf-8").splitlines()]
    assert stored == {r["id"]: r["expected_session"] for r in labels}
    assert tag(engine, config).tagged == 0
    moved = config.sessions[0].__class__(**{**config.sessions[0].__dict__, "keywords": ("echo",)})
    changed = config.__class__(**{**config.__dict__, "sessions": (moved, *config.sessions[1:])})
    again = tag(engine, changed)
    assert again.full and again.tagged == 400
    with engine.connect() as conn:
        reasons = conn.execute(select(Assignment.reason)).scalars().all()
    engine.dispose()
    assert any("'echo'" in r for r in reasons)
