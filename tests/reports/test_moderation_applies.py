"""Moderators' decisions from the wall apply to the story and the exports as the curation file does:
hidden = excluded (out of the story and every export), pinned = highlighted, muted = left out of
the story, a question for the chair = one of its part's questions; a quiet night still leaves the
story's files alone, and a decision since the last story writes it again."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aggregator.config import load_config
from aggregator.pipeline import report
from storage.db import open_database
from storage.moderation import Decision, record
from tests.helpers import invoke, read_csv

LISTS = ("highlights", "questions", "actions", "technical")


@pytest.fixture
def setup(example_loaded):
    config = load_config(example_loaded / "config.toml")
    engine = open_database(config.database_url)
    yield example_loaded, config, engine
    engine.dispose()


def story(engine, config, **options: Any) -> dict:
    return json.loads(report(engine, config, **options)["json"].read_text(encoding="utf-8"))


def part(told: dict, part_id: str) -> dict:
    return next(p for p in told["parts"] if p["id"] == part_id)


def shown(told: dict) -> list[dict]:
    return [post for p in told["parts"] for kind in LISTS for post in p[kind]]


def exported(project, fmt: str) -> set[str]:
    """The ids of the posts an export holds (a reply still names its parent: not counted)."""
    result = invoke(project, "export", "--format", fmt)
    assert result.exit_code == 0, result.output
    if fmt == "jsonl":
        return {json.loads(line)["id"] for line in result.output.splitlines()}
    return {row["post_id"] for row in read_csv(result.output)}


def test_a_hidden_post_leaves_the_story_and_every_export_until_unhidden(setup):
    project, config, engine = setup
    before = story(engine, config)
    chosen = part(before, "session-2")["highlights"][0]["post_id"]
    assert chosen in exported(project, "ids") and chosen in exported(project, "csv")

    record(engine, Decision("hide", "Alice", ("mastodon", chosen)))
    assert chosen not in exported(project, "ids")  # at once, before any tagging
    result = invoke(project, "report")
    assert result.exit_code == 0
    after = json.loads((config.report_output / "story.json").read_text(encoding="utf-8"))
    assert chosen not in {p["post_id"] for p in shown(after)}
    assert part(after, "session-2")["highlights"]  # the rest of the story is still there
    for fmt in ("ids", "csv", "jsonl"):
        assert chosen not in exported(project, fmt)

    record(engine, Decision("unhide", "Alice", ("mastodon", chosen)))
    assert chosen in {p["post_id"] for p in shown(story(engine, config))}
    assert chosen in exported(project, "ids")


def test_a_pinned_post_is_highlighted(setup):
    _, config, engine = setup
    before = story(engine, config)
    listed = {p["post_id"] for p in part(before, "session-3")["highlights"]}
    candidates = [p for p in part(before, "session-3")["questions"] if p["post_id"] not in listed]
    chosen = candidates[-1]["post_id"]
    record(engine, Decision("pin", "Alice", ("mastodon", chosen)))
    highlights = part(story(engine, config), "session-3")["highlights"]
    pinned = [p for p in highlights if p["post_id"] == chosen]
    assert pinned and pinned[0]["pinned"] is True


def test_a_muted_account_leaves_the_story(setup):
    _, config, engine = setup
    author = part(story(engine, config), "session-2")["highlights"][0]["author"]
    record(engine, Decision("mute", "Alice", value=author))
    assert author not in {p["author"] for p in shown(story(engine, config))}


def test_a_question_for_the_chair_is_one_of_its_parts_questions(setup):
    _, config, engine = setup
    before = part(story(engine, config), "session-2")
    chosen = before["highlights"][0]
    assert chosen["post_id"] not in {q["post_id"] for q in before["questions"]}
    record(engine, Decision("question", "Alice", ("mastodon", chosen["post_id"])))
    after = part(story(engine, config), "session-2")
    assert after["questions_total"] == before["questions_total"] + 1
    assert chosen["post_id"] in {q["post_id"] for q in after["questions"]}


def test_a_quiet_night_keeps_the_story_and_a_decision_writes_it_again(setup):
    _, config, engine = setup
    story(engine, config, skip_unchanged=True)
    path = config.report_output / "story.json"
    written = path.stat().st_mtime_ns
    story(engine, config, skip_unchanged=True)
    assert path.stat().st_mtime_ns == written  # nothing new: the files are left as they were
    author = part(json.loads(path.read_text()), "session-2")["highlights"][0]["author"]
    record(engine, Decision("mute", "Alice", value=author))
    after = story(engine, config, skip_unchanged=True)
    assert author not in {p["author"] for p in shown(after)}
