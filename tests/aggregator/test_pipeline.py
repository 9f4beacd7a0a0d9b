"""Collection runs: every enabled source from its cursor, each failure caught and recorded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from sqlalchemy import select

import connectors
from aggregator.config import SourceConfig
from aggregator.pipeline import collect, import_pages
from connectors.base import ConnectorError, Page, Post
from storage.models import CollectionRun, SourceOutcome
from storage.queries import get_cursor


class Broken:
    def __init__(self, spec, **_):
        self.name = spec.name

    def fetch(self, cursor) -> Iterator[Page]:
        yield Page(
            [Post("test", "keep-1", datetime(2016, 11, 28, 13, tzinfo=UTC), "a", "kept")],
            {"page": 1},
        )
        raise ConnectorError("test source broke after page 1")


def add_source(config, name, type_):
    extra = SourceConfig(name=name, type=type_, enabled=True)
    return config.__class__(**{**config.__dict__, "sources": (*config.sources, extra)})


def test_case_03_one_failing_source_does_not_stop_the_others(engine, config, monkeypatch):
    original = connectors.registry
    monkeypatch.setattr(connectors, "registry", lambda: {**original(), "broken": Broken})
    config = add_source(config, "broken", "broken")
    config = config.__class__(**{**config.__dict__, "sources": tuple(reversed(config.sources))})
    summary = collect(engine, config)
    by_name = {s.name: s for s in summary.sources}
    assert by_name["broken"].status == "failed"
    assert "broke after page 1" in by_name["broken"].error
    assert by_name["broken"].new_posts == 1  # the page before the failure is kept
    assert get_cursor(engine, "broken") == {"page": 1}
    assert by_name["example"].status == "ok" and by_name["example"].new_posts == 400
    with engine.connect() as conn:
        run = conn.execute(select(CollectionRun.__table__)).one()
        outcomes = conn.execute(select(SourceOutcome.__table__)).all()
    assert run.status == "failed" and "broken" in run.message
    assert {o.source: o.status for o in outcomes} == {"broken": "failed", "example": "ok"}


def test_import_keeps_every_page_warning(engine, tmp_path):
    post = Post("test", "warned-1", datetime(2016, 11, 28, 13, tzinfo=UTC), "a", "kept")
    pages = [
        Page([post], None, [], ["first page was recoded"]),
        Page([], None, ["line 9: broken"], ["second page was recoded"]),
    ]
    summary = import_pages(engine, tmp_path / "archive.csv", iter(pages))
    assert summary.warnings == ["first page was recoded", "second page was recoded"]
    assert summary.rejected == ["line 9: broken"] and summary.new_posts == 1
