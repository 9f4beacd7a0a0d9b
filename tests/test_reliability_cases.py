"""Reliability cases (docs/reliability.md) whose proof no module's own test file held: one source's
refused token beside the others (5), long ids in every export format (33), pseudonymised exports
and people's choices (34), a backup taken while a collection writes (21)."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from dataclasses import replace

import httpx
import respx

from aggregator.privacy import REMOVED
from aggregator.pseudonym import Pseudonymiser
from connectors.archives import post_from_interchange
from connectors.base import Page
from storage.db import open_database
from storage.queries import save_page
from tests.helpers import ALICE, KEY, MASTODON_REPLY, PEOPLE, invoke, read_csv, with_opt_out

INSTANCE = "https://refusing.example"
X_POST = PEOPLE[4]  # an X post whose own, parent and reposted ids are 22 digits long


def test_case_05_a_refused_token_fails_only_its_source_and_the_others_are_collected(project):
    cfg = project / "config.toml"
    cfg.write_text(cfg.read_text() + f'\n[[sources]]\nname = "refusing"\ntype = "mastodon"\n'
                   f'instance = "{INSTANCE}"\n')  # fmt: skip
    with respx.mock:
        refused = respx.get(url__startswith=INSTANCE).mock(
            return_value=httpx.Response(401, json={"error": "The access token is invalid"})
        )
        result = invoke(project, "collect")
    assert result.exit_code == 1
    assert result.stdout.startswith("✓ example: 400 new")
    (failed,) = [line for line in result.stderr.splitlines() if line.startswith("✗ ")]
    assert f"✗ refusing: source 'refusing': Mastodon instance {INSTANCE} needs a token" in failed
    assert "AGGREGATOR_MASTODON_TOKEN" in failed
    asked = [str(call.request.url) for call in refused.calls]
    assert asked and len(asked) == len(set(asked))  # each refusal taken as final, never retried
    with sqlite3.connect(project / "data" / "aggregator.db") as conn:
        outcomes = dict(conn.execute("SELECT source, status FROM sourceoutcome"))
        cursors = [row[0] for row in conn.execute("SELECT source FROM sourcecursor")]
    assert outcomes == {"example": "ok", "refusing": "failed"} and "refusing" not in cursors


def long_ids(row: dict) -> tuple:
    """A record's own id (CSV `post_id`, JSONL `id`), its parent's and the reposted post's."""
    return row.get("post_id", row.get("id")), row["reply_to"], row["repost_of"]


def test_case_33_long_ids_are_written_digit_for_digit_as_text_in_every_format(loaded):
    project = loaded
    expected = (X_POST["id"], X_POST["reply_to"], X_POST["repost_of"])
    excel = invoke(project, "export", "--excel").stdout
    assert excel.startswith("\ufeff")  # the byte-order mark that makes Excel read UTF-8
    for output in (invoke(project, "export").stdout, excel):
        (row,) = [r for r in read_csv(output) if r["post_id"] == X_POST["id"]]
        assert long_ids(row) == expected
    lines = [json.loads(line) for line in invoke(project, "export", "--format", "jsonl").stdout
             .splitlines()]  # fmt: skip
    (record,) = [r for r in lines if r["id"] == X_POST["id"]]
    assert long_ids(record) == expected  # JSON strings: no reader can round them as numbers
    ids = list(csv.reader(io.StringIO(invoke(project, "export", "--format", "ids").stdout)))
    assert ["x", X_POST["id"]] in ids


def test_case_34_pseudonymised_exports_leave_out_opted_out_accounts_and_deleted_posts(loaded):
    project = loaded
    config = with_opt_out(project, ALICE)
    engine = open_database(config.database_url)
    save_page(engine, "live", Page([MASTODON_REPLY]))  # Bob mentions Alice by handle and name
    frank = post_from_interchange(PEOPLE[2])
    save_page(engine, "live", Page([replace(frank, deleted=True)]))
    engine.dispose()
    pseudo = Pseudonymiser(KEY.encode())
    hidden = {pseudo.account(ALICE), pseudo.account(frank.author)}
    for fmt in ("csv", "jsonl"):
        result = invoke(project, "export", "--pseudonymise", "--format", fmt,
                        env={"AGGREGATOR_PSEUDONYM_KEY": KEY})  # fmt: skip
        assert result.exit_code == 0, result.output
        assert [p for p in hidden if p in result.stdout] == [], fmt
        assert KEY not in result.stdout and "did:plc:abcdefghijklmnopqrstuvwx" not in result.stdout
    rows = read_csv(
        invoke(project, "export", "--pseudonymise", env={"AGGREGATOR_PSEUDONYM_KEY": KEY}).stdout
    )
    plain = read_csv(invoke(project, "export").stdout)
    assert len(rows) == len(plain)
    assert {r["author"] for r in plain}.isdisjoint({ALICE, frank.author})
    bob = pseudo.account(MASTODON_REPLY.author)
    texts = [r["text"] for r in rows if r["author"] == bob]  # both of Bob's posts name Alice
    assert len(texts) == 2 and all(REMOVED in t and "alice" not in t.lower() for t in texts)


def test_case_21_a_backup_taken_during_an_open_write_holds_only_committed_rows(project, tmp_path):
    assert invoke(project, "collect").exit_code == 0
    writer = sqlite3.connect(project / "data" / "aggregator.db", isolation_level=None)
    try:
        # A committed page still in the write-ahead log (a copy of the file alone would miss it),
        writer.execute("UPDATE post SET text = 'committed' WHERE id = 1")
        # then a collection in the middle of saving the next one.
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE post SET text = 'half-written'")
        writer.execute("DELETE FROM sourcecursor")
        copy = tmp_path / "backup.db"
        result = invoke(project, "backup", str(copy))
        assert result.exit_code == 0, result.output
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    with sqlite3.connect(copy) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        texts = [row[0] for row in conn.execute("SELECT text FROM post")]
        cursors = conn.execute("SELECT count(*) FROM sourcecursor").fetchone()[0]
    assert len(texts) == 400 and "half-written" not in texts and cursors == 1
    assert texts.count("committed") == 1
