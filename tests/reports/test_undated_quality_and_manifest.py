"""Posts with no time (connectors.undated) where the story and exports account for them: the
story's "About this data" says how many there are, and an export's manifest leaves them out of its
collection window (its first and last created_at are real posts' times, never 1970's)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.clock import EventClock
from aggregator.config import load_config
from connectors.base import Page
from connectors.undated import UNDATED
from reports.digest import report_data
from reports.narrative import quality_lines
from reports.story import build_story
from storage.db import open_database
from storage.queries import save_page
from tests.helpers import invoke, make_post

CLOCK = EventClock("Europe/London")
HIDDEN = {"deleted": 0, "excluded": 0, "opted_out": 0, "muted": 0}
FIRST, LAST = datetime(2016, 11, 28, 9, 30, tzinfo=UTC), datetime(2016, 11, 28, 17, 5, tzinfo=UTC)


def undated_line(lines: list[str]) -> list[str]:
    return [line for line in lines if "no time" in line]


@pytest.mark.parametrize(
    ("count", "line"),
    [
        (1, "1 post has no time its source gave that can be read: counted, shown in no part."),
        (2, "2 posts have no time their source gave that can be read: counted, shown in no part."),
        (1200, "1,200 posts have no time their source gave that can be read: counted, shown in no part."),
    ],
)  # fmt: skip
def test_about_this_data_counts_the_posts_with_no_time(count, line):
    lines = quality_lines([], {**HIDDEN, "undated": count}, 0, clock=CLOCK)
    assert undated_line(lines) == [line]


def test_about_this_data_says_nothing_of_time_when_every_post_has_one():
    assert undated_line(quality_lines([], {**HIDDEN, "undated": 0}, 0, clock=CLOCK)) == []
    assert undated_line(quality_lines([], HIDDEN, 0, clock=CLOCK)) == []  # an older caller's counts


def store(project: Path, *posts) -> None:
    config = load_config(project / "config.toml")
    engine = open_database(config.database_url)
    try:
        save_page(engine, "news", Page(list(posts)))
        with engine.connect() as conn:  # what the story is told: the count from the database
            assert report_data(engine, conn, config, {}).hidden["undated"] == sum(
                p.created_at == UNDATED for p in posts
            )
    finally:
        engine.dispose()


def manifest(project: Path, fmt: str) -> dict:
    out = project / f"posts.{fmt}"
    result = invoke(project, "export", "--format", fmt, "-o", str(out), "--manifest")
    assert result.exit_code == 0, result.output
    return json.loads((project / f"posts.{fmt}.manifest.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "ids"])
def test_the_manifest_window_leaves_out_posts_with_no_time(project, fmt):
    store(project, make_post(1, created_at=LAST), make_post(2, created_at=UNDATED),
          make_post(3, created_at=FIRST))  # fmt: skip
    data = manifest(project, fmt)
    assert data["counts"]["posts"] == 3  # counted all the same
    window = data["collection"]
    assert (window["first_created_at"], window["last_created_at"]) == (
        "2016-11-28T09:30:00Z", "2016-11-28T17:05:00Z",
    )  # fmt: skip
    assert window["first_collected_at"] is not None


def test_a_manifest_of_posts_with_no_time_has_no_created_at_window(project):
    store(project, make_post(1, created_at=UNDATED), make_post(2, created_at=UNDATED))
    window = manifest(project, "csv")["collection"]
    assert window["first_created_at"] is None and window["last_created_at"] is None
    assert window["first_collected_at"] is not None and window["last_collected_at"] is not None


def test_the_story_says_how_many_posts_have_no_time(project):
    store(project, make_post(1, created_at=FIRST), make_post(2, created_at=UNDATED))
    config = load_config(project / "config.toml")
    engine = open_database(config.database_url)
    try:
        quality = build_story(engine, config).overview.quality
    finally:
        engine.dispose()
    assert undated_line(quality) == [
        "1 post has no time its source gave that can be read: counted, shown in no part."
    ]
