"""What `pipeline.analyse` stores for the story (issues 11, 12): the editorial classes, copy keys, text
links, disclosures and roles, once per post, from a bounded prefix; and an older database gaining
the columns it needs."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import select

from aggregator.pipeline import analyse
from connectors.base import Page
from reports.text import ANALYSER, MAX_ANALYSED
from storage.db import open_database
from storage.models import PostAnalysis, PostRow
from storage.queries import save_page
from tests.storyhelp import post

ANALYSIS = PostAnalysis.__table__


def analysed(engine) -> dict[str, dict]:
    posts = PostRow.__table__
    stmt = select(posts.c.post_id, ANALYSIS).join(ANALYSIS, ANALYSIS.c.post_pk == posts.c.id)
    with engine.connect() as conn:
        return {r.post_id: dict(r._mapping) for r in conn.execute(stmt)}


def test_each_post_is_stored_with_its_editorial_classes(engine, config):
    texts = {
        "q": "How do other trusts pay patient partners?",
        "p": "I will bring a carer to our next board meeting",
        "t": "Can anyone else hear an echo on the webex?",
        "low": "🔥🔥🔥 #CoPro16",
        "spam": "Grow your followers fast https://spam.example/deal 50% off",
        "quote": '"Start with what people can do" says Rob Webster',
        "rt": "RT @helen: Start with what people can do https://example.org/a.",
        "sick": "My son was diagnosed with autism at four and CAMHS failed him",
    }
    save_page(engine, "t", Page([post(config, "session-1", n, text, author=f"{k}@example.org")
                                 for n, (k, text) in enumerate(texts.items())]))  # fmt: skip
    assert analyse(engine) == len(texts)
    rows = {pid: rows for pid, rows in analysed(engine).items()}
    by_kind = dict(zip(texts, sorted(rows.values(), key=lambda r: r["post_pk"]), strict=True))
    flags = ("question", "action", "technical", "low_content", "spam", "quote", "repost")
    on = {k: {f for f in flags if r[f]} for k, r in by_kind.items()}
    assert on == {"q": {"question"}, "p": {"action"}, "t": {"technical"}, "low": {"low_content"},
                  "spam": {"spam"}, "quote": {"quote"}, "rt": {"repost"}, "sick": set()}  # fmt: skip
    assert by_kind["quote"]["speaker"] == "Rob Webster"
    assert by_kind["rt"]["links"] == ["https://example.org/a"]
    assert (
        by_kind["sick"]["disclosure"] == "family"
        and "My son" in by_kind["sick"]["disclosure_reason"]
    )
    assert by_kind["low"]["copy_key"] is None and by_kind["q"]["copy_key"]
    assert all(r["analyser"] == ANALYSER for r in rows.values())


def test_the_same_words_have_the_same_copy_key(engine, config):
    save_page(engine, "t", Page([
        post(config, "session-1", 1, "Carers need time and money, not leaflets", author="a@example.org"),
        post(config, "session-1", 2, "RT @a: carers need time and money... NOT leaflets! #CoPro16"),
        post(config, "session-1", 3, "Carers need time, money and leaflets", author="c@example.org"),
    ]))  # fmt: skip
    analyse(engine)
    keys = [r["copy_key"] for r in sorted(analysed(engine).values(), key=lambda r: r["post_pk"])]
    assert keys[0] == keys[1] != keys[2]


@pytest.mark.parametrize(
    "raw",
    [
        {"account": {"note": "<p>Carer for my mum &amp; patient leader</p>"}},  # Mastodon
        {"author": {"username": "x", "description": "Parent carer. Views my own"}},  # X, twarc 2
        {"user": {"screen_name": "x", "description": "Living with MS, carer"}},  # twarc 1
    ],
)
def test_the_authors_role_is_read_from_the_profile_the_source_gives(engine, config, raw):
    weak = "Mum was diagnosed with dementia last year and the memory clinic was a lifeline"
    save_page(engine, "t", Page([post(config, "session-2", 1, weak, raw=raw)]))
    analyse(engine)
    (row,) = analysed(engine).values()
    assert row["role"] == "patient_carer" and row["disclosure"] == "family"


def test_analysis_reads_a_bounded_prefix_of_a_long_post(engine, config):
    filler = "Co-production is a long conversation. " * (MAX_ANALYSED // 38 + 10)
    late = post(
        config, "session-3", 1, filler + " My son was diagnosed with autism", author="l@example.org"
    )
    early = post(
        config,
        "session-3",
        2,
        "My son was diagnosed with autism. " + filler,
        author="e@example.org",
    )
    save_page(engine, "t", Page([late, early]))
    analyse(engine)
    rows = analysed(engine)
    assert rows[early.id]["disclosure"] == "family" and rows[late.id]["disclosure"] is None


def test_an_older_database_gains_the_new_columns_and_is_analysed_again(tmp_path, config):
    path = tmp_path / "old.db"
    engine = open_database(f"sqlite:///{path}")
    save_page(
        engine, "t", Page([post(config, "session-1", 1, "Can anyone hear an echo on the webex?")])
    )
    engine.dispose()
    with sqlite3.connect(path) as db:  # the postanalysis table as the previous version made it
        db.execute("DROP TABLE postanalysis")
        db.execute(
            "CREATE TABLE postanalysis (post_pk INTEGER PRIMARY KEY, terms JSON NOT NULL, "
            "question BOOLEAN NOT NULL, action BOOLEAN NOT NULL, analyser VARCHAR NOT NULL, "
            "analysed_at DATETIME NOT NULL)"
        )
        db.execute("INSERT INTO postanalysis SELECT id, '[]', 1, 0, 'text-2', updated_at FROM post")
        for table in ("alembic_version", "moderationdecision"):  # made before migrations
            db.execute(f"DROP TABLE {table}")
    engine = open_database(f"sqlite:///{path}")  # opening adds what a newer version declares
    try:
        with sqlite3.connect(path) as db:
            columns = {r[1] for r in db.execute("PRAGMA table_info(postanalysis)")}
            flags = db.execute("SELECT technical, spam, copy_key FROM postanalysis").fetchone()
        assert {
            "technical",
            "low_content",
            "spam",
            "copy_key",
            "disclosure",
            "role",
            "links",
        } <= columns
        assert flags == (0, 0, None)  # the old row stays valid until it is analysed again
        assert analyse(engine) == 1  # an older analyser's row is done again
        (row,) = analysed(engine).values()
        assert row["technical"] and not row["question"]
    finally:
        engine.dispose()
