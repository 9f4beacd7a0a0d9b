"""The nightly job archives posts' images after collecting, and a stop during it ends the run."""

from __future__ import annotations

import aggregator.pipeline as pipeline
from aggregator.lock import StopRequested
from aggregator.media import MediaSummary
from aggregator.pipeline import collect


def test_collect_archives_media_after_every_source(config, engine, monkeypatch):
    calls = []

    def fake(engine_, config_, *, should_stop=None):
        calls.append((engine_, config_, should_stop))
        return MediaSummary(archived=2, images=2)

    monkeypatch.setattr(pipeline, "archive_media", fake)
    summary = collect(engine, config)
    assert len(calls) == 1
    assert summary.media is not None and summary.media.archived == 2
    assert summary.sources and all(s.status == "ok" for s in summary.sources)


def test_one_source_collected_alone_leaves_the_archive_for_the_night(config, engine, monkeypatch):
    monkeypatch.setattr(pipeline, "archive_media", lambda *a, **k: MediaSummary(archived=1))
    summary = collect(engine, config, only=config.sources[0].name)
    assert summary.media is None


def test_a_stop_while_archiving_ends_the_run_as_interrupted(config, engine, monkeypatch):
    def stopped(*_a, **_k):
        raise StopRequested("stop requested")

    monkeypatch.setattr(pipeline, "archive_media", stopped)
    summary = collect(engine, config)
    assert summary.stopped and summary.verdict()[0] == "interrupted"
