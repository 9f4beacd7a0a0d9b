from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from aggregator.config import ConfigError, load_config
from aggregator.curation import CurationError, load_curation
from aggregator.pipeline import collect, import_pages, tag
from aggregator.tagging import Decision
from connectors.archives import read_jsonl
from storage.models import Assignment, PostRow
from tests.helpers import ROOT, with_curation

QUOTE = "100000000001000021"  # 'Nothing about us without us', posted during session-3
URL = f"https://example.org/@x/{QUOTE}"


def problems(project: Path, text: str) -> list[str]:
    with pytest.raises(CurationError) as err:
        load_curation(with_curation(project, text))
    return err.value.problems


def stored(engine) -> dict[str, object]:
    cols = (PostRow.post_id, Assignment.session_id, Assignment.method, Assignment.excluded,
            Assignment.highlight, Assignment.reason)  # fmt: skip
    with engine.connect() as conn:
        rows = conn.execute(select(*cols).join(Assignment, Assignment.post_pk == PostRow.id))
        return {r.post_id: r for r in rows}


def test_no_curation_configured_means_no_corrections(config):
    cur = load_curation(config)
    assert cur.entries == () and cur.notes == {} and config.curation is None


def test_the_shipped_example_file_loads(project):
    shutil.copy(ROOT / "examples" / "curation.toml", project / "curation.toml")
    cur = load_curation(with_curation(project, (project / "curation.toml").read_text()))
    assert {e.action for e in cur.entries} == {"assign", "exclude", "highlight"}
    assert set(cur.notes) <= {s.id for s in load_config(project / "config.toml").sessions}
    assert cur.notes


def test_a_named_curation_file_that_is_missing_is_a_config_error(project):
    with_curation(project, "")
    (project / "curation.toml").unlink()
    with pytest.raises(ConfigError) as err:
        load_config(project / "config.toml")
    assert err.value.problems[0].startswith("tagging.curation: file not found:")


def test_every_bad_entry_is_named_by_its_path(project):
    text = """
[[assign]]
id = "1"
session = "session-3"

[[assign]]
id = "2"
session = "session-9"

[[assign]]
url = "https://example.org/x"

[[exclude]]
platform = "mastodon"

[[highlight]]
id = "3"
sesion = "x"

[notes]
session-3 = "Good."
keynote = "?"

[extra]
"""
    found = problems(project, text)
    expected = [
        "extra: unknown table",
        "assign[1].session: unknown session 'session-9' (use one of: panel-opening,",
        "assign[2].session: is required",
        "exclude[0]: name the post by id",
        "highlight[0].sesion: unknown key",
        "notes.keynote: unknown session 'keynote'",
    ]
    assert len(found) == len(expected)
    for problem, start in zip(found, expected, strict=True):
        assert problem.startswith(start), problem


def test_contradictions_are_refused(project):
    text = """
[[assign]]
id = "1"
session = "session-1"
[[assign]]
id = "1"
session = "session-2"
[[exclude]]
id = "2"
[[highlight]]
id = "2"
"""
    assert problems(project, text) == [
        "assign[1]: the same post is already in assign[0]",
        "highlight[0]: cannot highlight the post exclude[0] would exclude",
    ]


def test_not_toml_is_one_clear_problem(project):
    assert problems(project, "[[assign]\n")[0].startswith("not valid TOML")


def test_apply_overrides_only_the_posts_named(project):
    cur = load_curation(
        with_curation(
            project,
            f'[[assign]]\nid = "{QUOTE}"\nsession = "general"\nnote = "off topic"\n'
            f'[[highlight]]\nurl = "{URL}/"\n',
        )
    )
    rules = Decision("session-3", 0.5, "posted during session-3")
    mine = cur.apply("mastodon", QUOTE, URL, rules)
    assert mine.decision.session_id is None and mine.method == "curated" and mine.highlight
    assert (
        mine.decision.reason
        == "organisers' correction (assign[0]: off topic); the rules said session-3"
    )
    other = cur.apply("mastodon", "999", None, rules)
    assert other.decision == rules and other.method == "auto" and not other.entries


def test_platform_narrows_an_id(project):
    cur = load_curation(with_curation(project, '[[exclude]]\nid = "7"\nplatform = "bluesky"\n'))
    assert cur.apply("bluesky", "7", None, Decision(None, 0.3, "")).excluded
    assert not cur.apply("mastodon", "7", None, Decision(None, 0.3, "")).excluded


def test_corrections_survive_retagging_and_recollection(project):
    config = with_curation(
        project,
        f'[[assign]]\nid = "{QUOTE}"\nsession = "session-6"\n'
        '[[exclude]]\nid = "100000000001000241"\n'
        f'[[highlight]]\nurl = "{URL}"\n'
        '[[exclude]]\nid = "no-such-post"\n',
    )
    from storage.db import open_database

    engine = open_database(config.database_url)
    collect(engine, config)
    first = tag(engine, config)
    assert first.curated == 2 and first.unmatched == ["exclude[1] matches no stored post (check its id or url)"]  # fmt: skip
    row = stored(engine)[QUOTE]
    assert (row.session_id, row.method, row.highlight, row.excluded) == ("session-6", "curated", True, False)  # fmt: skip
    assert stored(engine)["100000000001000241"].excluded
    tag(engine, config, full=True)  # re-tagging
    # re-collection: the same posts again, one of them edited since
    edited = project / "again.jsonl"
    lines = (project / "examples" / "transformathon-2016.jsonl").read_text().splitlines()
    edited.write_text("\n".join(x.replace("without us", "without us!") for x in lines))
    assert import_pages(engine, edited, read_jsonl(edited)).updated_posts > 0
    tag(engine, config)
    row = stored(engine)[QUOTE]
    assert (row.session_id, row.method, row.highlight) == ("session-6", "curated", True)
    engine.dispose()


def test_changing_the_curation_retags_everything(project):
    config = with_curation(project, "")
    from storage.db import open_database

    engine = open_database(config.database_url)
    collect(engine, config)
    assert tag(engine, config).full is False
    assert tag(engine, config).tagged == 0
    config = with_curation(project, f'[[exclude]]\nid = "{QUOTE}"\n')
    again = tag(engine, config)
    assert again.full and again.tagged == 400
    assert stored(engine)[QUOTE].excluded
    config = with_curation(project, f'[[exclude]]\nid = "{QUOTE}"\n[notes]\nsession-1 = "Hi"\n')
    assert tag(engine, config).tagged == 0  # a session's note moves no post
    engine.dispose()


def test_a_reply_follows_its_parents_corrected_session(project):
    parent = "100000000001000135"  # three replies in the example
    config = with_curation(project, f'[[assign]]\nid = "{parent}"\nsession = "session-7"\n')
    from storage.db import open_database

    engine = open_database(config.database_url)
    collect(engine, config)
    tag(engine, config)
    replies = [r for r in stored(engine).values() if r.reason.startswith(f"reply to {parent} ")]
    assert replies and all(r.session_id == "session-7" for r in replies)
    engine.dispose()
