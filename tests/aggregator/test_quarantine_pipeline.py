"""What storage sets aside is reported like any skipped record, and quarantine keeps no opted-out
person's content."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

import connectors
from aggregator.config import load_config
from aggregator.pipeline import collect
from connectors.base import Page, Post
from storage.db import open_database
from storage.models import QuarantineRow
from storage.queries import post_count

WHEN = datetime(2016, 11, 28, 13, tzinfo=UTC)


class Odd:
    """A source whose one page holds a good post, one the database cannot hold (a count of
    10**30 got past the connector), and a record the connector itself set aside."""

    def __init__(self, spec, **_):
        self.name = spec.name

    def fetch(self, cursor):
        page = Page(
            [
                Post("feed", "good", WHEN, "alice", "fine"),
                Post("feed", "huge", WHEN, "bob", "too many likes", likes=10**30),
            ],
            {"n": 1},
        )
        page.reject(
            "entry 3",
            "created_at is out of range",
            {"author": "carol@example.org", "text": "carol's own words"},
        )
        page.reject("entry 4", "no id", {"author": "dave", "text": "dave's words"})
        yield page


def odd_project(project, monkeypatch, opt_out: str = ""):
    original = connectors.registry
    monkeypatch.setattr(connectors, "registry", lambda: {**original(), "feed": Odd})
    cfg = project / "config.toml"
    text = cfg.read_text().replace("enabled = true", "enabled = false")
    text += '\n[[sources]]\nname = "odd"\ntype = "feed"\nurl = "https://feed.example/rss"\n'
    if opt_out:
        assert "opt_out = []" in text
        text = text.replace("opt_out = []", f'opt_out = ["{opt_out}"]')
    cfg.write_text(text)
    return load_config(cfg)


def test_a_post_storage_refuses_is_counted_as_skipped_with_its_reason(project, monkeypatch):
    config = odd_project(project, monkeypatch)
    engine = open_database(config.database_url)
    try:
        summary = collect(engine, config, only="odd")
        odd = summary.sources[0]
        assert odd.status == "ok" and odd.new_posts == 1
        assert post_count(engine) == 1
        assert len(odd.rejected) == 3
        assert any("huge" in r and "64-bit" in r for r in odd.rejected)
    finally:
        engine.dispose()


def test_a_quarantined_record_naming_an_opted_out_account_keeps_no_content(project, monkeypatch):
    config = odd_project(project, monkeypatch, opt_out="carol@example.org")
    assert "carol@example.org" in config.privacy.opt_out
    engine = open_database(config.database_url)
    try:
        collect(engine, config, only="odd")
        with engine.connect() as conn:
            rows = {r.location: r for r in conn.execute(select(QuarantineRow))}
    finally:
        engine.dispose()
    assert rows["entry 3"].raw is None  # carol's words are not kept, only where and why
    assert "out of range" in rows["entry 3"].reason
    assert rows["entry 4"].raw == {"author": "dave", "text": "dave's words"}
