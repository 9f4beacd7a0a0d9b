"""connectors/feeds.py: conditional GET, safe parsing, encodings, failures, filters, URL refusal."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest
import respx

from connectors.base import ConnectorError, Page, SourceSpec
from connectors.feeds import FeedConnector
from connectors.http import HttpClient
from connectors.settings import parse_feed
from connectors.undated import undated
from tests.helpers import client, invoke

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"
MASTO = "https://mastodon.example/tags/copro16.rss"
BLOG = "https://blog.example/tag/copro16/feed/"
TUBE = "https://www.youtube.com/feeds/videos.xml?channel_id=UCexample000000000000000"
NOW = datetime(2016, 12, 1, 9, 0, tzinfo=UTC)


def feed_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def xml(body: bytes, **headers: str) -> httpx.Response:
    return httpx.Response(
        200, content=body, headers={"Content-Type": "application/rss+xml", **headers}
    )


def connector(
    config, url: Any = MASTO, sleeps: list | None = None, **options: Any
) -> FeedConnector:
    """A connector for a feed source with these settings, following `config`'s event hashtags."""
    settings, problems = parse_feed({"url": url, **options})
    assert settings is not None, problems
    sleeps = [] if sleeps is None else sleeps
    http = HttpClient(client(), sleep=sleeps.append, clock=NOW.timestamp)
    source = SourceSpec("news", settings, config.event.hashtags)
    return FeedConnector(source, http=http, clock=NOW.timestamp)


def run(conn: FeedConnector, cursor: dict | None = None) -> list[Page]:
    pages = list(conn.fetch(cursor))
    for page in pages:
        json.dumps(page.cursor)
        for post in page.posts:
            json.dumps(post.raw)  # the raw payload is stored as JSON
    return pages


@respx.mock
def test_mastodon_tag_rss_maps_to_posts(config):
    respx.get(MASTO).mock(return_value=xml(feed_bytes("mastodon_tag.rss")))
    (page,) = run(connector(config))
    first, second = page.posts
    assert (
        first.platform == "feed"
        and first.id == "https://mastodon.example/@carol/113550000000000002"
    )
    assert first.url == first.id and first.via == MASTO
    assert first.author == "carol@mastodon.example"  # tag RSS has no author: taken from the link
    assert (
        first.text
        == "Co-production means equal partners & shared power. #CoPro16 https://example.org/leeds"
    )
    assert first.hashtags == ["copro16", "nhs", "CoPro16"]
    assert first.links == [first.url, "https://example.org/leeds"]
    assert first.media == [
        {"url": "https://files.mastodon.example/media/1.png", "type": "image/png", "alt": None}
    ]
    assert first.created_at == datetime(2016, 11, 28, 13, 5, tzinfo=UTC)
    assert second.hashtags == ["everyoneincluded", "EveryoneIncluded"]


@respx.mock
def test_wordpress_feed_uses_content_sanitised_and_author(config):
    respx.get(BLOG).mock(return_value=xml(feed_bytes("wordpress_tag.rss")))
    (page,) = run(connector(config, BLOG))
    post = page.posts[0]
    assert post.id == "https://blog.example/?p=123" and post.author == "Alison Cameron"
    assert post.text.startswith("What the Transformathon taught us\n\nTwelve hours of conversation")
    assert "alert" not in post.text and "<script" not in post.html and "onerror" not in post.html
    assert "https://example.org/six-principles" in post.links
    assert post.hashtags == ["Events", "CoPro16"] and post.lang == "en-GB"


@respx.mock
def test_youtube_atom_keeps_published_and_updated(config):
    respx.get(TUBE).mock(return_value=xml(feed_bytes("youtube_channel.atom")))
    (page,) = run(connector(config, TUBE))
    (post,) = page.posts
    assert (
        post.id == "yt:video:abcDEF12345"
        and post.url == "https://www.youtube.com/watch?v=abcDEF12345"
    )
    assert post.created_at == datetime(2016, 11, 28, 18, 0, tzinfo=UTC)
    assert post.edited_at == datetime(2016, 11, 30, 9, 15, tzinfo=UTC)
    assert post.hashtags == ["covmindthegap", "CoPro16"] and post.author == "NHS Engagement"


@respx.mock
def test_hashtag_filter_keeps_only_entries_that_carry_or_mention_the_tags(config):
    respx.get(BLOG).mock(return_value=xml(feed_bytes("wordpress_tag.rss")))
    plain = b"""<rss version="2.0"><channel><title>t</title>
      <item><guid>https://n.example/1</guid><title>Notes from copro16 day</title></item>
      <item><guid>https://n.example/2</guid><title>Unrelated; CoPro161 is another tag</title></item>
    </channel></rss>"""
    respx.get("https://n.example/rss").mock(return_value=xml(plain))
    pages = run(connector(config, [BLOG, "https://n.example/rss"], filter="hashtags"))
    kept = [p.id for page in pages for p in page.posts]
    assert kept == ["https://blog.example/?p=123", "https://n.example/1"]
    everything = run(connector(config, BLOG))
    assert len(everything[0].posts) == 2  # all entries by default


@respx.mock
def test_conditional_get_sends_validators_and_304_is_no_new_posts(config):
    route = respx.get(MASTO).mock(
        side_effect=[
            xml(
                feed_bytes("mastodon_tag.rss"),
                ETag='W/"abc"',
                **{"Last-Modified": "Mon, 28 Nov 2016 14:00:00 GMT"},
            ),
            httpx.Response(304),
        ]
    )
    (first,) = run(connector(config))
    assert first.cursor == {
        "feeds": {MASTO: {"etag": 'W/"abc"', "last_modified": "Mon, 28 Nov 2016 14:00:00 GMT"}}
    }
    (second,) = run(connector(config), first.cursor)
    sent = route.calls.last.request.headers
    assert (
        sent["if-none-match"] == 'W/"abc"'
        and sent["if-modified-since"] == "Mon, 28 Nov 2016 14:00:00 GMT"
    )
    assert second.posts == [] and second.cursor == first.cursor


@pytest.mark.parametrize("status", [404, 410, 500])
@respx.mock
def test_case_15_http_failure_is_an_error_not_zero_entries_others_still_run(config, status):
    respx.get(BLOG).mock(return_value=httpx.Response(status, text="gone"))
    respx.get(MASTO).mock(return_value=xml(feed_bytes("mastodon_tag.rss")))
    pages: list[Page] = []
    with pytest.raises(ConnectorError) as info:
        for page in connector(config, [BLOG, MASTO]).fetch(None):
            pages.append(page)
    assert len(pages) == 1 and len(pages[0].posts) == 2
    assert f"source 'news': GET {BLOG} failed: HTTP {status}" in str(info.value)


@pytest.mark.parametrize("name", ["billion_laughs.xml", "external_entity.xml"])
@respx.mock
def test_case_15_entity_declarations_are_refused_before_parsing(config, monkeypatch, name):
    def never(*args, **kwargs):
        raise AssertionError("feedparser must not see this document")

    monkeypatch.setattr(feedparser, "parse", never)
    respx.get(MASTO).mock(return_value=xml(feed_bytes(name)))
    with pytest.raises(
        ConnectorError, match=f"feed {MASTO} is not a safe feed \\(entity declarations\\)"
    ):
        run(connector(config))


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
@respx.mock
def test_case_15_entity_declarations_cannot_hide_in_another_encoding(config, encoding):
    text = feed_bytes("billion_laughs.xml").decode().replace('<?xml version="1.0"?>', "")
    respx.get(MASTO).mock(return_value=xml(text.encode(encoding)))
    with pytest.raises(ConnectorError, match="not a safe feed"):
        run(connector(config))


@respx.mock
def test_case_15_wrong_encoding_is_parsed_and_flagged(config):
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        "<item><guid>https://c.example/1</guid><title>Caf\xe9 chat #CoPro16</title></item></channel></rss>"
    ).encode("latin-1")  # declared UTF-8, really Latin-1
    respx.get(MASTO).mock(return_value=xml(body))
    (page,) = run(connector(config))
    assert page.posts[0].text == "Café chat #CoPro16"
    assert page.warnings and "declared as utf-8" in page.warnings[0]


@respx.mock
def test_a_page_that_is_not_a_feed_is_an_error(config):
    respx.get(MASTO).mock(return_value=httpx.Response(200, text="<html><body>Log in</body></html>"))
    with pytest.raises(ConnectorError, match="is not an RSS or Atom feed"):
        run(connector(config))


@respx.mock
def test_case_14_a_feed_over_the_size_cap_is_aborted(config):
    respx.get(MASTO).mock(return_value=xml(b"<rss>" + b" " * (21 * 1024 * 1024)))
    with pytest.raises(ConnectorError, match="cap"):
        run(connector(config))


@respx.mock
def test_entries_without_id_are_rejected_and_bare_guids_qualified(config):
    body = b"""<rss version="2.0"><channel><title>t</title>
      <item><title>no id at all</title></item>
      <item><guid isPermaLink="false">42</guid><title>bare guid</title></item>
    </channel></rss>"""
    respx.get(MASTO).mock(return_value=xml(body))
    (page,) = run(connector(config))
    assert page.rejected == [f"feed {MASTO} entry 1: no id, guid or link"]
    assert [p.id for p in page.posts] == [f"{MASTO}#42"]
    assert undated(page.posts[0].created_at)  # no date in the entry: no time, never the fetch time
    assert page.warnings == [
        f"feed {MASTO}: 1 entry kept with no time (no date given): left out of every session and "
        "the story's timeline, exported with an empty time"
    ]


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "gopher://example.org/1",
        "/etc/passwd",
        "feeds/local.xml",
        "ftp://x/y.rss",
        "https://",
    ],
)
def test_case_16_non_http_urls_are_refused_before_any_fetch(project, url):
    cfg = project / "config.toml"
    toml_url = json.dumps(url)  # a TOML basic string is a JSON string
    cfg.write_text(cfg.read_text() + f'\n[[sources]]\nname = "news"\ntype = "feed"\n'
                   f'url = ["https://ok.example/feed", {toml_url}]\n')  # fmt: skip
    with respx.mock(assert_all_called=False) as router:
        catch_all = router.route().mock(return_value=httpx.Response(200))
        result = invoke(project, "collect")
    assert result.exit_code == 2, result.output
    assert f"sources[4].url: {url!r} is not an http(s) URL" in result.output
    assert catch_all.call_count == 0


def test_unknown_filter_is_refused():
    settings, problems = parse_feed({"url": MASTO, "filter": "some"})
    assert settings is None
    assert problems == ['filter: must be "all" or "hashtags" (got \'some\')']
