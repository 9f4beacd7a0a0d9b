"""A night with nothing new costs next to nothing: the nightly job tags and analyses no post again,
leaves the story's files as they were (not rewritten, not even with the same bytes) when nothing
it reads changed, and skips the media archive's pass when the last one left nothing to do. Any
change the story would show, a report file missing or edited, and an explicit `report` write it
again. The fingerprints behind it (storage.inputs) move with every kind of change."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

import reports.render
import reports.story
from aggregator import pipeline
from aggregator.config import Config, load_config
from aggregator.media import MediaSummary
from aggregator.pipeline import NightlySummary, collect, nightly, report, run_nightly, writing
from storage.db import open_database
from storage.inputs import fingerprint, remember, remembered, tables_state
from storage.models import POST_TABLE
from tests.helpers import postgres_database, with_curation

EXAMPLE = Path("examples") / "transformathon-2016.jsonl"
PG_URL = os.environ.get("AGGREGATOR_TEST_POSTGRES_URL", "")


@pytest.fixture
def told(monkeypatch) -> list[Config]:
    """Every story told (reports.story.tell, as pipeline.report calls it), by its config."""
    calls: list[Config] = []
    tell = reports.story.tell

    def counting(engine: Any, config: Config, *args: Any, **kwargs: Any) -> Any:
        calls.append(config)
        return tell(engine, config, *args, **kwargs)

    monkeypatch.setattr(reports.story, "tell", counting)
    return calls


@pytest.fixture
def analysed(monkeypatch) -> list[int]:
    """How many posts each call of pipeline.analyse analysed."""
    counts: list[int] = []
    analyse = pipeline.analyse

    def counting(*args: Any, **kwargs: Any) -> int:
        counts.append(analyse(*args, **kwargs))
        return counts[-1]

    monkeypatch.setattr(pipeline, "analyse", counting)
    return counts


def files_now(done: NightlySummary) -> dict[str, tuple[bytes, int, int]]:
    """Each report file's bytes, inode and modification time: an atomic rewrite changes the inode."""
    out = {}
    for fmt, path in done.files.items():
        stat = path.stat()
        out[fmt] = (path.read_bytes(), stat.st_ino, stat.st_mtime_ns)
    return out


def add_post(project: Path, n: int) -> None:
    """One more line in the example's JSONL file: a post the next run collects."""
    path = project / EXAMPLE
    line = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    line.update(id=f"9900000000{n}", url=f"https://example.org/@late/9900000000{n}",
                text=f"A late thought {n} on co-production #CoPro16")  # fmt: skip
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(line) + "\n")


def test_a_night_with_nothing_new_tags_analyses_and_writes_nothing(
    project, config, told, analysed, monkeypatch
):
    archived: list[Any] = []
    archive_media = pipeline.archive_media
    monkeypatch.setattr(
        pipeline, "archive_media", lambda *a, **k: archived.append(1) or archive_media(*a, **k)
    )
    first = run_nightly(config)
    assert first.tagged is not None and first.tagged.tagged > 0
    assert len(told) == 1 and analysed[-1] > 0 and archived == [1]
    before = files_now(first)

    again = run_nightly(config)
    assert again.collected.new_posts == 0 and again.collected.verdict() == ("ok", None)
    assert again.tagged is not None and again.tagged.tagged == 0  # nothing tagged again
    assert analysed[-1] == 0  # nothing analysed again
    assert len(told) == 1  # no story told ...
    assert again.files == first.files and files_now(again) == before  # ... nor file written
    assert archived == [1] and again.collected.media is None  # the media pass waited for news


Change = Callable[[Path, Config, pytest.MonkeyPatch], Config | None]


def new_post(project: Path, config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    add_post(project, 1)


def public_audience(project: Path, config: Config, monkeypatch: pytest.MonkeyPatch) -> Config:
    cfg = project / "config.toml"
    text = cfg.read_text(encoding="utf-8")
    cfg.write_text(text.replace("[report]\n", '[report]\naudience = "public"\n'), encoding="utf-8")
    return load_config(cfg)


def a_report_file_deleted(project: Path, config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    (config.report_output / "report.md").unlink()


def a_report_file_edited(project: Path, config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    with (config.report_output / "index.html").open("a", encoding="utf-8") as fh:
        fh.write("<!-- edited by hand -->")


def a_template_changed(project: Path, config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reports.render, "templates_digest", lambda: "another template")


def the_source_failing(project: Path, config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / EXAMPLE).rename(project / "moved.jsonl")  # the source now fails: its health shows it


def a_post_deleted_by_its_author(
    project: Path, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = open_database(config.database_url)
    try:  # as storage marks a deletion: with the time it changed
        with engine.begin() as conn:
            first = conn.execute(POST_TABLE.select().limit(1)).first()
            conn.execute(
                update(POST_TABLE).where(POST_TABLE.c.id == first.id)
                .values(deleted_at=pipeline.utcnow(), updated_at=pipeline.utcnow())
            )  # fmt: skip
    finally:
        engine.dispose()


CHANGES = [new_post, public_audience, a_report_file_deleted, a_report_file_edited,
           a_template_changed, the_source_failing, a_post_deleted_by_its_author]  # fmt: skip


@pytest.mark.parametrize("change", CHANGES, ids=[c.__name__ for c in CHANGES])
def test_the_story_is_written_again_when_anything_it_reads_changes(
    project, config, told, change: Change, monkeypatch
):
    run_nightly(config)
    again = run_nightly(change(project, config, monkeypatch) or config)
    assert len(told) == 2
    assert set(again.files) == {"html", "markdown", "json"}
    for path in again.files.values():  # written afresh: whole, as the story says now
        assert path.is_file() and b"edited by hand" not in path.read_bytes()


def test_a_session_note_in_the_curation_file_is_news_for_the_story(project, told):
    notes = '[notes]\nsession-1 = "{}"\n'
    config = with_curation(project, notes.format("The room was full."))
    run_nightly(config)
    config = with_curation(project, notes.format("The room was full, the chat busier."))
    again = run_nightly(config)
    assert len(told) == 2  # the note is not where posts belong: tagging alone would not notice
    assert "the chat busier" in again.files["markdown"].read_text(encoding="utf-8")


def test_report_writes_the_story_whatever_the_fingerprint_says(project, config, told):
    first = run_nightly(config)
    inode = first.files["html"].stat().st_ino
    with writing(config) as engine:
        files = report(engine, config)
    assert len(told) == 2 and files == first.files and files["html"].stat().st_ino != inode
    assert run_nightly(config).files == files and len(told) == 2  # remembered: skipped again


def test_the_media_pass_waits_for_news_once_it_left_nothing_to_do(project, config, monkeypatch):
    passes: list[MediaSummary] = [MediaSummary(waiting=3), MediaSummary(failed=1), MediaSummary()]
    done: list[MediaSummary] = []

    def archive_media(*_a: Any, **_k: Any) -> MediaSummary:
        done.append(passes.pop(0) if passes else MediaSummary(archived=1))
        return done[-1]

    monkeypatch.setattr(pipeline, "archive_media", archive_media)
    with writing(config) as engine:
        assert collect(engine, config).media.waiting == 3  # images left for later: next run too
        assert collect(engine, config).media.failed == 1  # tried again next run
        assert collect(engine, config).media is not None  # nothing left: remembered
        assert collect(engine, config).media is None and len(done) == 3  # skipped
        add_post(project, 2)
        assert collect(engine, config).media.archived == 1 and len(done) == 4  # news: a pass


def test_the_tables_state_moves_with_each_kind_of_change(config):
    engine = open_database(config.database_url)
    try:
        states = []
        with engine.connect() as conn:
            states.append(tables_state(conn))
        collect(engine, config)  # posts
        pipeline.tag(engine, config)  # their sessions
        for step in (lambda: None, lambda: pipeline.analyse(engine)):
            step()
            with engine.connect() as conn:
                states.append(tables_state(conn))
        with engine.connect() as conn:
            again = tables_state(conn)
    finally:
        engine.dispose()
    assert states[0]["post"][0] == 0 and states[1]["post"][0] == 400
    assert states[1]["assignment"][0] == 400 and states[1]["analysis"][0] == 0
    assert states[2]["analysis"][0] == 400 and states[2]["post"] == states[1]["post"]
    assert again == states[2]  # nothing done: the same state
    assert len({fingerprint(s) for s in states}) == 3


def test_what_is_remembered_is_read_back_replaced_and_never_trusted_when_unreadable(config):
    engine = open_database(config.database_url)
    try:
        assert remembered(engine, "report") is None
        remember(engine, "report", {"inputs": "a"})
        remember(engine, "report", {"inputs": "b", "files": {"x": None}})
        assert remembered(engine, "report") == {"inputs": "b", "files": {"x": None}}
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE meta SET value = 'not json' WHERE key = 'report'")
        assert remembered(engine, "report") is None
    finally:
        engine.dispose()


def test_a_fingerprint_is_its_parts_in_any_key_order_and_nothing_else():
    assert fingerprint({"a": 1, "b": 2}) == fingerprint({"b": 2, "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2}) != fingerprint([1])
    assert fingerprint(Path("/x"), os.sep) == fingerprint("/x", os.sep)


@pytest.mark.skipif(not PG_URL, reason="set AGGREGATOR_TEST_POSTGRES_URL to run it on PostgreSQL")
def test_a_night_with_nothing_new_writes_nothing_on_postgresql_too(config, told):
    with postgres_database(PG_URL) as url:
        config = dataclasses.replace(config, database_url=url)
        engine = open_database(url)
        try:
            first = nightly(engine, config)
            again = nightly(engine, config)
            with engine.connect() as conn:
                state = tables_state(conn)
            remember(engine, "probe", {"inputs": "a"})
            remember(engine, "probe", {"inputs": "b"})
            kept = remembered(engine, "probe")
        finally:
            engine.dispose()
    assert first.collected.new_posts == 400 and again.collected.new_posts == 0
    assert len(told) == 1 and again.files == first.files
    assert state["post"][0] == state["assignment"][0] == state["analysis"][0] == 400
    assert kept == {"inputs": "b"}
