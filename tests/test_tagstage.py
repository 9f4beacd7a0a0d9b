"""The tagging stage over the database: incremental, and redone when the programme changes."""

from __future__ import annotations

from sqlalchemy import select

from aggregator.pipeline import collect
from aggregator.tagstage import tag
from storage.models import Assignment


def test_tagging_is_incremental_and_redone_when_the_programme_changes(engine, config):
    collect(engine, config)
    first = tag(engine, config)
    assert first.tagged == 400 and not first.full
    assert tag(engine, config).tagged == 0
    moved = config.sessions[0].__class__(**{**config.sessions[0].__dict__, "keywords": ("echo",)})
    changed = config.__class__(**{**config.__dict__, "sessions": (moved, *config.sessions[1:])})
    again = tag(engine, changed)
    assert again.full and again.tagged == 400
    with engine.connect() as conn:
        reasons = conn.execute(select(Assignment.reason)).scalars().all()
    assert any("'echo'" in r for r in reasons)
