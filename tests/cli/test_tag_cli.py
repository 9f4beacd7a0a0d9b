"""`aggregator tag`, `--explain` and `--evaluate` through the real CLI, with the event and the
bundled example moved to Tokyo (the same wall-clock times, nine hours ahead of UTC)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from aggregator.config import load_config
from storage.db import open_database
from storage.models import Assignment, PostRow
from tests.helpers import copy_database, in_zone, invoke, shipped_project

REPLY = "100000000001000192"  # a reply with no cue of its own in the bundled example


@pytest.fixture
def run(project: Path):
    in_zone(project, "Asia/Tokyo", example=True)
    return lambda *args: invoke(project, *args)


@pytest.fixture(scope="module")
def collected_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project in Tokyo with the example collected, once for this module's tests to copy."""
    project = shipped_project(tmp_path_factory.mktemp("tokyo"))
    in_zone(project, "Asia/Tokyo", example=True)
    assert invoke(project, "collect").exit_code == 0
    return project


@pytest.fixture
def collected(project: Path, collected_once: Path) -> None:
    """The project's database: the example collected in Tokyo, not yet tagged."""
    copy_database(collected_once, project)


def assignments(project: Path) -> list[tuple]:
    engine = open_database(load_config(project / "config.toml").database_url)
    cols = (PostRow.post_id, Assignment.session_id, Assignment.score, Assignment.reason,
            Assignment.method, Assignment.excluded, Assignment.highlight)  # fmt: skip
    with engine.connect() as conn:
        rows = conn.execute(select(*cols).join(Assignment, Assignment.post_pk == PostRow.id))
        out = sorted(tuple(r) for r in rows)
    engine.dispose()
    return out


def enable_curation(project: Path, text: str) -> None:
    (project / "curation.toml").write_text(text, encoding="utf-8")
    config = (project / "config.toml").read_text(encoding="utf-8")
    (project / "config.toml").write_text(
        config.replace('# curation = "curation.toml"', 'curation = "curation.toml"'),
        encoding="utf-8",
    )


@pytest.mark.usefixtures("collected")
def test_tag_is_incremental_and_deterministic(run, project):
    first = run("tag")
    assert first.exit_code == 0 and first.output == "Tagged 400 new posts.\n"
    before = assignments(project)
    assert run("tag").output == "Tagged 0 new posts.\n"
    again = run("tag", "--all")
    assert again.output.startswith("Tagged 400 all posts")
    assert assignments(project) == before  # same answers, every time


@pytest.mark.usefixtures("collected")
def test_tag_redoes_everything_when_the_curation_changes(run, project):
    run("tag")
    enable_curation(project, '[[highlight]]\nid = "100000000001000240"\n')
    result = run("tag")
    assert result.exit_code == 0
    assert result.output == (
        "Tagged 400 all posts (programme or curation changed, or --all); "
        "1 corrected by the curation file.\n"
    )
    assert [r[0] for r in assignments(project) if r[6]] == ["100000000001000240"]


@pytest.mark.usefixtures("collected")
def test_a_correction_for_no_stored_post_is_a_warning(run, project):
    enable_curation(project, '[[exclude]]\nid = "404"\n')
    result = run("tag")
    assert result.exit_code == 0
    assert "exclude[0] matches no stored post (check its id or url)" in result.stderr


def test_a_bad_curation_file_exits_2_naming_the_entry(run, project):
    enable_curation(project, '[[assign]]\nid = "1"\nsession = "x"\n')
    result = run("tag")
    assert result.exit_code == 2
    assert "curation.toml: assign[0].session: unknown session 'x'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_missing_curation_file_exits_2(run, project):
    enable_curation(project, "")
    (project / "curation.toml").unlink()
    result = run("tag")
    assert result.exit_code == 2 and "tagging.curation: file not found" in result.stderr


@pytest.mark.usefixtures("collected")
def test_explain_gives_the_decision_and_every_reason(run, project):
    run("tag")
    result = run("tag", "--explain", REPLY)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"mastodon {REPLY} at 2016-11-28 15:15 JST ")  # as the example says
    assert lines[2].startswith("Decision: ") and "reply to " in lines[2]
    assert lines[3] == "Cues: none"
    assert lines[4] == "Live session: session-3 (15:00–16:00)"  # the programme's own times
    assert lines[5].startswith("Reply to: 1000000000010") and ", in " in lines[5]
    assert lines[6] == "Curation: none"
    assert lines[7].startswith("Stored: ") and "auto" in lines[7]


@pytest.mark.usefixtures("collected")
def test_explain_names_cues_their_sessions_and_corrections(run, project):
    enable_curation(project, '[[highlight]]\nid = "100000000001000240"\nnote = "lovely"\n')
    run("tag")
    out = run("tag", "--explain", "100000000001000240").output
    assert "Cues: keyword 'Bradford on Avon' -> session-3; keyword 'Leg Club' -> session-3" in out
    assert "Curation: highlight[0]: highlight (lovely)" in out
    assert "Stored: session-3 (score 1.00, auto, highlight)" in out


@pytest.mark.usefixtures("collected")
def test_explain_before_tagging_says_so(run, project):
    out = run("tag", "--explain", REPLY).output
    assert "Stored: not tagged yet (run `aggregator tag`)" in out


@pytest.mark.usefixtures("collected")
def test_explain_of_an_unknown_id_is_one_line_and_exit_1(run, project):
    result = run("tag", "--explain", "nope")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: no stored post has id 'nope' (check the id, or collect the post first)\n"
    )


def test_explain_never_prints_control_characters(run, project, tmp_path):
    hostile = {"platform": "mastodon", "id": "evil", "created_at": "2016-11-28T15:00:00+09:00",
               "author": "a@example.org", "text": "\x1b[2Jgone\x07 Leg Club", "url": ""}  # fmt: skip
    (tmp_path / "evil.jsonl").write_text(json.dumps(hostile) + "\n")
    run("import", str(tmp_path / "evil.jsonl"))
    out = run("tag", "--explain", "evil").output
    assert "\x1b" not in out and "\x07" not in out and "gone" in out


def test_evaluate_prints_accuracy_precision_recall_and_confusions(run, project):
    result = run("tag", "--evaluate", str(project / "examples" / "transformathon-2016.jsonl"))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "400 labelled posts" in out and "Accuracy: 100.0% (400 of 400)" in out
    assert "session-3" in out and "general" in out and "precision" in out and "recall" in out
    assert "Most common confusions (expected -> tagged):\n  none" in out


def test_evaluate_shows_mistakes(run, project, tmp_path):
    lines = [
        {"platform": "m", "id": "1", "created_at": "2016-11-28T15:10:00+09:00", "author": "a",
         "text": "Leg Club!", "url": "", "expected_session": "session-1"},
        {"platform": "m", "id": "2", "created_at": "2016-11-28T15:20:00+09:00", "author": "a",
         "text": "Agreed", "url": "", "reply_to": "1", "expected_session": "session-1"},
        {"platform": "m", "id": "3", "created_at": "2016-11-28T21:00:00+09:00", "author": "a",
         "text": "Bye", "url": "", "expected_session": None},
        {"platform": "m", "id": "4", "created_at": "2016-11-28T21:00:00+09:00", "author": "a",
         "text": "No label", "url": ""},
    ]  # fmt: skip
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    result = run("tag", "--evaluate", str(labelled))
    assert result.exit_code == 0, result.output
    assert "Accuracy: 33.3% (1 of 3)" in result.output
    assert "     2  session-1 -> session-3" in result.output
    assert "wrong: 1 expected session-1: session-3, keyword 'Leg Club'" in result.output
    assert "(1 posts without expected_session: context, not scored.)" in result.output
    assert "skipped line 5: invalid JSON" in result.stderr


def test_evaluate_without_labels_exits_2(run, project, tmp_path):
    plain = tmp_path / "plain.jsonl"
    plain.write_text('{"platform": "m", "id": "1", "created_at": "2016-11-28T15:10:00Z", '
                     '"author": "a", "text": "x", "url": ""}\n')  # fmt: skip
    result = run("tag", "--evaluate", str(plain))
    assert result.exit_code == 2
    assert 'no labelled posts (each line needs "expected_session")' in result.stderr


def test_evaluate_of_a_missing_file_exits_2(run, project, tmp_path):
    result = run("tag", "--evaluate", str(tmp_path / "nope.jsonl"))
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_one_mode_at_a_time(run, project):
    result = run("tag", "--all", "--explain", "1")
    assert result.exit_code == 2 and "use one of --all, --explain and --evaluate" in result.stderr


def test_a_reply_tagged_before_its_parent_arrives_is_redone_when_it_does(run, project, tmp_path):
    def record(id_: str, minute: int, text: str, reply_to: str | None = None) -> dict:
        return {"platform": "m", "id": id_, "created_at": f"2016-11-28T17:{minute:02d}:00+09:00",
                "author": "a", "text": text, "url": "", "reply_to": reply_to}  # fmt: skip

    (tmp_path / "reply.jsonl").write_text(json.dumps(record("r", 40, "So true", "p")) + "\n")
    (tmp_path / "parent.jsonl").write_text(json.dumps(record("p", 35, "The Leg Club!")) + "\n")
    run("import", str(tmp_path / "reply.jsonl"))
    run("tag")
    assert [r[1] for r in assignments(project) if r[0] == "r"] == ["session-6"]  # live, for now
    run("import", str(tmp_path / "parent.jsonl"))
    assert run("tag").output == "Tagged 2 new posts.\n"  # the parent, and the reply waiting for it
    incremental = assignments(project)
    assert [r[1] for r in incremental if r[0] == "r"] == ["session-3"]
    run("tag", "--all")
    assert assignments(project) == incremental
