"""Issue 14: what the platforms really hold, tried with data recorded by other projects (rtoot's and
Mastodon.py's Mastodon responses, bskyr's Bluesky responses, feed-rs's real feeds; each file's
origin is in tests/fixtures/<platform>/SOURCES.md). Counts seen on two instances, a status seen
before and after its edit, Bluesky's embeds, podcast enclosures, dates in other languages, and a
feed entry whose date nobody can read (stored with no time, untagged, warned about).

The storage tests run on SQLite, and on PostgreSQL too when AGGREGATOR_TEST_POSTGRES_URL names a
server (as in CI)."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import select

from aggregator.config import load_config
from connectors.base import Page, SourceSpec
from connectors.bluesky import post_from_view
from connectors.feeds import FeedConnector
from connectors.http import HttpClient
from connectors.mastodon import MastodonConnector, post_from_status
from connectors.settings import parse_feed
from connectors.undated import UNDATED, undated
from reports.digest import report_data
from storage.db import open_database
from storage.models import Assignment, PostRow, Sighting
from storage.queries import save_page
from tests.helpers import client, invoke, mastodon_source, postgres_engine

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
POSTS = PostRow.__table__  # type: ignore[attr-defined]
SIGHTINGS = Sighting.__table__  # type: ignore[attr-defined]
ASSIGNMENTS = Assignment.__table__  # type: ignore[attr-defined]
COUNTS = ("likes", "reposts", "replies")
STATUS_COUNTS = ("favourites_count", "reblogs_count", "replies_count")
SOCIAL, TCHNCS = "https://mastodon.social", "https://social.tchncs.de"
# Seen on both instances on 2022-11-08, with fewer favourites on social.tchncs.de (0) than on
# mastodon.social (4); on mastodon.social again three weeks later with more of everything.
LEAPFROG = "https://chaos.social/users/fuzzyleapfrog/statuses/109304199904016048"
EICHHORN = "https://mastodon.social/users/DrKEichhorn/statuses/109302021734111579"


def fixture(platform: str, name: str) -> Any:
    return json.loads((FIXTURES / platform / name).read_text(encoding="utf-8"))


def page_of(instance: str, day: str) -> list[dict[str, Any]]:
    """rtoot's recording of the #ichbinhanna tag timeline on `instance` (its host) on `day`."""
    return fixture("mastodon", f"rtoot_tag_ichbinhanna_{instance}_{day}.json")


def status(instance: str, day: str, uri: str) -> dict[str, Any]:
    (found,) = [s for s in page_of(instance, day) if s["uri"] == uri]
    return found


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path) -> Iterator[Any]:
    """An empty database: a SQLite file, or a new PostgreSQL database when a server is named."""
    if request.param == "sqlite":
        engine = open_database(f"sqlite:///{tmp_path / 'fidelity.db'}")
        yield engine
        engine.dispose()
        return
    with postgres_engine("set AGGREGATOR_TEST_POSTGRES_URL to run these on PostgreSQL") as engine:
        yield engine


def stored(engine, post_id: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(POSTS).where(POSTS.c.post_id == post_id)).one()


def sightings(engine, post_id: str) -> dict[str, tuple]:
    """The post's sightings: via -> (likes, reposts, replies, local_id)."""
    stmt = (
        select(SIGHTINGS.c.via, *(SIGHTINGS.c[k] for k in COUNTS), SIGHTINGS.c.local_id)
        .join(POSTS, POSTS.c.id == SIGHTINGS.c.post_pk)
        .where(POSTS.c.post_id == post_id)
    )
    with engine.connect() as conn:
        return {r.via: tuple(r)[1:] for r in conn.execute(stmt)}


def tag_timeline(router: respx.MockRouter, base: str, statuses: list[dict[str, Any]]) -> None:
    """`base` answers its #ichbinhanna tag timeline with `statuses` and nothing newer."""
    url = f"{base}/api/v1/timelines/tag/ichbinhanna"
    router.get(url, params={"min_id": statuses[0]["id"]}).mock(httpx.Response(200, json=[]))
    router.get(url).mock(httpx.Response(200, json=statuses))


def collect_mastodon(engine, instances: list[str]) -> None:
    """One run of a mastodon source following #ichbinhanna on `instances`, every page saved."""
    http = HttpClient(client(), sleep=lambda _: None)
    source = mastodon_source(hashtags=("ichbinhanna",), instance=instances)
    for page in MastodonConnector(source, http=http, env={}).fetch(None):
        save_page(engine, "mastodon", page)


# -- 5. a post seen on two Mastodon instances -----------------------------------------------------


@pytest.mark.parametrize("order", [[SOCIAL, TCHNCS], [TCHNCS, SOCIAL]])
def test_a_post_seen_on_two_instances_keeps_the_highest_count_each_instance_saw(db, order):
    social = status("mastodon.social", "2022-11-08", LEAPFROG)
    tchncs = status("social.tchncs.de", "2022-11-08", LEAPFROG)
    assert (social["favourites_count"], tchncs["favourites_count"]) == (4, 0)  # as recorded
    with respx.mock(assert_all_called=False) as router:
        tag_timeline(router, SOCIAL, page_of("mastodon.social", "2022-11-08"))
        tag_timeline(router, TCHNCS, page_of("social.tchncs.de", "2022-11-08"))
        collect_mastodon(db, order)

    row = stored(db, LEAPFROG)
    assert tuple(getattr(row, k) for k in COUNTS) == tuple(
        max(social[k], tchncs[k]) for k in STATUS_COUNTS
    )
    assert sightings(db, LEAPFROG) == {
        "mastodon.social #ichbinhanna": (*(social[k] for k in STATUS_COUNTS), social["id"]),
        "social.tchncs.de #ichbinhanna": (*(tchncs[k] for k in STATUS_COUNTS), tchncs["id"]),
    }


def test_a_later_copy_from_the_same_instance_is_the_truth_there_even_when_lower(db):
    with respx.mock(assert_all_called=False) as router:
        tag_timeline(router, SOCIAL, page_of("mastodon.social", "2022-11-08"))
        tag_timeline(router, TCHNCS, page_of("social.tchncs.de", "2022-11-08"))
        collect_mastodon(db, [SOCIAL, TCHNCS])
    later = status("mastodon.social", "2022-11-29", LEAPFROG)
    via = "mastodon.social #ichbinhanna"

    post = post_from_status(later, "mastodon.social")
    assert post is not None
    post.via = via
    save_page(db, "mastodon", Page([post]))  # three weeks on: more of everything
    assert (stored(db, LEAPFROG).likes, sightings(db, LEAPFROG)[via][0]) == (5, 5)

    # The same status as mastodon.social would give it after four of its five favourites were
    # withdrawn (the recorded status, only its count changed): that instance now says 1.
    unliked = post_from_status({**later, "favourites_count": 1}, "mastodon.social")
    assert unliked is not None
    unliked.via = via
    saved = save_page(db, "mastodon", Page([unliked]))
    assert saved.updated == 1
    assert sightings(db, LEAPFROG)[via][0] == 1
    assert stored(db, LEAPFROG).likes == 1  # the highest any instance now reports (tchncs: 0)
    assert stored(db, LEAPFROG).reposts == later["reblogs_count"]  # the other counts stay


def test_a_copy_without_counts_keeps_what_that_instance_said(db):
    first = post_from_status(status("social.tchncs.de", "2022-11-08", EICHHORN), "social.tchncs.de")
    assert first is not None
    first.via = "social.tchncs.de #ichbinhanna"
    save_page(db, "mastodon", Page([first]))
    silent = post_from_status(
        {**status("social.tchncs.de", "2022-11-08", EICHHORN), "replies_count": None},
        "social.tchncs.de",
    )
    assert silent is not None
    silent.via = first.via
    save_page(db, "mastodon", Page([silent]))
    assert stored(db, EICHHORN).replies == 2
    assert sightings(db, EICHHORN)[first.via][2] == 2


def test_an_older_database_gives_its_sightings_their_posts_counts(tmp_path):
    """A database made before sightings kept counts: opening it fills them from each post, so a
    copy from an instance that knows less cannot lower a count the old version stored."""
    db = tmp_path / "old.db"
    engine = open_database(f"sqlite:///{db}")
    social = post_from_status(status("mastodon.social", "2022-11-08", LEAPFROG), "mastodon.social")
    assert social is not None
    social.via = "mastodon.social #ichbinhanna"
    save_page(engine, "mastodon", Page([social]))
    engine.dispose()
    with closing(sqlite3.connect(db)) as conn:  # the sighting table as older versions made it
        for name in ("likes", "reposts", "replies", "quotes"):
            conn.execute(f"ALTER TABLE sighting DROP COLUMN {name}")
        for table in ("alembic_version", "moderationdecision"):  # made before migrations
            conn.execute(f"DROP TABLE {table}")
        conn.commit()

    engine = open_database(f"sqlite:///{db}")
    try:
        assert sightings(engine, LEAPFROG)["mastodon.social #ichbinhanna"][0] == 4
        tchncs = post_from_status(
            status("social.tchncs.de", "2022-11-08", LEAPFROG), "social.tchncs.de"
        )
        assert tchncs is not None
        tchncs.via = "social.tchncs.de #ichbinhanna"
        save_page(engine, "mastodon", Page([tchncs]))
        assert stored(engine, LEAPFROG).likes == 4
    finally:
        engine.dispose()


# -- 9. Mastodon: a status seen before and after its edit ------------------------------------------


@pytest.mark.parametrize("arrival", ["in order", "edit first"])
def test_a_status_seen_before_and_after_its_edit_is_one_post_with_the_edit(db, arrival):
    before, after = fixture("mastodon", "mastodonpy_status_edit.json")  # Mastodon.py's recording
    assert before["edited_at"] is None and after["edited_at"]
    copies = [post_from_status(s, "localhost") for s in (before, after)]
    if arrival == "edit first":
        copies.reverse()
    for copy in copies:
        assert copy is not None
        save_page(db, "mastodon", Page([copy]))

    with db.connect() as conn:
        rows = list(conn.execute(select(POSTS.c.post_id, POSTS.c.text, POSTS.c.edited_at)))
    assert len(rows) == 1 and rows[0].post_id == after["uri"]
    assert (
        rows[0].text == "the best editor? why, of course it is the KDE Advanced Text Editor, Kate"
    )
    assert rows[0].edited_at == datetime(2026, 8, 1, 13, 54, 0, 695000, tzinfo=UTC)


# -- 9. Bluesky: images, external links, quotes, quotes with media ---------------------------------


def test_bluesky_search_results_with_images_links_and_quotes():
    views = {(v.get("embed") or {}).get("$type"): v for v in fixture(
        "bluesky", "bskyr_searchPosts_redistricting.json")["posts"]}  # fmt: skip
    posts = {kind: post_from_view(view)[0] for kind, view in views.items()}

    images = views["app.bsky.embed.images#view"]["embed"]["images"]
    assert posts["app.bsky.embed.images#view"].media == [
        {"url": i["fullsize"], "type": "image", "alt": i["alt"] or None} for i in images
    ]
    external = views["app.bsky.embed.external#view"]["embed"]["external"]["uri"]
    assert external in posts["app.bsky.embed.external#view"].links
    assert posts["app.bsky.embed.external#view"].media == []
    quoted = views["app.bsky.embed.record#view"]["embed"]["record"]["uri"]
    assert posts["app.bsky.embed.record#view"].quote_of == quoted
    assert posts["app.bsky.embed.record#view"].media == []  # the quoted post's media are its own
    plain = posts[None]
    assert (plain.media, plain.quote_of) == ([], None)
    for kind, view in views.items():
        counts = (view["likeCount"], view["repostCount"], view["replyCount"], view["quoteCount"])
        assert (
            posts[kind].likes,
            posts[kind].reposts,
            posts[kind].replies,
            posts[kind].quotes,
        ) == (counts)


def test_bluesky_quotes_with_media_keep_the_quote_and_their_own_media_or_link():
    by_media = {v["embed"]["media"]["$type"]: v for v in fixture(
        "bluesky", "bskyr_postviews_recordWithMedia.json")}  # fmt: skip
    with_images = by_media["app.bsky.embed.images#view"]
    post, _ = post_from_view(with_images)
    assert post.quote_of == with_images["embed"]["record"]["record"]["uri"]
    assert [m["url"] for m in post.media] == [
        i["fullsize"] for i in with_images["embed"]["media"]["images"]
    ]
    with_link = by_media["app.bsky.embed.external#view"]
    post, _ = post_from_view(with_link)
    assert post.quote_of == with_link["embed"]["record"]["record"]["uri"]
    assert post.media == []
    assert with_link["embed"]["media"]["external"]["uri"] in post.links


# -- 6 and 9. feeds: dates in other languages, unreadable dates, enclosures ------------------------

MESSAGGERO = "https://www.ilmessaggero.it/rss/mondo.xml"


def feed_text(name: str) -> bytes:
    return (FIXTURES / "feeds" / name).read_bytes()


def feed_rs(name: str) -> dict[str, Any]:
    """feed-rs's own parse of the feed (its .serde.json)."""
    return fixture("feeds", name.replace(".xml", ".serde.json"))


def feed_posts(body: bytes, url: str = MESSAGGERO) -> Page:
    settings, problems = parse_feed({"url": url})
    assert settings is not None, problems
    http = HttpClient(client(), sleep=lambda _: None)
    with respx.mock() as router:
        router.get(url).mock(httpx.Response(200, content=body))
        (page,) = FeedConnector(SourceSpec("news", settings), http=http).fetch(None)
    return page


def enclosures(body: bytes) -> list[str]:
    """Every enclosure and Media RSS content URL of the feed's items, once each, in order."""
    media = "{http://search.yahoo.com/mrss/}content"
    found = [e.get("url") for e in ET.fromstring(body).iter() if e.tag in ("enclosure", media)]
    return list(dict.fromkeys(u for u in found if u))


def test_an_italian_pubdate_is_read_as_feed_rs_reads_it():
    name = "feed_rs_rss_2.0_ilmessaggero.xml"
    assert b"<pubDate>mer, 16 nov 2022 00:38:15 +0100</pubDate>" in feed_text(name)
    page = feed_posts(feed_text(name))
    (post,) = page.posts
    (entry,) = feed_rs(name)["entries"]
    assert post.created_at == datetime.fromisoformat(entry["published"])
    assert page.warnings == []


@pytest.mark.parametrize("name", ["feed_rs_rss_2.0_spiegel.xml", "feed_rs_rss_2.0_nightvale.xml"])
def test_podcast_enclosures_become_media_once_each(name):
    body = feed_text(name)
    (post,) = feed_posts(body, "https://podcast.example/feed.xml").posts
    assert [m["url"] for m in post.media] == enclosures(body)
    assert any(str(m["type"]).startswith("audio/") for m in post.media)
    (entry,) = feed_rs(name)["entries"]
    assert post.created_at == datetime.fromisoformat(entry["published"])


def test_an_image_enclosure_keeps_its_mime_type():
    (post,) = feed_posts(feed_text("feed_rs_rss_2.0_ilmessaggero.xml")).posts
    assert post.media == [{"url": enclosures(feed_text("feed_rs_rss_2.0_ilmessaggero.xml"))[0],
                           "type": "image/jpeg", "alt": None}]  # fmt: skip


UNREADABLE = b"<pubDate>data non disponibile</pubDate>"


def unreadable_feed() -> bytes:
    """Il Messaggero's feed with its date replaced by one no parser can read (the only change)."""
    body = feed_text("feed_rs_rss_2.0_ilmessaggero.xml")
    return body.replace(b"<pubDate>mer, 16 nov 2022 00:38:15 +0100</pubDate>", UNREADABLE)


def test_an_unreadable_date_is_no_time_and_a_warning_never_the_fetch_time():
    page = feed_posts(unreadable_feed())
    (post,) = page.posts
    assert undated(post.created_at) and post.edited_at is None
    (warning,) = page.warnings
    assert warning.startswith(f"feed {MESSAGGERO}: 1 entry kept with no time")
    assert "'data non disponibile'" in warning


def test_relative_or_partial_dates_are_not_guessed():
    for written in (b"ieri", b"2 hours ago", b"novembre 2022"):
        body = unreadable_feed().replace(UNREADABLE, b"<pubDate>" + written + b"</pubDate>")
        (post,) = feed_posts(body).posts
        assert undated(post.created_at), written


def test_a_later_copy_with_a_readable_date_gives_the_post_its_time(db):
    (no_time,) = feed_posts(unreadable_feed()).posts
    (timed,) = feed_posts(feed_text("feed_rs_rss_2.0_ilmessaggero.xml")).posts
    save_page(db, "news", Page([no_time]))
    assert stored(db, no_time.id).created_at == UNDATED
    save_page(db, "news", Page([timed]))
    assert stored(db, no_time.id).created_at == timed.created_at
    save_page(db, "news", Page([no_time]))  # a known time is never undone
    assert stored(db, no_time.id).created_at == timed.created_at


@respx.mock
def test_an_unreadable_date_is_stored_untagged_warned_in_status_and_exported_empty(project):
    """Done when: a feed entry with an unreadable date is stored untagged with a warning in
    `status`; the story leaves it out and exports show an empty time."""
    respx.get(MESSAGGERO).mock(httpx.Response(200, content=unreadable_feed()))
    cfg = project / "config.toml"
    text = cfg.read_text().replace("enabled = true", "enabled = false")
    cfg.write_text(text + f'\n[[sources]]\nname = "news"\ntype = "feed"\nurl = "{MESSAGGERO}"\n')
    assert invoke(project, "collect").exit_code == 0
    assert invoke(project, "tag").exit_code == 0

    status = json.loads(invoke(project, "status", "--json").output)
    (news,) = [s for s in status["runs"][-1]["sources"] if s["source"] == "news"]
    assert news["new_posts"] == 1
    assert any("kept with no time" in w for w in news["warnings"])

    config = load_config(cfg)
    engine = open_database(config.database_url)
    try:
        with engine.connect() as conn:
            (row,) = conn.execute(select(POSTS.c.id, POSTS.c.created_at))
            assert undated(row.created_at)
            tagged = conn.execute(select(ASSIGNMENTS).where(ASSIGNMENTS.c.post_pk == row.id))
            assert tagged.first() is None  # never placed in a session
            data = report_data(engine, conn, config, {})
        assert data.hidden["undated"] == 1
        assert data.totals == {} and data.minutes == {}  # in no part and no chart
    finally:
        engine.dispose()

    exported = invoke(project, "export", "--format", "csv")
    (record,) = csv.DictReader(io.StringIO(exported.output))
    assert (record["created_at"], record["created_local"], record["session_id"]) == ("", "", "")
    assert record["text"].startswith("Missili Polonia")
    line = json.loads(invoke(project, "export", "--format", "jsonl").output)
    assert line["created_at"] is None and line["created_local"] is None
