"""`aggregator live` as a real process against a local Jetstream replay: the event's posts stored as
they arrive; killed with SIGKILL and started again, it resumes from the saved cursor with nothing
lost or doubled; SIGTERM stops it cleanly with exit 0."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from tests.helpers import invoke, spawn
from tests.jetstream_server import Replay, jetstream, recording

pytestmark = pytest.mark.slow
PACE = 0.4  # seconds between the replay's messages: the kill lands mid-stream
HASHTAGS = ("copro16",)


def expected(messages: list[str]) -> dict[str, bool]:
    """The recording's posts that carry the event's hashtag, by AT URI: whether each ends deleted.
    Worked out from the recording itself, not from the connector."""
    posts: dict[str, bool] = {}
    for message in messages:
        try:
            event = json.loads(message)
            commit = event["commit"]
            uri = f"at://{event['did']}/app.bsky.feed.post/{commit['rkey']}"
        except (ValueError, KeyError, TypeError):
            continue
        if commit.get("collection") != "app.bsky.feed.post":
            continue
        record = commit.get("record") or {}
        text = str(record.get("text", "")).lower()
        tags = [str(t).lower() for t in record.get("tags") or []]
        tags += [f.get("tag", "").lower() for facet in record.get("facets") or []
                 for f in facet.get("features") or []]  # fmt: skip
        if commit["operation"] == "delete" and uri in posts:
            posts[uri] = True
        elif any(t in tags or f"#{t}" in text for t in HASHTAGS) and "\\ud800" not in message:
            posts.setdefault(uri, False)
    return posts


def stored(database: Path) -> dict[str, bool]:
    if not database.exists():
        return {}
    with closing(sqlite3.connect(database)) as conn:
        try:
            rows = conn.execute("SELECT post_id, deleted_at FROM post").fetchall()
        except sqlite3.OperationalError:  # the tables are not made yet
            return {}
    return {post_id: deleted is not None for post_id, deleted in rows}


def wait_for(check: Callable[[], bool], process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if process.poll() is not None:
            pytest.fail(f"aggregator live ended early: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"timed out; stderr: {process.communicate()[1][-2000:]}")
        time.sleep(0.1)


def test_case_06_live_stores_posts_as_they_arrive_and_resumes_after_kill_9(project: Path) -> None:
    messages = recording()
    want = expected(messages)
    database = project / "data" / "aggregator.db"
    with jetstream(Replay(messages, pace=PACE)) as server:
        text = (project / "config.toml").read_text(encoding="utf-8")
        text = text.replace('path = "examples/transformathon-2016.jsonl"\nenabled = true',
                            'path = "examples/transformathon-2016.jsonl"\nenabled = false')  # fmt: skip
        text += (f'\n[[sources]]\nname = "stream"\ntype = "jetstream"\nurl = "{server.url}"\n'
                 "batch_seconds = 0.2\n")  # fmt: skip
        (project / "config.toml").write_text(text, encoding="utf-8")

        first = spawn(project, "live")
        wait_for(lambda: len(stored(database)) >= 1, first)  # stored as they arrive
        assert len(stored(database)) < len(want)  # mid-stream: not everything yet
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=10)

        second = spawn(project, "live")
        wait_for(lambda: stored(database) == want, second)
        second.send_signal(signal.SIGTERM)
        out, err = second.communicate(timeout=30)
        assert "cursor" not in server.queries[0] and "cursor" in server.queries[-1]  # resumed
    assert second.returncode == 0, err
    assert out.startswith("Stopped:")
    assert stored(database) == want  # nothing lost, nothing doubled (one row per AT URI)
    with closing(sqlite3.connect(database)) as conn:
        sightings = conn.execute("SELECT post_pk, COUNT(*) FROM sighting GROUP BY post_pk")
        assert {count for _pk, count in sightings} == {1}
    status = json.loads(invoke(project, "status", "--json").output)
    live = [run for run in status["runs"] if run["command"] == "live"]
    assert live and live[0]["status"] == "ok"
    assert [s["source"] for s in live[0]["sources"]] == ["stream"]
