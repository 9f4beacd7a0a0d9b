"""Every connector's page-level entry point, fed a list of records in its real payload shape.

Shared by the isolation tests (cases 10 and 40) and the fuzz tests: `Harness.good(n)` is a real
record (from tests/fixtures) made unique by `n`, `Harness.post_id(n)` the id of the post it becomes,
and `Harness.read(records, tmp)` what the connector yields for a file, response or page holding them.
"""

from __future__ import annotations

import copy
import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import httpx
import respx

from connectors.archives import read_jsonl
from connectors.base import Page, SourceSpec
from connectors.bluesky import BlueskyConnector
from connectors.feeds import FeedConnector
from connectors.http import HttpClient
from connectors.mastodon import MastodonConnector
from connectors.settings import BlueskySettings, FeedSettings, MastodonSettings, XSettings
from connectors.tags import COLUMNS, read_tags
from connectors.twarc import read_twarc
from connectors.x import XConnector
from tests.helpers import EXAMPLE, client

FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime(2026, 11, 28, 13, tzinfo=UTC).timestamp()  # the clock every connector is given


def _line(name: str, number: int) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text().splitlines()[number])


INTERCHANGE = json.loads(EXAMPLE.read_text(encoding="utf-8").splitlines()[0])
V1 = _line("twarc/twarc1.jsonl", 0)
V2_FLAT = _line("twarc/twarc2_flat.jsonl", 1)  # a reply, with its author inlined
MASTODON = json.loads((FIXTURES / "mastodon/status_hashtag_stream_update.json").read_text())
BLUESKY = json.loads((FIXTURES / "bluesky/postviews.json").read_text())["salisbury"]
X_PAGE = json.loads((FIXTURES / "x/search_page1.json").read_text())
X_TWEET = X_PAGE["data"][0]
with (FIXTURES / "tags/archive.csv").open(newline="", encoding="utf-8") as _fh:
    TAGS_ROW = next(csv.DictReader(_fh))
SNOWFLAKE = 803236158464139264  # an X id of 2016-11-28
FEED_URL = "https://blog.example/tag/copro16/feed/"
JSON_TYPE = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Harness:
    name: str
    good: Callable[[int], Any]
    post_id: Callable[[int], str]
    read: Callable[[list[Any], Path], list[Page]]

    def __str__(self) -> str:
        return self.name


def _write_lines(records: list[Any], tmp: Path) -> Path:
    path = tmp / "archive.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


# -- archives -----------------------------------------------------------------------------------


def jsonl_good(n: int) -> dict[str, Any]:
    return {**INTERCHANGE, "id": f"good-{n}", "url": f"https://example.org/@x/good-{n}"}


def v1_good(n: int) -> dict[str, Any]:
    return {**copy.deepcopy(V1), "id": SNOWFLAKE + n, "id_str": str(SNOWFLAKE + n)}


def v2_good(n: int) -> dict[str, Any]:
    return {**copy.deepcopy(V2_FLAT), "id": str(SNOWFLAKE + n)}


def read_v2_page(records: list[Any], tmp: Path) -> list[Page]:
    page = {"data": records, "includes": {"users": [V2_FLAT["author"]]}, "meta": {}}
    return list(read_twarc(_write_lines([page], tmp)))


def tags_good(n: int) -> dict[str, str]:
    tweet_id = str(SNOWFLAKE + n)
    url = f"http://twitter.com/nhs_voices/statuses/{tweet_id}"
    return {**TAGS_ROW, "id_str": tweet_id, "status_url": url}


def read_tags_rows(records: list[dict[str, str]], tmp: Path) -> list[Page]:
    path = tmp / "archive.csv"
    # a lone surrogate becomes the bytes of invalid UTF-8, as a broken export would write it
    with path.open("w", newline="", encoding="utf-8", errors="surrogatepass") as fh:
        writer = csv.DictWriter(fh, COLUMNS)
        writer.writeheader()
        writer.writerows(records)
    return list(read_tags(path))


# -- live sources, each answering one page through respx ----------------------------------------


def as_json(body: Any) -> httpx.Response:
    """A JSON answer as a server sends it: ASCII with escapes, so even "\\ud800" travels."""
    return httpx.Response(200, content=json.dumps(body).encode(), headers=JSON_TYPE)


def mastodon_good(n: int) -> dict[str, Any]:
    status = copy.deepcopy(MASTODON)
    status.update(id=str(1000 + n), uri=f"https://origin.example/statuses/{n}")
    return status


def read_mastodon(records: list[Any], tmp: Path) -> list[Page]:
    source = SourceSpec("m", MastodonSettings(instances=("https://a.example",)), ("CoPro16",))
    with respx.mock(assert_all_called=False) as router:
        router.get(url__startswith="https://a.example/api/v1/timelines/tag/").mock(
            side_effect=[as_json(records), as_json([])]
        )
        http = HttpClient(client(), sleep=lambda _: None, clock=lambda: NOW)
        return list(MastodonConnector(source, http=http, env={}).fetch(None))


def bluesky_good(n: int) -> dict[str, Any]:
    view = copy.deepcopy(BLUESKY)
    view["uri"] = f"{view['uri']}{n}"
    return view


def read_bluesky(records: list[Any], tmp: Path) -> list[Page]:
    return bluesky_pages({"posts": records})


def bluesky_pages(body: Any) -> list[Page]:
    """What the Bluesky connector yields when the search answers `body` (and no cursor)."""
    env = {"AGGREGATOR_BLUESKY_HANDLE": "comms.example.org",
           "AGGREGATOR_BLUESKY_APP_PASSWORD": "abcd-efgh-ijkl-mnop"}  # fmt: skip
    source = SourceSpec("b", BlueskySettings(), ("CoPro16",))
    with respx.mock(base_url="https://bsky.social/xrpc", assert_all_called=False) as router:
        router.post("/com.atproto.server.createSession").respond(
            200, json={"accessJwt": "a", "refreshJwt": "r", "handle": "comms.example.org"}
        )
        router.get("/app.bsky.feed.searchPosts").mock(return_value=as_json(body))
        http = HttpClient(client(), sleep=lambda _: None, clock=lambda: NOW)
        bluesky = BlueskyConnector(source, http=http, env=env)
        return list(bluesky.fetch(None))


def x_good(n: int) -> dict[str, Any]:
    return {**copy.deepcopy(X_TWEET), "id": str(int(X_TWEET["id"]) + n)}


def read_x(records: list[Any], tmp: Path) -> list[Page]:
    return x_pages({**X_PAGE, "data": records, "meta": {"newest_id": X_TWEET["id"]}})


def x_pages(body: Any) -> list[Page]:
    """What the X connector yields when the recent search answers `body`."""
    source = SourceSpec("x", XSettings(), ("CoPro16",))
    with respx.mock(base_url="https://api.x.com/2/tweets/search") as router:
        router.get("/recent").mock(return_value=as_json(body))
        http = HttpClient(client(), sleep=lambda _: None, clock=lambda: NOW)
        env = {"AGGREGATOR_X_BEARER_TOKEN": "token"}
        x = XConnector(source, http=http, env=env, clock=lambda: NOW)
        return list(x.fetch(None))


def feed_good(n: int) -> dict[str, str]:
    return {
        "title": f"What the Transformathon taught us, part {n}",
        "link": f"https://blog.example/2016/11/29/part-{n}/",
        "guid": f"https://blog.example/?p={n}",
        "pubDate": "Tue, 29 Nov 2016 08:30:00 +0000",
        "author": "alison@example.org (Alison Cameron)",
        "description": "<p>Twelve hours about co-production: <a href='https://example.org/x'>x</a></p>",
    }


def rss(items: list[dict[str, str]]) -> bytes:
    """An RSS 2.0 document with these items (each value XML-escaped; any element name)."""
    body = "".join(
        "<item>" + "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in item.items()) + "</item>"
        for item in items
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Patient Voices</title><link>https://blog.example</link>{body}</channel></rss>"
    ).encode("utf-8", "surrogatepass")


def read_feed(records: list[dict[str, str]], tmp: Path) -> list[Page]:
    source = SourceSpec("news", FeedSettings(urls=(FEED_URL,)), ("CoPro16",))
    with respx.mock() as router:
        router.get(FEED_URL).respond(
            200, content=rss(records), headers={"Content-Type": "application/rss+xml"}
        )
        http = HttpClient(client(), sleep=lambda _: None, clock=lambda: NOW)
        return list(FeedConnector(source, http=http, clock=lambda: NOW).fetch(None))


HARNESSES = {
    h.name: h
    for h in (
        Harness("jsonl", jsonl_good, lambda n: f"good-{n}",
                lambda r, tmp: list(read_jsonl(_write_lines(r, tmp)))),
        Harness("twarc-v1", v1_good, lambda n: str(SNOWFLAKE + n),
                lambda r, tmp: list(read_twarc(_write_lines(r, tmp)))),
        Harness("twarc-v2-flat", v2_good, lambda n: str(SNOWFLAKE + n),
                lambda r, tmp: list(read_twarc(_write_lines(r, tmp)))),
        Harness("twarc-v2-page", v2_good, lambda n: str(SNOWFLAKE + n), read_v2_page),
        Harness("tags", tags_good, lambda n: str(SNOWFLAKE + n), read_tags_rows),
        Harness("mastodon", mastodon_good, lambda n: f"https://origin.example/statuses/{n}",
                read_mastodon),
        Harness("bluesky", bluesky_good, lambda n: f"{BLUESKY['uri']}{n}", read_bluesky),
        Harness("x", x_good, lambda n: str(int(X_TWEET["id"]) + n), read_x),
        Harness("feed", feed_good, lambda n: f"https://blog.example/?p={n}", read_feed),
    )
}  # fmt: skip


def posts_by_id(pages: list[Page]) -> dict[str, Any]:
    return {p.id: p for page in pages for p in page.posts}


def quarantined(pages: list[Page]) -> list[Any]:
    return [q for page in pages for q in page.quarantined]
