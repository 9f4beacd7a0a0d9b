"""`aggregator live` in this process: a Jetstream source against a local replay server stored,
tagged and recorded as `live` runs; the polling sources polled within the programme's hours and
not outside them; the [live] config section."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from aggregator.config import load_config, read_live_settings
from aggregator.live import polling_hours, run_live
from aggregator.pipeline import reading
from aggregator.stop import StopFlag
from connectors import Page
from storage.models import POST_TABLE, Assignment, CollectionRun, SourceOutcome
from tests.jetstream_server import Replay, jetstream, recording

ASSIGNMENTS = Assignment.__table__  # type: ignore[attr-defined]
RUNS = CollectionRun.__table__  # type: ignore[attr-defined]
OUTCOMES = SourceOutcome.__table__  # type: ignore[attr-defined]
LAST = 1_800_000_012_000_000  # the recording's last event
KEPT = {"3lfacet00001", "3ltags000002", "3ltext000003", "3lclose00012"}


def with_sources(project: Path, extra: str, archive: bool = False) -> Path:
    """The project's config with the bundled archive on or off, and `extra` appended."""
    path = project / "config.toml"
    text = path.read_text(encoding="utf-8")
    if not archive:
        text = text.replace('path = "examples/transformathon-2016.jsonl"\nenabled = true',
                            'path = "examples/transformathon-2016.jsonl"\nenabled = false')  # fmt: skip
    path.write_text(text + extra, encoding="utf-8")
    return path


def jetstream_source(url: str) -> str:
    return (
        f'\n[[sources]]\nname = "stream"\ntype = "jetstream"\nurl = "{url}"\nbatch_seconds = 0.2\n'
    )


def test_a_stream_is_stored_tagged_and_recorded_as_live_runs(project: Path) -> None:
    stop = StopFlag()

    def on_page(name: str, page: Page) -> None:
        if page.cursor == {"time_us": LAST}:
            stop.set()

    with jetstream(Replay(recording())) as server:
        config = load_config(with_sources(project, jetstream_source(server.url)))
        done = run_live(config, stop, on_page=on_page)
    assert done.new_posts == 4 and done.rounds == 1 and not done.failed
    with reading(config) as engine, engine.connect() as conn:
        rows = conn.execute(select(POST_TABLE.c.id, POST_TABLE.c.post_id,
                                   POST_TABLE.c.deleted_at)).all()  # fmt: skip
        assert {r.post_id.rsplit("/", 1)[1] for r in rows} == KEPT
        assert [r.post_id[-12:] for r in rows if r.deleted_at] == ["3ltags000002"]
        tagged = conn.execute(select(func.count()).select_from(ASSIGNMENTS)).scalar_one()
        assert tagged == len(rows)  # tagged as they came
        run = conn.execute(select(RUNS).where(RUNS.c.command == "live")).one()
        assert run.status == "ok" and run.message == "stopped on request"
        outcome = conn.execute(select(OUTCOMES).where(OUTCOMES.c.run_id == run.id)).one()
        assert (outcome.source, outcome.status, outcome.new_posts) == ("stream", "ok", 4)
        assert outcome.cursor == {"time_us": LAST}
        assert outcome.rejected == 6  # the recording's hostile messages, quarantined


def test_polling_sources_are_polled_within_the_programme_hours(project: Path) -> None:
    config = load_config(with_sources(project, "", archive=True))
    during = config.sessions[0].start + timedelta(minutes=5)
    stop = StopFlag()
    pages: list[str] = []

    def on_page(name: str, page: Page) -> None:
        pages.append(name)
        stop.set()

    done = run_live(config, stop, on_page=on_page, clock=lambda: during)
    assert pages and done.new_posts > 0 and done.tagged > 0


def test_outside_the_programme_hours_nothing_is_polled_and_it_says_so(project: Path) -> None:
    config = load_config(with_sources(project, "", archive=True))
    after = config.sessions[-1].end + timedelta(minutes=config.live.margin_minutes + 1)
    stop = StopFlag()
    notes: list[str] = []

    def on_note(line: str) -> None:
        notes.append(line)
        stop.set()

    done = run_live(config, stop, on_note=on_note, clock=lambda: after)
    assert notes and notes[0].startswith("outside the programme's hours (± 60 min)")
    assert done.new_posts == 0
    with reading(config) as engine, engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(POST_TABLE)).scalar_one() == 0


def test_the_margin_widens_each_session(project: Path) -> None:
    config = load_config(with_sources(project, "\n[live]\nmargin_minutes = 30\n"))
    first = config.sessions[0]
    assert polling_hours(config, first.start - timedelta(minutes=30))
    assert not polling_hours(config, first.start - timedelta(minutes=31))
    assert polling_hours(config, first.end + timedelta(minutes=29))


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"poll_minutes": 0}, "live.poll_minutes: must be a whole number of minutes, 1 or more"),
        ({"margin_minutes": -5}, "live.margin_minutes: must be a whole number of minutes, 0"),
        ({"poll_minutes": True}, "live.poll_minutes: must be a whole number"),
        ({"every": 5}, "live.every: unknown key (use one of margin_minutes, poll_minutes)"),
        ("often", "live: must be a table"),
    ],
)
def test_live_settings_name_the_bad_key(table: Any, problem: str) -> None:
    _settings, problems = read_live_settings(table)
    assert problems and problems[0].startswith(problem)


def test_live_settings_default_to_five_minutes_and_an_hour_of_margin() -> None:
    settings, problems = read_live_settings(None)
    assert (settings.poll_minutes, settings.margin_minutes, problems) == (5, 60, [])


def test_no_enabled_source_is_one_line(project: Path) -> None:
    from aggregator.errors import UsageError

    config = load_config(with_sources(project, ""))
    with pytest.raises(UsageError, match="no source is enabled"):
        run_live(config, StopFlag(), clock=lambda: datetime(2016, 11, 28, 12, tzinfo=UTC))


def test_the_nightly_collect_catches_a_stream_up_to_now_and_ends(project: Path) -> None:
    from aggregator.pipeline import run_collect

    after = (LAST + 60_000_000) / 1e6  # now: a minute after the recording's last event
    with jetstream(Replay(recording())) as server:
        config = load_config(with_sources(project, jetstream_source(server.url)))
        first = run_collect(config, clock=lambda: after)
        again = run_collect(config, clock=lambda: after)
        assert "cursor" not in server.queries[0]
        assert server.queries[1]["cursor"] == [str(LAST - 5_000_000)]  # rewound five seconds
    (source,) = first.sources
    assert (source.status, source.new_posts, source.cursor) == ("ok", 4, {"time_us": LAST})
    assert (again.sources[0].status, again.sources[0].new_posts) == ("ok", 0)


def test_outside_the_hours_is_said_once_and_every_round_is_recorded(project: Path) -> None:
    config = load_config(with_sources(project, "", archive=True))
    start = config.sessions[-1].end + timedelta(hours=2)
    stop, calls, notes = StopFlag(), iter(range(10**6)), []

    def clock() -> datetime:  # three minutes a reading: a round of five minutes passes quickly
        n = next(calls)
        if n == 40:
            stop.set()
        return start + timedelta(minutes=3 * n)

    done = run_live(config, stop, on_note=notes.append, clock=clock)
    assert len(notes) == 1 and done.rounds >= 3
    with reading(config) as engine, engine.connect() as conn:
        runs = conn.execute(select(RUNS.c.status).where(RUNS.c.command == "live")).all()
    assert len(runs) == done.rounds and {r.status for r in runs} == {"ok"}


def test_the_command_says_in_one_line_that_another_process_writes(project: Path) -> None:
    from aggregator.lock import RunLock, lock_path
    from tests.helpers import invoke

    config = load_config(with_sources(project, "", archive=True))
    with RunLock(lock_path(config)):
        result = invoke(project, "live")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "running" in lines[0], result.output


def test_case_11_the_nightly_catch_up_deletes_a_post_an_earlier_run_stored(project: Path) -> None:
    """The delete comes after the saved cursor and its rewind: only the database knows that the
    post is this source's, and the nightly catch-up asks it."""
    from aggregator.pipeline import run_collect

    def commit(rkey: str, operation: str) -> str:
        wanted = (f'"operation":"{operation}"', f'"rkey":"{rkey}"')
        (found,) = (m for m in recording() if all(w in m for w in wanted))
        return found

    create, delete = commit("3ltags000002", "create"), commit("3ltags000002", "delete")
    other = commit("3lfacet00001", "create")
    start = json.loads(create)["time_us"]
    later = [json.loads(other), json.loads(delete)]
    later[0]["time_us"], later[1]["time_us"] = start + 40_000_000, start + 60_000_000
    first_night = [create, json.dumps(later[0])]
    every = [*first_night, json.dumps(later[1])]
    for messages, now in ((first_night, start + 50_000_000), (every, start + 90_000_000)):
        with jetstream(Replay(messages)) as server:
            config = load_config(with_sources(project, jetstream_source(server.url)))
            night = run_collect(config, clock=lambda now=now: now / 1e6)
            assert night.sources[0].status == "ok"
            if messages is every:  # from the cursor (the other post), rewound five seconds
                assert server.queries[0]["cursor"] == [str(start + 35_000_000)]
        project.joinpath("config.toml").write_text(
            project.joinpath("config.toml")
            .read_text(encoding="utf-8")
            .split('\n[[sources]]\nname = "stream"')[0],
            encoding="utf-8",
        )
    with reading(config) as engine, engine.connect() as conn:
        rows = conn.execute(select(POST_TABLE.c.post_id, POST_TABLE.c.deleted_at)).all()
    deleted = {r.post_id.rsplit("/", 1)[1]: r.deleted_at is not None for r in rows}
    assert deleted == {"3ltags000002": True, "3lfacet00001": False}
