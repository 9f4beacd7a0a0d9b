"""The Jetstream source against a local WebSocket server replaying a recording: which posts it
keeps, edits and deletions, hostile messages, reconnecting and resuming from the cursor, the replay
window's gap, compressed frames, and one post when the search source finds it too."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import zstandard
from sqlalchemy import select

from connectors.base import ConnectorError, Page, SourceSpec
from connectors.bluesky import post_from_view
from connectors.jetstream import JetstreamConnector, post_from_commit
from connectors.settings import JetstreamSettings, parse_jetstream
from storage.db import open_database
from storage.models import POST_TABLE
from storage.queries import save_page
from tests.helpers import FakeClock
from tests.jetstream_server import Replay, jetstream, recording, time_of, train_dictionary

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
T0 = 1_800_000_000_000_000  # the recording's first time_us
AFTER = (T0 + 60_000_000) / 1e6  # a clock after the recording: a catch-up ends at its last event


def connector(url: str, clock: FakeClock | None = None, **settings: Any) -> JetstreamConnector:
    clock = clock or FakeClock(AFTER)
    given = JetstreamSettings(url=url, batch_seconds=0.2, **settings)
    return JetstreamConnector(SourceSpec("js", given, ("CoPro16",)), clock=clock.clock,
                              sleep=clock.sleep)  # fmt: skip


def rkeys(pages: list[Page]) -> list[tuple[str, bool]]:
    return [(p.id.rsplit("/", 1)[1], p.deleted) for page in pages for p in page.posts]


@pytest.fixture
def replayed() -> Iterator[list[Page]]:
    with jetstream(Replay(recording())) as server:
        yield list(connector(server.url).fetch(None))


def test_keeps_posts_tagged_in_a_facet_in_tags_or_in_text_and_nothing_else(replayed) -> None:
    kept = {k for k, deleted in rkeys(replayed) if not deleted}
    assert kept == {"3lfacet00001", "3ltags000002", "3ltext000003", "3lclose00012"}


def test_case_11_an_update_changes_the_text_and_a_delete_marks_the_post_deleted(replayed) -> None:
    posts = [p for page in replayed for p in page.posts]
    edits = [p for p in posts if p.id.endswith("3lfacet00001")]
    assert edits[-1].text == "Opening keynote now, edited #CoPro16"
    assert edits[-1].edited_at == datetime.fromtimestamp((T0 + 6_000_000) / 1e6, UTC)
    deleted = [p for p in posts if p.deleted]
    assert [p.id.rsplit("/", 1)[1] for p in deleted] == ["3ltags000002"]  # not the unknown one
    assert deleted[0].text == ""


def test_identity_handles_name_authors_and_account_events_are_ignored(replayed) -> None:
    authors = {p.id.rsplit("/", 1)[1]: p.author for page in replayed for p in page.posts}
    assert authors["3lfacet00001"] == "ada.example.org"  # from the identity event
    assert authors["3ltext000003"] == "did:plc:mcc5yghbk7tixqryac2yxku7"  # no handle known


def test_case_10_hostile_messages_are_quarantined_and_the_posts_after_them_kept(replayed) -> None:
    where = [q.where for page in replayed for q in page.quarantined]
    assert len(where) == 6
    assert any(w.endswith("3lbadtext010") for w in where)
    assert "3lclose00012" in {k for k, _ in rkeys(replayed)}  # after every hostile message
    assert replayed[-1].cursor == {"time_us": T0 + 12_000_000}


def test_the_cursor_resumes_with_a_rewind_and_nothing_lost(tmp_path: Path) -> None:
    with jetstream(Replay(recording())) as server:
        list(connector(server.url, rewind_seconds=2).fetch({"time_us": T0 + 6_000_000}))
        assert server.queries[0]["cursor"] == [str(T0 + 4_000_000)]
        assert server.queries[0]["wantedCollections"] == ["app.bsky.feed.post"]


def test_case_06_a_closing_server_is_reconnected_with_backoff_and_nothing_lost_or_doubled(
    tmp_path: Path,
) -> None:
    engine = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    clock = FakeClock(AFTER)
    with jetstream(Replay(recording(), close_after=8)) as server:
        pages = list(connector(server.url, clock, rewind_seconds=1).fetch(None))
    assert len(server.queries) == 4  # closed after every 8 messages: reconnected each time
    assert clock.slept and set(clock.slept) == {1.0}  # each drop came after progress
    for page in pages:
        save_page(engine, "js", page)
    with engine.connect() as conn:
        rows = conn.execute(select(POST_TABLE.c.post_id, POST_TABLE.c.deleted_at)).all()
    ids = sorted(r.post_id.rsplit("/", 1)[1] for r in rows)
    assert ids == ["3lclose00012", "3lfacet00001", "3ltags000002", "3ltext000003"]
    assert [r.post_id.rsplit("/", 1)[1] for r in rows if r.deleted_at] == ["3ltags000002"]


def test_backoff_is_capped_and_a_catch_up_gives_up_in_one_line() -> None:
    clock = FakeClock(AFTER)
    source = connector("ws://127.0.0.1:9/subscribe", clock, max_attempts=9,
                       max_backoff_seconds=10)  # fmt: skip
    with pytest.raises(ConnectorError, match="9 connections failed in a row") as info:
        list(source.fetch({"time_us": T0}))
    assert "\n" not in str(info.value)
    assert clock.slept == [1, 2, 4, 8, 10, 10, 10, 10]


def test_case_13_a_cursor_older_than_the_server_keeps_is_a_gap_warning() -> None:
    oldest = T0 + 3_000_000
    with jetstream(Replay(recording(), oldest=oldest)) as server:
        pages = list(connector(server.url, gap_tolerance_seconds=30).fetch({"time_us": T0 - 10**8}))
    warnings = [w for page in pages for w in page.warnings]
    assert len(warnings) == 1 and warnings[0].startswith("gap: Jetstream resumed at")
    with jetstream(Replay(recording(), oldest=oldest)) as server:
        pages = list(connector(server.url, gap_tolerance_seconds=30).fetch({"time_us": oldest}))
    assert not [w for page in pages for w in page.warnings]


def test_compressed_frames_are_read_with_the_dictionary(tmp_path: Path) -> None:
    messages = recording()
    dictionary = train_dictionary(messages)
    path = tmp_path / "zstd_dictionary"
    path.write_bytes(dictionary)
    with jetstream(Replay(messages, dictionary=dictionary)) as server:
        pages = list(connector(server.url, compress=True, dictionary=path).fetch(None))
        assert server.queries[0]["compress"] == ["true"]
    assert {k for k, d in rkeys(pages) if not d} == {"3lfacet00001", "3ltags000002",
                                                     "3ltext000003", "3lclose00012"}  # fmt: skip


def test_case_43_a_compressed_bomb_is_quarantined_not_inflated(tmp_path: Path) -> None:
    dictionary = train_dictionary(recording())
    path = tmp_path / "zstd_dictionary"
    path.write_bytes(dictionary)
    bomb = zstandard.ZstdCompressor().compress(b" " * (8 << 20))
    source = connector("ws://unused", compress=True, dictionary=path)
    from connectors.jetstream import _Batch

    batch = _Batch(0.0)
    assert source._handle(bomb, batch) is None
    assert "more than" in batch.page.rejected[0]


def test_case_12_the_same_post_from_search_and_from_jetstream_is_one_row(tmp_path: Path) -> None:
    view = json.loads((FIXTURES / "bluesky" / "postviews.json").read_text())["salisbury"]
    did, _, rkey = view["uri"].removeprefix("at://").partition("/app.bsky.feed.post/")
    event = {"did": did, "time_us": T0, "kind": "commit",
             "commit": {"rev": "3l", "operation": "create", "collection": "app.bsky.feed.post",
                        "rkey": rkey, "record": view["record"], "cid": view["cid"]}}  # fmt: skip
    streamed, _ = post_from_commit(event)
    searched, _ = post_from_view(view)
    assert (streamed.platform, streamed.id, streamed.text, streamed.hashtags) == (
        searched.platform, searched.id, searched.text, searched.hashtags)  # fmt: skip
    engine = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    save_page(engine, "bluesky", Page([searched]))
    save_page(engine, "jetstream", Page([streamed]))
    with engine.connect() as conn:
        assert len(conn.execute(select(POST_TABLE.c.id)).all()) == 1


def test_a_delete_of_a_stored_post_applies_through_stored() -> None:
    messages = [m for m in recording() if time_of(m, 0) == T0 + 7_000_000]  # the delete only
    asked: list[list[str]] = []

    def stored(platform: str, ids: list[str]) -> set[str]:
        asked.append(list(ids))
        return set(ids)

    with jetstream(Replay(messages)) as server:
        given = JetstreamSettings(url=server.url, batch_seconds=0.2)
        clock = FakeClock(AFTER)
        source = JetstreamConnector(SourceSpec("js", given, ("CoPro16",)), clock=clock.clock,
                                    sleep=clock.sleep, stored=stored)  # fmt: skip
        pages = list(source.fetch(None))
    assert asked == [["at://did:plc:q235v55g5unth4zjjdpacfdr/app.bsky.feed.post/3ltags000002"]]
    assert [(p.deleted, p.text) for page in pages for p in page.posts] == [(True, "")]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"url": "https://jetstream.example/subscribe"}, "url: "),
        ({"compress": "yes"}, "compress: must be true or false"),
        ({"compress": True}, "dictionary: compress = true needs"),
        ({"dictionary": "relative/dict"}, "dictionary: 'relative/dict' is not an absolute path"),
        ({"max_batch": 0}, "max_batch: must be a whole number of at least 1"),
        ({"batch_seconds": "1"}, "batch_seconds: must be a number"),
    ],
)
def test_settings_name_the_bad_key(raw: dict[str, Any], problem: str) -> None:
    settings, problems = parse_jetstream(raw)
    assert settings is None and problems[0].startswith(problem)


def test_settings_defaults_are_the_public_endpoint_uncompressed() -> None:
    settings, problems = parse_jetstream({})
    assert problems == [] and settings is not None
    assert settings.url.startswith("wss://jetstream") and settings.compress is False


def test_a_live_stream_keeps_trying_and_says_once_that_it_cannot_connect() -> None:
    clock = FakeClock(AFTER)
    given = JetstreamSettings(url="ws://127.0.0.1:9/subscribe", max_attempts=3)
    source = JetstreamConnector(SourceSpec("js", given, ("CoPro16",)), clock=clock.clock,
                                sleep=clock.sleep, follow=True, stop=lambda: len(clock.slept) >= 6)  # fmt: skip
    pages = list(source.fetch({"time_us": T0}))
    assert [p.warnings for p in pages] == [[pages[0].warnings[0]]]
    assert pages[0].warnings[0].startswith("Jetstream at 127.0.0.1:9: 3 connections failed")
    assert pages[0].warnings[0].endswith("still trying") and pages[0].cursor is None
    assert len(clock.slept) == 6  # it never gave up by itself


def test_a_relative_dictionary_is_read_from_the_configs_folder(tmp_path: Path) -> None:
    from aggregator.config import load_config

    (tmp_path / "zstd_dictionary").write_bytes(train_dictionary(recording()))
    (tmp_path / "config.toml").write_text(
        '[event]\nname = "E"\ntimezone = "UTC"\nhashtags = ["CoPro16"]\n'
        '[[sessions]]\nid = "a"\ntitle = "A"\nstart = "2016-11-28T12:00"\nend = "2016-11-28T13:00"\n'
        '[[sources]]\nname = "stream"\ntype = "jetstream"\ncompress = true\n'
        'dictionary = "zstd_dictionary"\n',
        encoding="utf-8",
    )
    (source,) = load_config(tmp_path / "config.toml").sources
    assert source.settings.dictionary == tmp_path.resolve() / "zstd_dictionary"
