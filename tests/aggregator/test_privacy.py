"""People's choices: opt-out (collection, import, exports, reports), the redactor, forget."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from sqlalchemy import func, select

from aggregator.config import load_config
from aggregator.privacy import REMOVED, Redactor
from aggregator.pseudonym import Pseudonymiser
from connectors.archives import post_from_interchange
from connectors.base import Page
from storage.db import open_database
from storage.models import Assignment, Erasure, PostRow, Sighting
from storage.queries import iter_posts, opted_out_filter, save_page
from tests.helpers import (
    ALICE,
    EXAMPLE,
    KEY,
    MASTODON_REPLY,
    PEOPLE,
    invoke,
    read_csv,
    with_opt_out,
    write_jsonl,
)


def busiest_example_author() -> tuple[str, int]:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    return Counter(json.loads(line)["author"] for line in lines).most_common(1)[0]


def test_opted_out_accounts_are_not_collected(project):
    author, posts = busiest_example_author()
    config = with_opt_out(project, "@" + author.upper())
    result = invoke(project, "collect", "--source", "example")
    assert result.exit_code == 0
    assert f"{posts} not stored (opted out)" in result.output
    engine = open_database(config.database_url)
    with engine.connect() as conn:
        authors = set(conn.execute(select(PostRow.author)).scalars())
    engine.dispose()
    assert author not in authors and len(authors) > 1


def test_an_import_leaves_them_out_and_removes_their_handle(project):
    config = with_opt_out(project, ALICE)
    result = invoke(project, "import", str(write_jsonl(project / "people.jsonl", PEOPLE)))
    assert "1 not stored (opted out)" in result.output
    engine = open_database(config.database_url)
    with engine.connect() as conn:
        rows = {r.author: r for r in conn.execute(select(PostRow.__table__))}
    engine.dispose()
    assert ALICE not in rows
    bob = rows["bob@mastodon.online"]
    assert "@alice" not in bob.text and f"@{REMOVED}" in bob.text and bob.mentions == []
    assert "alice" not in bob.reply_to and "alice" not in json.dumps(bob.raw)


def test_case_34_exports_and_reports_leave_out_accounts_opted_out_after_collection(loaded):
    project = loaded
    save_page(
        open_database(load_config(project / "config.toml").database_url),
        "live",
        Page([MASTODON_REPLY]),
    )
    config = with_opt_out(project, ALICE)
    for fmt in ("csv", "jsonl", "ids"):
        output = invoke(project, "export", "--format", fmt).stdout
        assert "alice" not in output.lower() and "bob" in output, fmt
    rows = read_csv(invoke(project, "export").stdout)
    assert all(REMOVED in r["text"] for r in rows if r["author"] == "bob@mastodon.online")
    engine = open_database(config.database_url)
    with engine.connect() as conn:
        shown = {
            r.author for r in iter_posts(conn, filters=opted_out_filter(config.privacy.opt_out))
        }
        everyone = {r.author for r in iter_posts(conn)}
    engine.dispose()
    assert everyone - shown == {ALICE}


def counts(engine):
    with engine.connect() as conn:
        mine = select(PostRow.id).where(PostRow.author == ALICE).scalar_subquery()
        return (
            conn.execute(select(func.count()).select_from(PostRow).where(PostRow.author == ALICE)).scalar(),
            conn.execute(select(func.count()).select_from(Sighting).where(Sighting.post_pk.in_(mine))).scalar(),
            conn.execute(select(func.count()).select_from(Assignment).where(Assignment.post_pk.in_(mine))).scalar(),
        )  # fmt: skip


def dump(engine) -> str:
    raw = engine.raw_connection()
    try:
        return "\n".join(raw.driver_connection.iterdump())
    finally:
        raw.close()


def test_forget_erases_a_person_everywhere_and_keeps_only_counts(loaded):
    project = loaded
    config = load_config(project / "config.toml")
    engine = open_database(config.database_url)
    save_page(engine, "live", Page([MASTODON_REPLY]))
    save_page(engine, "again", Page([post_from_interchange(PEOPLE[0])]))  # a second sighting
    assert invoke(project, "tag").exit_code == 0
    before = counts(engine)
    assert before == (1, 2, 1) and "alice" in dump(engine).lower()
    result = invoke(
        project, "forget", "@Alice@Mastodon.Social", "--yes", env={"AGGREGATOR_PSEUDONYM_KEY": None}
    )
    assert result.exit_code == 0, result.output
    assert "deleted 1 posts (2 sightings, 1 session assignments)" in result.output
    assert "opt_out" in result.output and "aggregator report" in result.output
    everything = dump(engine).lower()
    assert counts(engine) == (0, 0, 0)
    assert "alice" not in everything and "alice smith" not in everything
    with engine.connect() as conn:
        erasures = conn.execute(select(Erasure.__table__)).all()
        bob = conn.execute(
            select(PostRow.__table__).where(PostRow.author == "bob@mastodon.online")
        ).all()
    assert [(e.posts, e.sightings, e.assignments, e.account_hash) for e in erasures] == [
        (1, 2, 1, None)
    ]
    assert erasures[0].redacted_posts == len(bob) == 2
    assert all(REMOVED in p.text for p in bob)
    assert {"redacted": True} in next(p for p in bob if p.post_id == MASTODON_REPLY.id).raw[
        "mentions"
    ]
    again = invoke(project, "forget", ALICE, "--yes", env={"AGGREGATOR_PSEUDONYM_KEY": KEY})
    assert "deleted 0 posts" in again.output
    with engine.connect() as conn:
        hashes = conn.execute(select(Erasure.account_hash).order_by(Erasure.id)).scalars().all()
    assert hashes == [None, Pseudonymiser(KEY.encode()).account(ALICE)]
    engine.dispose()


def test_forget_asks_first_and_checks_the_account(loaded):
    project = loaded
    engine = open_database(load_config(project / "config.toml").database_url)
    refused = invoke(project, "forget", ALICE, input="n\n")
    assert refused.exit_code == 1 and counts(engine)[0] == 1
    engine.dispose()
    bad = invoke(project, "forget", "two words", "--yes")
    assert bad.exit_code == 2 and "is not an account" in bad.output


@pytest.mark.parametrize(
    ("value", "words"),
    [('["a b"]', "privacy.opt_out[0]"), ('"alice"', "privacy.opt_out: must be a list")],
)
def test_a_bad_opt_out_list_is_a_config_error(project, value, words):
    cfg = project / "config.toml"
    cfg.write_text(cfg.read_text().replace("opt_out = []", f"opt_out = {value}"))
    result = invoke(project, "export")
    assert result.exit_code == 2 and words in result.output


def test_the_redactor_changes_only_what_mentions_them():
    redactor = Redactor([ALICE], ["Alice Smith"])
    assert redactor.fields({"text": "nothing here", "mentions": [], "raw": {}}) == {}
    changed = redactor.fields(
        {"text": "hi @alice and Alice Smith", "mentions": [ALICE, "bob"], "raw": {}}
    )
    assert changed == {"text": f"hi @{REMOVED} and {REMOVED}", "mentions": ["bob"]}


def test_forget_removes_the_moderators_decisions_about_the_account_and_its_posts(loaded):
    from storage.moderation import Decision, ModerationDecision, record

    project = loaded
    config = load_config(project / "config.toml")
    engine = open_database(config.database_url)
    save_page(engine, "live", Page([MASTODON_REPLY]))
    save_page(engine, "again", Page([post_from_interchange(PEOPLE[0])]))
    alices = post_from_interchange(PEOPLE[0])
    record(engine, Decision("mute", "Sam", value="@Alice@Mastodon.Social"))
    record(engine, Decision("hide", "Sam", post=(alices.platform, alices.id)))
    record(engine, Decision("pin", "Sam", post=("mastodon", MASTODON_REPLY.id)))  # Bob's: stays
    record(engine, Decision("block", "Sam", value="spammer@example.org"))  # someone else's: stays
    record(engine, Decision("block-word", "Sam", value="alice"))  # a word, not the account: stays
    result = invoke(project, "forget", ALICE, "--yes", env={"AGGREGATOR_PSEUDONYM_KEY": None})
    assert result.exit_code == 0, result.output
    with engine.connect() as conn:
        kept = conn.execute(
            select(ModerationDecision.action, ModerationDecision.post_id, ModerationDecision.value)
        ).all()
    assert sorted(kept, key=str) == sorted(
        [("pin", MASTODON_REPLY.id, None), ("block", None, "spammer@example.org"),
         ("block-word", None, "alice")], key=str,
    )  # fmt: skip
    engine.dispose()
