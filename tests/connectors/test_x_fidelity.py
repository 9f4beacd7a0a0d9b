"""Issue 14: X posts as the platform and the archives really hold them, tried on recorded data
nobody on the project wrote (twarc-csv's twarc2 files, tidytags' v1.1 answers, tweet_parser's
streaming tweets: tests/fixtures/twarc/SOURCES.md): text as written, media of retweeted posts,
files that are not posts refused, one post through its edits, hashtags once, withheld authors
said, gzipped archives, and the API's address as a setting."""

from __future__ import annotations

import gzip
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from hypothesis import given
from hypothesis import strategies as st

from connectors.base import ConnectorError, Page, Post, SourceSpec
from connectors.http import HttpClient
from connectors.settings import FileSettings, parse_x
from connectors.twarc import TwarcConnector, read_twarc
from connectors.x import WITHHELD, XConnector, unescape
from storage.queries import save_page
from tests.helpers import FakeClock, client, database, invoke

TWARC = Path(__file__).resolve().parents[1] / "fixtures" / "twarc"
X = Path(__file__).resolve().parents[1] / "fixtures" / "x"
KPOP, WITHHELD_PAGE = TWARC / "twarc2_kpop_page.jsonl", TWARC / "twarc2_withheld_page.jsonl"
BEFORE, AFTER = TWARC / "twarc2_edited_before.jsonl", TWARC / "twarc2_edited_after.jsonl"
FIRST_ID, EDIT_ID = "1576994746135764992", "1576994789110992896"  # wongmjane's edited post
ENV = {"AGGREGATOR_X_BEARER_TOKEN": "AAAAAAAAAAAAAAAAAAAAAtest%2Fbearer%3Dtoken"}
NOW = datetime(2026, 11, 28, 13, 0, tzinfo=UTC)


def read(path: Path) -> tuple[dict[str, Post], list[Page]]:
    pages = list(read_twarc(path))
    return {post.id: post for page in pages for post in page.posts}, pages


def api_page(path: Path, line: int = 0, **meta: Any) -> dict[str, Any]:
    """A twarc2 line as the search API answered it: without twarc's stamp, one page long."""
    page = json.loads(path.read_text(encoding="utf-8").splitlines()[line])
    page.pop("__twarc", None)
    page["meta"] = {"result_count": len(page["data"]), **meta}
    return page


def connector(**options: Any) -> XConnector:
    settings, problems = parse_x(options)
    assert settings is not None, problems
    fake = FakeClock(NOW)
    http = HttpClient(client(), sleep=fake.sleep, clock=fake.clock, max_attempts=2)
    return XConnector(SourceSpec("x", settings, ("kpop",)), http=http, env=ENV, clock=fake.clock)


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url="https://api.x.com/2/tweets/search", assert_all_called=False) as r:
        yield r


def collect(x: XConnector) -> list[Page]:
    return list(x.fetch(None))


def stored_rows(project: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(database(project)) as db:
        return db.execute("SELECT post_id, text, edited_at FROM post ORDER BY post_id").fetchall()


def quarantine_count(project: Path) -> int:
    with sqlite3.connect(database(project)) as db:
        return db.execute("SELECT count(*) FROM quarantine").fetchone()[0]


# -- 1. text as written: &amp; &lt; &gt; undone once ---------------------------------------------


def test_v2_and_twarc2_text_is_unescaped() -> None:
    posts, _ = read(KPOP)
    assert posts["1440716983960363017"].text.startswith(
        "BTS’s Jimin Makes Heartwarming Donation For Polio Patients | follow for #kpop & #kdrama"
    )
    coming_up = posts["1440511175058358272"]  # the original of the retweet 1440716774706532357
    assert coming_up.text.startswith("<COMING UP NEXT>\n#원호 - #NoTextNoCall")
    assert not any(e in p.text for p in posts.values() for e in ("&amp;", "&lt;", "&gt;"))


def test_flattened_twarc2_lines_are_unescaped_too() -> None:
    posts, _ = read(TWARC / "twarc2_flat_real.jsonl")
    assert posts["1380235185292197889"].text.startswith(
        "I'm so old I remember Republicans scoffing & jeering when Obama cried"
    )


def test_v1_extended_and_streaming_text_is_unescaped() -> None:
    rest, _ = read(TWARC / "twarc1_extended.jsonl")
    assert "a first year doc student in our C&I program" in rest["1225122317849657345"].text
    streaming, _ = read(TWARC / "twarc1_streaming.jsonl")
    assert "G) 140 chars & replies. Here, have some emoji" in streaming["867472736871866368"].text


def test_the_x_connector_stores_text_as_written(api: respx.MockRouter) -> None:
    api.get("/recent").respond(200, json=api_page(KPOP))
    posts = {p.id: p for page in collect(connector(query="#kpop")) for p in page.posts}
    assert posts["1440511175058358272"].text.startswith("<COMING UP NEXT>")
    assert "#kpop & #kdrama" in posts["1440716983960363017"].text


@given(st.text())
def test_unescaping_undoes_exactly_what_x_escapes(written: str) -> None:
    sent = written.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert unescape(sent) == written  # "&amp;amp;" (a written "&amp;") stays "&amp;": never twice


def test_a_written_entity_is_kept() -> None:
    assert unescape("Q&amp;A &amp;lt;3 &amp;amp; &quot;") == "Q&A &lt;3 &amp; &quot;"


# -- 2. media of retweeted and quoted posts --------------------------------------------------------


def test_the_search_asks_for_the_media_of_referenced_posts(api: respx.MockRouter) -> None:
    route = api.get("/recent").respond(200, json=api_page(KPOP))
    collect(connector(query="#kpop"))
    expansions = route.calls[0].request.url.params["expansions"].split(",")
    assert "referenced_tweets.id.attachments.media_keys" in expansions
    assert "attachments.media_keys" in expansions


def test_a_retweeted_posts_media_found_in_includes_is_kept() -> None:
    posts, _ = read(KPOP)
    ariaz = posts["1440707466560516096"]  # the original of the retweet 1440717092546756616
    assert ariaz.media == [
        {"url": "https://pbs.twimg.com/media/E_3PMNiUUAkMapz.jpg", "type": "photo", "alt": None}
    ]


def test_media_keys_not_found_are_counted_once_a_page() -> None:
    posts, pages = read(KPOP)
    (page,) = pages
    notes = [w for w in page.warnings if "media key" in w]
    assert len(notes) == 1 and notes[0].startswith("2 media key(s) of 2 post(s) were not in")
    assert posts["1440511175058358272"].media == []
    assert posts["1440511175058358272"].raw["_missing_media"] == ["3_1440283738030571527"]
    assert posts["1440684519917424661"].raw["_missing_media"] == ["16_1440684326077681666"]
    assert "_missing_media" not in posts["1440707466560516096"].raw


def test_media_flatten_could_not_find_are_counted() -> None:
    posts, pages = read(TWARC / "twarc2_flat_real.jsonl")
    assert posts["1380226330034372610"].media == []  # flatten wrote {} for its photo
    assert posts["1380226330034372610"].raw["_missing_media"] == ["7_1380226050232356865"]
    assert posts["1380242549785366530"].media[0]["type"] == "animated_gif"
    assert [w for page in pages for w in page.warnings if "media key" in w] == [
        "1 media key(s) of 1 post(s) were not in the page's includes.media (removed, or a "
        "retweeted or quoted post's media not expanded): those photos and videos are not stored"
    ]


def test_the_x_connector_says_once_a_page_what_media_it_could_not_find(
    api: respx.MockRouter,
) -> None:
    api.get("/recent").respond(200, json=api_page(KPOP))
    (page,) = collect(connector(query="#kpop"))
    assert sum("media key" in w for w in page.warnings) == 1
    assert any(w.startswith("2 media key(s) of 2 post(s)") for w in page.warnings)


# -- 3. files that are not posts --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "holds"),
    [
        ("twarc2_users.jsonl", "holds X accounts (a twarc users, followers, following or list"),
        ("twarc2_lists.jsonl", "holds X lists (a twarc lists file), not posts"),
        ("twarc2_counts.jsonl", "holds tweet counts (a twarc2 counts file), not posts"),
        ("twarc2_compliance.jsonl", "holds compliance results (a twarc2 compliance file)"),
    ],
)
def test_a_file_that_is_not_posts_is_refused_whole(name: str, holds: str) -> None:
    with pytest.raises(ConnectorError) as refused:
        list(read_twarc(TWARC / name))
    assert str(refused.value).startswith(f"{name} {holds}")
    assert "import a file of tweets" in str(refused.value)


@pytest.mark.parametrize("name", ["twarc2_users.jsonl", "twarc2_lists.jsonl"])
def test_importing_users_or_lists_exits_1_with_one_line_and_stores_nothing(
    project: Path, name: str
) -> None:
    result = invoke(project, "import", str(TWARC / name), "--format", "twarc")
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert name in line and "not posts" in line
    assert stored_rows(project) == [] and quarantine_count(project) == 0


def test_a_users_page_among_tweets_is_skipped_saying_what_it_is(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(KPOP.read_text() + (TWARC / "twarc2_users.jsonl").read_text())
    posts, pages = read(path)
    assert len(posts) == 5
    (rejected,) = [r for page in pages for r in page.rejected]
    assert rejected.startswith("line 2: not a post: X accounts")


def test_a_file_of_ids_is_refused_with_how_to_hydrate_it(tmp_path: Path) -> None:
    path = tmp_path / "ids.txt"
    path.write_text("".join(f"{tweet_id}\n" for tweet_id in read(KPOP)[0]))
    with pytest.raises(ConnectorError, match=r"ids\.txt holds ids, not posts: hydrate them"):
        list(read_twarc(path))


# -- 4. one post through its edits -------------------------------------------------------------------


def test_the_first_version_keeps_the_id_and_the_edit_sets_edited_at() -> None:
    (before,) = read(BEFORE)[0].values()
    (after,) = read(AFTER)[0].values()
    assert before.id == after.id == FIRST_ID
    assert before.edited_at is None and before.text.startswith("i miss y’all so much haha")
    assert after.edited_at == datetime(2022, 10, 3, 17, 57, 11, tzinfo=UTC)
    assert after.text == "hey :) https://t.co/rnwEIoNuqd"
    assert after.raw["id"] == EDIT_ID  # the version itself stays in raw
    assert after.url == f"https://x.com/wongmjane/status/{FIRST_ID}"


@pytest.mark.parametrize(
    "order", [(BEFORE, AFTER), (AFTER, BEFORE)], ids=["edit last", "edit first"]
)
def test_an_edited_post_imported_twice_is_one_row_with_the_latest_text(
    project: Path, order: tuple[Path, Path]
) -> None:
    for path in order:
        assert invoke(project, "import", str(path), "--format", "twarc").exit_code == 0
    assert stored_rows(project) == [
        (FIRST_ID, "hey :) https://t.co/rnwEIoNuqd", "2022-10-03 17:57:11.000000")
    ]


@pytest.mark.parametrize(
    "order", [(BEFORE, AFTER), (AFTER, BEFORE)], ids=["edit last", "edit first"]
)
def test_both_versions_in_one_file_keep_the_newest(
    tmp_path: Path, order: tuple[Path, Path]
) -> None:
    path = tmp_path / "both.jsonl"
    path.write_text("".join(p.read_text() for p in order))
    posts, _ = read(path)
    assert list(posts) == [FIRST_ID]
    assert posts[FIRST_ID].text == "hey :) https://t.co/rnwEIoNuqd"


def test_a_reply_to_an_edit_points_at_the_first_version() -> None:
    (reply,) = read(TWARC / "twarc2_quoted_edit.jsonl")[0].values()
    assert {"type": "replied_to", "id": EDIT_ID} in reply.raw["referenced_tweets"]
    assert reply.reply_to == FIRST_ID  # the post is stored under its first version's id
    assert reply.quote_of == FIRST_ID


def test_the_x_connector_stores_a_post_seen_before_and_after_its_edit_once(
    api: respx.MockRouter, engine: Any, project: Path
) -> None:
    answers = {None: api_page(BEFORE, next_token="t2"), "t2": api_page(AFTER)}
    api.get("/recent").mock(
        side_effect=lambda r: httpx.Response(200, json=answers[r.url.params.get("next_token")])
    )
    for page in collect(connector(query="#test")):
        save_page(engine, "x", page)
    assert stored_rows(project) == [
        (FIRST_ID, "hey :) https://t.co/rnwEIoNuqd", "2022-10-03 17:57:11.000000")
    ]


# -- 8. hashtags once, withheld authors, gzip, the API's address ----------------------------------


def test_a_hashtag_repeated_in_any_case_is_kept_once_as_first_written() -> None:
    posts, _ = read(WITHHELD_PAGE)
    tags = posts["1404367526247550977"].hashtags  # the entities give BANKNIFTY and banknifty
    assert tags == ["BANKNIFTY", "GOGIandGOLI", "NIFTYFUTURE", "nse", "bse", "sensexbaba",
                    "StockMarket", "sharemarket", "nifty50", "BANKNIFTYFUTURE", "Reliance",
                    "adani"]  # fmt: skip
    kpop, _ = read(KPOP)
    assert kpop["1440716713725595657"].hashtags.count("exo") == 1


def test_an_author_the_page_does_not_include_reads_as_withheld() -> None:
    posts, (page,) = read(WITHHELD_PAGE)
    post = posts["1403542567149469697"]  # retweeted by 1404393588541202433; its author is absent
    assert post.author == f"{WITHHELD}1215560279628451841" == "withheld:1215560279628451841"
    assert post.author_name is None
    assert post.url == "https://x.com/i/web/status/1403542567149469697"
    assert posts["1404367526247550977"].author == "sensexbaba"
    assert [w for w in page.warnings if "accounts the page does not include" in w] == [
        "1 post(s) by accounts the page does not include (withheld, suspended or not expanded): "
        "stored with the author withheld:<author_id>"
    ]


def gzipped(path: Path, folder: Path) -> Path:
    target = folder / f"{path.name}.gz"
    target.write_bytes(gzip.compress(path.read_bytes()))
    return target


def test_a_gzipped_twarc_archive_reads_as_the_plain_file(tmp_path: Path) -> None:
    plain, _ = read(KPOP)
    packed, pages = read(gzipped(KPOP, tmp_path))
    assert {k: p.text for k, p in packed.items()} == {k: p.text for k, p in plain.items()}
    assert pages[-1].cursor == {"offset": KPOP.stat().st_size, "line": 1}


def test_importing_a_jsonl_gz_archive(project: Path, tmp_path: Path) -> None:
    result = invoke(project, "import", str(gzipped(AFTER, tmp_path)), "--format", "twarc")
    assert result.exit_code == 0, result.output
    assert [row[0] for row in stored_rows(project)] == [FIRST_ID]


def test_a_killed_read_of_a_gzipped_archive_resumes_without_gap(tmp_path: Path) -> None:
    path = tmp_path / "both.jsonl"
    path.write_text(KPOP.read_text() + WITHHELD_PAGE.read_text())
    packed = gzipped(path, tmp_path)
    source = TwarcConnector(SourceSpec("archive", FileSettings(), path=packed))
    source.page_size = 1  # a page a line
    whole = [p.id for page in source.fetch(None) for p in page.posts]
    pages = source.fetch(None)
    first = next(pages)  # killed after its first page was saved
    pages.close()
    rest = [p.id for page in source.fetch(first.cursor) for p in page.posts]
    assert [p.id for p in first.posts] + rest == whole
    assert len(whole) == len(set(whole)) == 8  # the 5 posts of one line, the 3 of the other


def test_a_damaged_gzip_file_is_named_after_what_it_gave(tmp_path: Path) -> None:
    path = tmp_path / "both.jsonl"
    path.write_text(KPOP.read_text() + WITHHELD_PAGE.read_text())
    packed = gzipped(path, tmp_path)
    packed.write_bytes(packed.read_bytes()[:-200])  # cut short, as an interrupted download
    with pytest.raises(ConnectorError, match=r"cannot read both\.jsonl\.gz: a damaged gzip file"):
        list(read_twarc(packed))


def test_the_api_address_is_a_setting(tmp_path: Path) -> None:
    settings, problems = parse_x({"base_url": "http://127.0.0.1:8808/recorded/2/"})
    assert problems == [] and settings is not None
    assert settings.base_url == "http://127.0.0.1:8808/recorded/2"
    default, _ = parse_x({})
    assert default is not None and default.base_url == "https://api.x.com/2"
    _, problems = parse_x({"base_url": "ftp://example.org/2"})
    assert problems == ["base_url: 'ftp://example.org/2' is not an http(s) URL"]


def test_the_connector_searches_at_the_address_set() -> None:
    with respx.mock(assert_all_called=True) as router:
        route = router.get("http://127.0.0.1:8808/recorded/2/tweets/search/all").respond(
            200, json=api_page(KPOP)
        )
        pages = collect(connector(endpoint="all", base_url="http://127.0.0.1:8808/recorded/2"))
    assert route.call_count == 1 and len(pages[0].posts) == 5


# -- 9. long posts (note_tweet) and v1.1 extended mode ---------------------------------------------


def test_a_long_posts_note_tweet_text_wins_over_the_truncated_text(api: respx.MockRouter) -> None:
    body = json.loads((X / "search_note_tweet.json").read_text(encoding="utf-8"))
    api.get("/recent").respond(200, json=body)
    ((post,),) = [page.posts for page in collect(connector(query="#CoPro16"))]
    assert post.text == unescape(body["data"][0]["note_tweet"]["text"])
    assert len(post.text) > 280 and "\u2026" not in post.text
    assert "Parents & carers" in post.text and "share the budget <before> the" in post.text
    assert post.text.endswith("Slides to follow. #copro16 #EveryoneIncluded")
    assert post.hashtags == ["CoPro16", "EveryoneIncluded"]  # #copro16 is the same hashtag


def test_v1_extended_mode_full_text_with_media() -> None:
    posts, _ = read(TWARC / "twarc1_extended.jsonl")
    original = posts["1201488442741477376"]  # retweeted by 1201677948849442817
    assert original.text.endswith("@lxdify get shoutouts :) #instructionaldesign #conferences "
                                  "https://t.co/F4alIilVHy https://t.co/Dxo29Ns7hq")  # fmt: skip
    assert original.media == [
        {"url": "https://pbs.twimg.com/media/EKyLXwUX0AEAKjR.jpg", "type": "photo", "alt": None}
    ]
    assert original.raw["_retweet"]["id_str"] == "1201677948849442817"
    assert posts["1218660838011293696"].quote_of == "1218548635333545984"


def test_v1_streaming_extended_tweet_text_and_media() -> None:
    posts, _ = read(TWARC / "twarc1_streaming.jsonl")
    long = posts["867472736871866368"]
    assert len(long.text) > 140 and long.text.endswith("🍹🍾🍽")  # extended_tweet, not cut
    original = posts["867471562613575680"]  # "F)", retweeted by 867475059358683136
    assert original.media == [{"url": "https://pbs.twimg.com/tweet_video_thumb/DAngwRuW0AAzmYK.jpg",
                               "type": "animated_gif", "alt": None}]  # fmt: skip
