"""Issue 14's done-when through the real commands: a feed entry with an unreadable date is stored
untagged, and `aggregator status` (for people, not only --json) shows the warning its run gave.
The feed is answered by respx; the fixture is feed-rs's real Il Messaggero feed (its origin is in
tests/fixtures/feeds/SOURCES.md) with only its date changed."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx
import respx

from tests.helpers import FIXTURES, invoke

FEED = "https://www.ilmessaggero.it/rss/mondo.xml"
READABLE = b"<pubDate>mer, 16 nov 2022 00:38:15 +0100</pubDate>"
UNREADABLE = b"<pubDate>data non disponibile</pubDate>"


def feed(date: bytes) -> bytes:
    body = (FIXTURES / "feeds" / "feed_rs_rss_2.0_ilmessaggero.xml").read_bytes()
    assert READABLE in body
    return body.replace(READABLE, date)


def news_project(project: Path) -> Path:
    """The shipped project with its sources off and one feed source, "news"."""
    cfg = project / "config.toml"
    text = cfg.read_text(encoding="utf-8").replace("enabled = true", "enabled = false")
    cfg.write_text(text + f'\n[[sources]]\nname = "news"\ntype = "feed"\nurl = "{FEED}"\n')
    return project


def warning_lines(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if line.lstrip().startswith("! ")]


@respx.mock
def test_an_unreadable_feed_date_is_stored_untagged_and_its_warning_is_in_status(project):
    news_project(project)
    respx.get(FEED).mock(httpx.Response(200, content=feed(UNREADABLE)))
    assert invoke(project, "collect").exit_code == 0
    assert invoke(project, "tag").exit_code == 0

    result = invoke(project, "status")
    assert result.exit_code == 0, result.output
    (run,) = json.loads(invoke(project, "status", "--json").output)["runs"]
    (news,) = run["sources"]
    (recorded,) = news["warnings"]
    assert warning_lines(result.output) == [f"! {recorded}"]  # as recorded, on one line
    assert recorded.startswith(f"feed {FEED}: 1 entry kept with no time")
    assert "'data non disponibile'" in recorded

    with sqlite3.connect(project / "data" / "aggregator.db") as conn:
        (created, assigned) = conn.execute(
            "SELECT created_at, (SELECT count(*) FROM assignment WHERE post_pk = post.id) FROM post"
        ).fetchone()
    assert created.startswith("1970-01-01") and assigned == 0  # stored with no time, untagged


@respx.mock
def test_status_shows_the_latest_outcomes_warnings_not_an_older_runs(project):
    """Once the feed gives its date, the latest run warns of nothing: the older run's warning stays
    in --json (the run log) but `status` no longer prints it as if it were still so."""
    news_project(project)
    route = respx.get(FEED).mock(httpx.Response(200, content=feed(UNREADABLE)))
    assert invoke(project, "collect").exit_code == 0
    route.mock(httpx.Response(200, content=feed(READABLE)))
    assert invoke(project, "collect").exit_code == 0

    result = invoke(project, "status")
    assert result.exit_code == 0, result.output
    assert warning_lines(result.output) == []
    latest, older = json.loads(invoke(project, "status", "--json").output)["runs"]
    assert latest["sources"][0]["warnings"] == [] and len(older["sources"][0]["warnings"]) == 1
