"""twarc 1.x / twarc2 importer: real line shapes, retweets resolved, bad lines rejected, resume."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.base import ConnectorError, Post, SourceSpec
from connectors.settings import FileSettings
from connectors.twarc import V1_TIME, TwarcConnector, read_twarc, twitter_time

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "twarc"


def all_pages(path: Path) -> tuple[dict[str, Post], list[str]]:
    posts: dict[str, Post] = {}
    rejected: list[str] = []
    for page in read_twarc(path):
        rejected += page.rejected
        for post in page.posts:
            posts[post.id] = post
    return posts, rejected


def source(path: Path | None) -> SourceSpec[FileSettings]:
    return SourceSpec("archive", FileSettings(), path=path)


def test_v1_tweet_fields() -> None:
    posts, _ = all_pages(FIXTURES / "twarc1.jsonl")
    post = posts["803236158464139264"]
    assert post.platform == "x"
    assert post.created_at == datetime(2016, 11, 28, 12, 5, 11, tzinfo=UTC)
    assert post.author == "nhs_voices" and post.author_name == "NHS Voices"
    assert post.text.startswith("Nothing about us without us & for us")  # &amp; unescaped
    assert post.url == "https://x.com/nhs_voices/status/803236158464139264"
    assert post.hashtags == ["CoPro16"]
    assert post.mentions == ["carer_mel"]
    assert post.links == ["https://www.england.nhs.uk/participation/"]
    assert post.media == [
        {"url": "https://pbs.twimg.com/media/CyPic1.jpg", "type": "photo",
         "alt": "Panel of four speakers on a stage"}
    ]  # fmt: skip
    assert post.reply_to == "803230000000000123"
    assert (post.likes, post.reposts, post.lang) == (7, 3, "en")
    assert post.via == "twarc1.jsonl"


def test_v1_truncated_tweet_uses_extended_text_and_entities() -> None:
    posts, _ = all_pages(FIXTURES / "twarc1.jsonl")
    post = posts["803252470110003200"]
    assert "\u2026" not in post.text
    assert post.text.endswith("#CoPro16 #EveryoneIncluded")
    assert post.hashtags == ["CoPro16", "EveryoneIncluded"]


def test_v1_retweets_become_one_row_of_the_original() -> None:
    posts, _ = all_pages(FIXTURES / "twarc1.jsonl")
    retweet_ids = {"803311700000000001", "803311900000000002"}
    assert not retweet_ids & posts.keys()
    original = posts["803311000000000777"]
    assert original.author == "carer_mel"
    assert original.text.endswith("#CoPro16 #covmindthegap")  # full text, not "RT @…\u2026"
    assert original.reposts == 5 and original.likes == 12  # the later sighting's counts
    assert original.raw["_retweet"]["id_str"] in retweet_ids


def test_v1_quote_and_undetermined_language() -> None:
    posts, _ = all_pages(FIXTURES / "twarc1.jsonl")
    post = posts["803313000000000003"]
    assert post.quote_of == "803311000000000777"
    assert post.lang is None


def test_bad_lines_are_rejected_with_line_numbers_and_the_rest_kept() -> None:
    posts, rejected = all_pages(FIXTURES / "twarc1.jsonl")
    assert len(posts) == 4
    numbers = sorted(int(r.split(":")[0].removeprefix("line ")) for r in rejected)
    assert numbers == [5, 8, 9, 10]
    assert any("id_str" in r for r in rejected if r.startswith("line 8:"))


@pytest.mark.parametrize("name", ["twarc2_pages.jsonl", "twarc2_flat.jsonl"])
def test_twarc2_pages_and_flattened_lines(name: str) -> None:
    posts, rejected = all_pages(FIXTURES / name)
    assert set(posts) == {"803311000000000777", "803312000000000010", "803320000000000020"}
    original = posts["803311000000000777"]  # reached through the retweet 803311700000000001
    assert original.author == "carer_mel" and original.author_name == "Mel S"
    assert original.text.endswith("#covmindthegap")
    assert original.media == [
        {
            "url": "https://pbs.twimg.com/media/CyDawn.jpg",
            "type": "photo",
            "alt": "Dawn speaking to camera",
        }
    ]
    assert original.created_at == datetime(2016, 11, 28, 17, 2, 45, tzinfo=UTC)
    reply = posts["803312000000000010"]
    assert reply.reply_to == "803311000000000777"
    assert reply.links == ["https://grapevinecovandwarks.org/"]
    assert reply.url == "https://x.com/leeds_copro/status/803312000000000010"
    long = posts["803320000000000020"]
    assert long.text.endswith("why housing is health #EveryoneIncluded")  # note_tweet, not cut
    assert long.hashtags == ["EveryoneIncluded"]
    assert reply.raw["__twarc"]["retrieved_at"].startswith("2023-01-10")
    assert len(rejected) == 1 and "803321000000000021" in rejected[0]


def test_twarc2_retweet_whose_original_is_missing_keeps_the_retweet(tmp_path: Path) -> None:
    page = json.loads((FIXTURES / "twarc2_pages.jsonl").read_text().splitlines()[0])
    page["includes"]["tweets"] = []
    path = tmp_path / "page.jsonl"
    path.write_text(json.dumps(page) + "\n")
    posts, _ = all_pages(path)
    assert posts["803311700000000001"].repost_of == "803311000000000777"


def run(connector: TwarcConnector, cursor: dict[str, Any] | None, stop_after: int | None = None):
    """Like the pipeline: save each page's cursor; `stop_after` pages simulates a kill."""
    seen: list[str] = []
    for n, page in enumerate(connector.fetch(cursor), 1):
        seen += [p.id for p in page.posts]
        cursor = page.cursor
        if stop_after is not None and n == stop_after:
            break
    return seen, cursor


def test_case_06_killed_import_resumes_without_gap_or_duplicate(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    shutil.copy(FIXTURES / "twarc1.jsonl", path)
    whole = TwarcConnector(source(path))
    whole.page_size = 1
    expected, _ = run(whole, None)
    killed = TwarcConnector(source(path))
    killed.page_size = 1
    first, cursor = run(killed, None, stop_after=2)
    rest, _ = run(killed, cursor)
    assert first + rest == expected  # same pages, same order: nothing skipped, nothing repeated
    assert len(set(expected)) == 4  # two retweets of one original: one post (upserted twice)


def test_appended_file_resumes_and_replaced_file_restarts(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    shutil.copy(FIXTURES / "twarc1.jsonl", path)
    connector = TwarcConnector(source(path))
    _, cursor = run(connector, None)
    with path.open("a") as fh:
        fh.write((FIXTURES / "twarc2_pages.jsonl").read_text().splitlines()[1] + "\n")
    appended, cursor = run(connector, cursor)
    assert appended == ["803320000000000020"]
    shutil.copy(FIXTURES / "twarc2_pages.jsonl", path)  # a different file under the same name
    replaced, _ = run(connector, cursor)
    assert len(replaced) == 3


def test_appending_to_a_small_file_resumes(tmp_path: Path) -> None:
    path = tmp_path / "small.jsonl"
    lines = (FIXTURES / "twarc1.jsonl").read_text().splitlines()
    path.write_text(lines[0] + "\n")  # well under 4 KiB
    connector = TwarcConnector(source(path))
    first, cursor = run(connector, None)
    with path.open("a") as fh:
        fh.write(lines[1] + "\n")
    second, _ = run(connector, cursor)
    assert (first, second) == (["803236158464139264"], ["803252470110003200"])


def test_missing_path_and_missing_file_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConnectorError, match="path"):
        TwarcConnector(source(None))
    connector = TwarcConnector(source(tmp_path / "gone.jsonl"))
    with pytest.raises(ConnectorError, match="file not found"):
        list(connector.fetch(None))


@given(st.datetimes(min_value=datetime(2006, 3, 21), max_value=datetime(2030, 1, 1),
                    timezones=st.just(UTC)))  # fmt: skip
def test_v1_time_round_trips(moment: datetime) -> None:
    moment = moment.replace(microsecond=0)
    assert twitter_time(moment.strftime(V1_TIME)) == moment


def test_v1_time_with_offset_is_converted_to_utc() -> None:
    assert twitter_time("Mon Nov 28 13:05:11 +0100 2016") == datetime(
        2016, 11, 28, 12, 5, 11, tzinfo=UTC
    )
    assert twitter_time("2016-11-28T12:05:11.000Z") == datetime(2016, 11, 28, 12, 5, 11, tzinfo=UTC)
