from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text

from connectors.base import Page, Post
from storage.db import open_database
from storage.models import PostRow, Sighting
from storage.queries import get_cursor, save_page
from tests.helpers import invoke


def make_post(i: int, **kw) -> Post:
    base = Post(
        platform="mastodon",
        id=f"https://example.org/statuses/{i}",
        created_at=datetime(2016, 11, 28, 12, i % 60, tzinfo=UTC),
        author=f"user{i}@example.org",
        text=f"post {i} #CoPro16",
        via="example.org #CoPro16",
    )
    return replace(base, **kw)


def count(engine, model) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar_one()


def test_case_21_every_connection_has_wal_busy_timeout_and_foreign_keys(engine):
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() > 0
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_case_19_same_batch_twice_adds_nothing(engine):
    page = Page([make_post(i) for i in range(50)], cursor={"n": 1})
    first = save_page(engine, "s", page)
    second = save_page(engine, "s", page)
    assert (first.new, second.new, second.updated) == (50, 0, 0)
    assert count(engine, PostRow) == 50
    assert get_cursor(engine, "s") == {"n": 1}


def test_case_11_an_edit_updates_the_one_row_and_keeps_provenance(engine):
    save_page(engine, "s", Page([make_post(1)]))
    edited = make_post(
        1, text="post 1, corrected", edited_at=datetime(2016, 11, 28, 13, tzinfo=UTC)
    )
    saved = save_page(engine, "other", Page([edited]))
    assert (saved.new, saved.updated) == (0, 1)
    with engine.connect() as conn:
        row = conn.execute(select(PostRow.__table__)).one()
    assert row.text == "post 1, corrected"
    assert row.edited_at == datetime(2016, 11, 28, 13, tzinfo=UTC)
    assert row.source == "s"  # the source that first found it


def test_case_12_two_sightings_of_one_post_are_one_row(engine):
    save_page(
        engine,
        "mastodon",
        Page([make_post(1), make_post(1, via="other.example #EveryoneIncluded")]),
    )
    save_page(engine, "mastodon", Page([make_post(1, via="third.example #CoPro16")]))
    assert count(engine, PostRow) == 1
    with engine.connect() as conn:
        vias = sorted(conn.execute(select(Sighting.via)).scalars())
    assert vias == [
        "example.org #CoPro16",
        "other.example #EveryoneIncluded",
        "third.example #CoPro16",
    ]


def test_case_18_posts_and_cursor_are_saved_together_or_not_at_all(engine):
    save_page(engine, "s", Page([make_post(1)], cursor={"page": 1}))
    # A cursor the database cannot store fails the whole page: no posts, no cursor move. (A post
    # it cannot store is quarantined instead: tests/storage/test_storage_hostile.py.)
    bad = {"page": object()}
    with pytest.raises(Exception):  # noqa: B017 - any failure will do; we check what was kept
        save_page(engine, "s", Page([make_post(2)], cursor=bad))
    assert count(engine, PostRow) == 1
    assert get_cursor(engine, "s") == {"page": 1}


def test_database_file_is_sound_after_many_pages(engine, config):
    for n in range(5):
        save_page(engine, "s", Page([make_post(n * 100 + i) for i in range(100)], cursor={"n": n}))
    path = config.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert count(engine, PostRow) == 500


def test_reopening_an_existing_database_keeps_data(config, engine):
    save_page(engine, "s", Page([make_post(1)]))
    again = open_database(config.database_url)
    assert count(again, PostRow) == 1


def test_a_database_from_an_older_version_gains_new_columns(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # the 'assignment' table as the first release made it
        conn.execute(
            "CREATE TABLE assignment (post_pk INTEGER PRIMARY KEY, session_id VARCHAR, score FLOAT,"
            " reason VARCHAR, method VARCHAR, programme VARCHAR, tagged_at DATETIME)"
        )
        conn.execute("INSERT INTO assignment VALUES (1, 's', 1.0, 'r', 'auto', 'p', '2016-11-28')")
        conn.execute(
            "CREATE TABLE sighting (id INTEGER PRIMARY KEY, post_pk INTEGER, source VARCHAR,"
            " via VARCHAR, first_seen DATETIME)"
        )
    engine = open_database(f"sqlite:///{path}")
    with engine.connect() as conn:
        columns = {row[1] for row in conn.execute(text("PRAGMA table_info(assignment)"))}
        kept = conn.execute(text("SELECT session_id FROM assignment")).scalar_one()
    assert {"excluded", "highlight"} <= columns
    assert kept == "s"
    with engine.connect() as conn:  # the older sighting table gained local_id and its index
        sighting = {row[1] for row in conn.execute(text("PRAGMA table_info(sighting)"))}
        indexes = {row[1] for row in conn.execute(text("PRAGMA index_list(sighting)"))}
    assert "local_id" in sighting
    assert any("local_id" in name for name in indexes)
    engine.dispose()


def test_case_11_a_deleted_post_is_marked_stays_deleted_and_leaves_exports(engine, project):
    save_page(engine, "s", Page([make_post(1), make_post(2)]))
    saved = save_page(engine, "s", Page([make_post(1, deleted=True)]))
    assert saved.updated == 1
    again = save_page(engine, "old-archive", Page([make_post(1)]))  # a stale copy without the flag
    assert again.updated == 0
    with engine.connect() as conn:
        deleted = (
            conn.execute(select(PostRow.post_id).where(PostRow.deleted_at.is_not(None)))
            .scalars()
            .all()
        )
    assert deleted == [make_post(1).id]
    result = invoke(project, "export", "-o", "-")
    assert result.exit_code == 0, result.output
    assert make_post(1).id not in result.stdout and make_post(2).id in result.stdout


def test_a_database_that_cannot_be_opened_is_one_line(tmp_path):
    from storage.db import StorageError

    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StorageError) as info:
        open_database(f"sqlite:///{blocker}/inside/posts.db")  # a file where a folder must be
    assert "\n" not in str(info.value) and "cannot create the database folder" in str(info.value)
    with pytest.raises(StorageError, match="not supported"):
        open_database("mysql://u@h/db")
