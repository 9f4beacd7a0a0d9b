"""The same code on PostgreSQL: schema and upgrades, upserts, filters, and the real CLI end to end.

Runs only when AGGREGATOR_TEST_POSTGRES_URL names a server (a role allowed to CREATE DATABASE);
each test gets a new, empty database that is dropped afterwards. .ci/run starts one on 127.0.0.1.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

URL = os.environ.get("AGGREGATOR_TEST_POSTGRES_URL", "")
if not URL:
    pytest.skip(
        "PostgreSQL tests skipped: set AGGREGATOR_TEST_POSTGRES_URL="
        "postgresql+psycopg://USER:PASSWORD@127.0.0.1/DB (a role that may create databases)",
        allow_module_level=True,
    )

from sqlalchemy import func, inspect, select  # noqa: E402
from sqlmodel import SQLModel  # noqa: E402

from connectors.base import Page, Post  # noqa: E402
from storage.db import add_missing_columns, open_database  # noqa: E402
from storage.models import Assignment, Erasure, PostRow, Sighting  # noqa: E402
from storage.queries import (  # noqa: E402
    PostFilter,
    get_cursor,
    iter_posts,
    opted_out_filter,
    save_assignments,
    save_page,
)
from tests.helpers import EXAMPLE, ROOT, invoke, postgres_database  # noqa: E402

POSTS = PostRow.__table__  # type: ignore[attr-defined]
T0 = datetime(2016, 11, 28, 13, 5, tzinfo=UTC)


@pytest.fixture
def pg_url():
    """A new empty database on the test server, dropped (connections and all) afterwards."""
    with postgres_database(URL) as url:
        yield url


@pytest.fixture
def engine(pg_url):
    engine = open_database(pg_url)
    yield engine
    engine.dispose()


def make_project(folder: Path, database: str) -> Path:
    """The shipped config and example in `folder`, with [storage] database set to `database`."""
    folder.mkdir()
    shutil.copytree(ROOT / "examples", folder / "examples")
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    text, n = re.subn(r"(?m)^database = .*$", f"database = {json.dumps(database)}", text)
    assert n == 1
    (folder / "config.toml").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def pg_project(tmp_path, pg_url):
    return make_project(tmp_path / "pg", pg_url)


def post(n: int, **kw) -> Post:
    fields = {"platform": "mastodon", "id": f"https://example.org/{n}",
              "created_at": T0 + timedelta(minutes=n), "author": f"user{n}@example.org",
              "text": f"post {n} #CoPro16", "hashtags": ["CoPro16"]}  # fmt: skip
    return Post(**{**fields, **kw})


def example_rows() -> list[dict]:
    with EXAMPLE.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def test_open_database_creates_every_table_and_adds_missing_columns(pg_url, engine):
    tables = set(inspect(engine).get_table_names())
    assert set(SQLModel.metadata.tables) | {"alembic_version"} <= tables  # made by the migrations
    save_page(engine, "t", Page([post(1)]))
    with engine.connect() as conn:
        pk = conn.execute(select(POSTS.c.id)).scalar_one()
    save_assignments(engine, [{"post_pk": pk, "session_id": "session-1", "score": 1.0, "reason": "r",
                               "method": "auto", "programme": "p", "tagged_at": T0,
                               "excluded": True, "highlight": False}])  # fmt: skip
    with engine.begin() as conn:  # a database from before these columns existed
        conn.exec_driver_sql("ALTER TABLE assignment DROP COLUMN excluded")
        conn.exec_driver_sql("ALTER TABLE sighting DROP COLUMN local_id")  # drops its index too
    engine.dispose()

    assert sorted(add_missing_columns(engine)) == ["assignment.excluded", "sighting.local_id"]
    assert add_missing_columns(engine) == []  # a second open changes nothing
    reopened = open_database(pg_url)
    try:
        inspector = inspect(reopened)
        assert "ix_sighting_local_id" in {i["name"] for i in inspector.get_indexes("sighting")}
        with reopened.connect() as conn:  # the old row takes the server default: not excluded
            assert conn.execute(select(Assignment.excluded)).scalars().all() == [False]
    finally:
        reopened.dispose()


def test_save_page_is_idempotent_and_an_edit_updates_one_row(engine):
    posts = [post(n) for n in range(5)]
    first = save_page(engine, "t", Page(posts, cursor={"since": "5"}))
    assert (first.new, first.updated) == (5, 0)
    with engine.connect() as conn:
        before = {r.post_id: r for r in conn.execute(select(POSTS))}

    again = save_page(engine, "t", Page(posts))
    assert (again.new, again.updated) == (0, 0)
    edited = post(2, text="post 2, edited #CoPro16", edited_at=T0 + timedelta(hours=1))
    changed = save_page(engine, "t", Page([*posts[:2], edited, *posts[3:]]))
    assert (changed.new, changed.updated) == (0, 1)

    with engine.connect() as conn:
        after = {r.post_id: r for r in conn.execute(select(POSTS))}
    assert after.keys() == before.keys()
    differ = [k for k in after if after[k].text != before[k].text]
    assert differ == [edited.id] and after[edited.id].edited_at == edited.edited_at
    assert after[edited.id].id == before[edited.id].id  # updated in place, not re-inserted
    assert get_cursor(engine, "t") == {"since": "5"}


def test_each_place_a_post_is_seen_is_one_sighting(engine):
    one = post(1, via="example.org #CoPro16", local_id="111")
    elsewhere = post(1, via="other.social #CoPro16", local_id="999")
    assert save_page(engine, "m", Page([one, elsewhere])).new == 1
    save_page(engine, "m", Page([one, elsewhere]))  # seen again in both places: nothing new
    save_page(engine, "feed", Page([post(1)]))  # and by another source
    with engine.connect() as conn:
        rows = conn.execute(select(Sighting.source, Sighting.via, Sighting.local_id)).all()
        assert conn.execute(select(func.count()).select_from(POSTS)).scalar_one() == 1
    assert sorted(rows) == [("feed", "", None), ("m", "example.org #CoPro16", "111"),
                            ("m", "other.social #CoPro16", "999")]  # fmt: skip


def test_hashtag_and_opt_out_filters_ignore_case(engine):
    save_page(engine, "t", Page([
        post(1, hashtags=["CoPro16"]), post(2, hashtags=["EveryoneIncluded"]),
        post(3, author="@Carol@Example.ORG", hashtags=["COPRO16"]),
    ]))  # fmt: skip
    with engine.connect() as conn:
        tagged = [r.post_id for r in iter_posts(conn, filters=PostFilter(hashtags=("copro16",)))]
        kept = [
            r.post_id for r in iter_posts(conn, filters=opted_out_filter(["carol@example.org"]))
        ]
    assert tagged == [post(1).id, post(3).id]
    assert kept == [post(1).id, post(2).id]


def test_run_on_the_example_tells_the_same_story_as_sqlite(tmp_path, pg_project, monkeypatch):
    sqlite_project = make_project(tmp_path / "sqlite", "data/aggregator.db")
    for project in (pg_project, sqlite_project):  # an opted-out account, written in another case
        config = project / "config.toml"
        config.write_text(
            config.read_text().replace("opt_out = []", 'opt_out = ["@User4@Example.org"]')
        )
    assert invoke(sqlite_project, "run").exit_code == 0
    monkeypatch.setenv(
        "PGTZ", "Pacific/Auckland"
    )  # per-minute activity must be UTC whatever the session zone
    result = invoke(pg_project, "run")
    assert result.exit_code == 0, result.output

    stories = [
        json.loads((p / "site" / "story.json").read_text()) for p in (pg_project, sqlite_project)
    ]
    ids = [p["id"] for p in stories[0]["parts"]]
    assert ids[1:-1] == re.findall(r'(?m)^id = "([^"]+)"', (ROOT / "config.toml").read_text())
    assert len(ids) == 11 and all(p["posts"] for p in stories[0]["parts"][1:-1])
    for story in stories:  # when it was written and the run times differ; nothing else may
        story.pop("generated_at")
        story["overview"].pop("sources")
        quality = story["overview"]["quality"]
        quality[:] = [
            re.sub(r"last collected [^)]*\)", "last collected (when))", q) for q in quality
        ]
    assert stories[0] == stories[1]
    assert "user4@example.org" not in json.dumps(stories[0]).lower()


def test_export_csv_filters_by_hashtag_and_since(pg_project):
    assert invoke(pg_project, "run").exit_code == 0
    out = pg_project / "posts.csv"
    result = invoke(pg_project, "export", "--hashtag", "#EVERYONEincluded", "--since",
                    "2016-11-28T15:00", "-o", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    since = datetime(2016, 11, 28, 15, tzinfo=UTC)  # the event's zone is UTC in November
    expected = {r["id"] for r in example_rows() if "#everyoneincluded" in r["text"].lower()
                and datetime.fromisoformat(r["created_at"].replace("Z", "+00:00")) >= since}  # fmt: skip
    assert 0 < len(expected) < 400
    assert {r["post_id"] for r in rows} == expected
    assert f"Exported {len(expected)} posts" in result.output


def test_forget_erases_an_account_and_its_mentions(pg_project, pg_url):
    assert invoke(pg_project, "run").exit_code == 0
    theirs = sum(r["author"] == "user185@example.org" for r in example_rows())
    engine = open_database(pg_url)
    try:
        mention = post(900, author="other@example.org", text="thanks @user185@example.org #CoPro16")
        save_page(engine, "t", Page([mention]))
        result = invoke(pg_project, "forget", "--yes", "User185@Example.ORG")
        assert result.exit_code == 0, result.output
        assert f"deleted {theirs} posts" in result.output
        with engine.connect() as conn:
            authors = conn.execute(select(func.lower(POSTS.c.author))).scalars().all()
            text = conn.execute(
                select(POSTS.c.text).where(POSTS.c.post_id == mention.id)
            ).scalar_one()
            erasures = conn.execute(select(Erasure.posts, Erasure.redacted_posts)).all()
    finally:
        engine.dispose()
    assert theirs > 0 and "user185@example.org" not in authors
    assert "user185" not in text.lower()
    assert erasures == [(theirs, 1)]


def test_tag_explain_says_why_a_stored_post_is_in_its_session(pg_project):
    assert invoke(pg_project, "run").exit_code == 0
    row = next(r for r in example_rows() if r["expected_session"] == "session-1")
    result = invoke(pg_project, "tag", "--explain", row["id"])
    assert result.exit_code == 0, result.output
    assert "Decision: session-1" in result.output
    assert invoke(pg_project, "tag", "--explain", "no-such-post").exit_code == 1


def test_backup_on_postgresql_points_to_pg_dump(pg_project, tmp_path):
    result = invoke(pg_project, "backup", str(tmp_path / "copy.db"))
    assert result.exit_code == 2
    assert "pg_dump" in result.output and result.output.count("\n") == 1
    assert not (tmp_path / "copy.db").exists()
