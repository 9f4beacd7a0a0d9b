"""RSS and Atom feeds: conditional GET through the shared HTTP layer, safe parsing, optional filter.

Cursor: {"feeds": {"<feed url>": {"etag": str | None, "last_modified": str | None}}}. Feeds do
not page: every run asks each feed once (If-None-Match / If-Modified-Since) and yields one Page.
One feed failing does not stop the others: their pages are yielded, then one error is raised.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import urlsplit
from xml.etree.ElementTree import ParseError

import defusedxml.ElementTree as SafeET
import feedparser
from defusedxml import DefusedXmlException

from connectors.base import ConnectorError, Page, Post, SourceSpec, each_isolated, isolate
from connectors.html import HASHTAG_RE, html_to_text, links_in_html, links_in_text, sanitize_html
from connectors.http import HttpClient
from connectors.settings import FeedSettings
from connectors.values import in_window

__all__ = ["FeedConnector", "check_safe_xml", "post_from_entry"]


ACCEPT = (
    "application/atom+xml, application/rss+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.1"
)
ENTITY_RE = re.compile(rb"<!ENTITY", re.I)
MASTODON_LINK_RE = re.compile(r"https?://([^/@]+)/@([\w.-]+)/[\w-]+$")


class FeedConnector:
    """A `feed` source: one or more RSS/Atom URLs (http or https only)."""

    def __init__(
        self,
        spec: SourceSpec[FeedSettings],
        *,
        http: HttpClient,
        clock: Callable[[], float] | None = None,
        **_: Any,
    ) -> None:
        self.name = spec.name
        self.urls = spec.settings.urls
        self.filter = spec.settings.filter
        self.hashtags = [t.lower() for t in spec.hashtags]
        self.http = http.retrying(spec.settings.retry)
        self._clock = clock or time.time

    def fetch(self, cursor: Mapping[str, Any] | None) -> Iterator[Page]:
        """One Page per feed, each carrying the whole cursor to save after it."""
        feeds = (cursor or {}).get("feeds")
        state: dict[str, Any] = copy.deepcopy(dict(feeds)) if isinstance(feeds, Mapping) else {}

        def feed(url: str) -> Iterator[Page]:
            yield self._fetch_one(self.http, url, state)

        yield from each_isolated(self.name, self.urls, feed)

    def _fetch_one(self, http: HttpClient, url: str, state: dict[str, Any]) -> Page:
        saved = state.get(url) if isinstance(state.get(url), Mapping) else {}
        headers = {"Accept": ACCEPT}
        if saved.get("etag"):
            headers["If-None-Match"] = str(saved["etag"])
        if saved.get("last_modified"):
            headers["If-Modified-Since"] = str(saved["last_modified"])
        before = http.waits
        resp = http.get(url, headers=headers)  # 404, 500 and friends raise: never "0 entries"
        waits = http.waits - before
        if resp.status == 304:
            return Page(posts=[], cursor={"feeds": copy.deepcopy(state)}, waits=waits)
        check_safe_xml(resp.content, url)
        parsed = feedparser.parse(
            resp.content,
            response_headers={
                "content-type": resp.headers.get("content-type", "application/xml"),
                "content-location": resp.url,
            },
        )
        problem = parsed.get("bozo_exception")
        if not parsed.get("version") and not parsed.entries:
            why = f" ({type(problem).__name__}: {problem})" if problem else ""
            raise ConnectorError(f"feed {url} is not an RSS or Atom feed{why}")
        warnings = (
            [f"feed {url}: parsed despite a problem: {problem}"] if parsed.get("bozo") else []
        )
        state[url] = {
            "etag": resp.headers.get("etag"),
            "last_modified": resp.headers.get("last-modified"),
        }
        page = Page([], {"feeds": copy.deepcopy(state)}, warnings=warnings, waits=waits)
        page.posts = self._posts(parsed, url, page)
        return page

    def _posts(self, parsed: Any, url: str, page: Page) -> list[Post]:
        """The feed's entries as posts; an entry that cannot be read is quarantined on `page`."""
        fetched_at = datetime.fromtimestamp(self._clock(), UTC)
        posts = isolate(
            parsed.entries,
            lambda entry: post_from_entry(entry, parsed.feed, url, fetched_at),
            lambda n, entry: f"feed {url} entry {n + 1}",
            page,
        )
        return [p for p in posts if self.filter == "all" or mentions_hashtags(p, self.hashtags)]


def check_safe_xml(content: bytes, url: str) -> None:
    """Refuse entity declarations (billion laughs, external entities) before anything parses them.

    :raises ConnectorError: naming the feed.
    """
    refused = ConnectorError(f"feed {url} is not a safe feed (entity declarations)")
    # Seen through NULs so UTF-16/32 cannot hide the declaration; the parser check backs it up.
    if ENTITY_RE.search(content[:1_000_000].replace(b"\0", b"")):
        raise refused
    try:
        SafeET.fromstring(content, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise refused from None
    except (ParseError, ValueError, LookupError):
        pass  # not well-formed XML: feedparser's loose parser copes and flags it as bozo


def post_from_entry(entry: Any, feed: Any, feed_url: str, fetched_at: datetime) -> Post:
    """A feedparser entry -> Post. :raises ValueError: when it has neither an id nor a link."""
    link = entry.get("link") if str(entry.get("link", "")).startswith("http") else None
    guid = entry.get("id") or link
    if not guid:
        raise ValueError("no id, guid or link")
    body_html, plain = _body_html(entry)
    title = _text(entry.get("title_detail"), entry.get("title"))
    body = html_to_text(body_html)
    text = body if title and body.startswith(title.rstrip(".… ")) else f"{title}\n\n{body}".strip()
    tags = [str(t.get("term") or "").lstrip("#＃") for t in entry.get("tags") or []]
    # dict.get: feedparser's own .get("updated_parsed") falls back to published, with a warning.
    updated = dict.get(entry, "updated_parsed")
    published = dict.get(entry, "published_parsed") or updated
    return Post(
        platform="feed",
        # A bare guid such as "42" is only unique within its feed: qualify it with the feed URL.
        id=guid if ":" in guid else f"{feed_url}#{guid}",
        created_at=_time(published, "published") or fetched_at,
        edited_at=_time(updated, "updated") if updated and updated != published else None,
        author=_author(entry, feed, feed_url, link),
        author_name=entry.get("author") or None,
        text=text,
        html=sanitize_html(body_html),
        url=link,
        lang=feed.get("language") or None,
        hashtags=list(dict.fromkeys(t for t in [*tags, *HASHTAG_RE.findall(text)] if t)),
        links=list(dict.fromkeys(u for u in [link, *links_in_html(body_html), *plain] if u)),
        media=[
            {"url": e.get("href") or e.get("url"), "type": e.get("type"), "alt": None}
            for e in [*(entry.get("enclosures") or []), *(entry.get("media_content") or [])]
        ],
        via=feed_url,
        raw=_jsonable(entry),
    )


def mentions_hashtags(post: Post, hashtags: list[str]) -> bool:
    """True when the entry carries one of `hashtags` as a category, or names it in its text."""
    if {h.lower() for h in post.hashtags} & set(hashtags):
        return True
    return any(re.search(rf"(?<!\w){re.escape(tag)}(?!\w)", post.text, re.I) for tag in hashtags)


def _body_html(entry: Any) -> tuple[str, list[str]]:
    """The body as HTML: the first HTML content or summary; plain text is escaped, not parsed.
    With it, the links written out in a plain-text body (an HTML body has its hrefs)."""
    # Mastodon's tag RSS puts media:description into `content` as text/plain: prefer real HTML.
    details = [*(entry.get("content") or []), entry.get("summary_detail") or {}]
    details = [d for d in details if d.get("value")]
    detail = next((d for d in details if "html" in str(d.get("type", "html"))), None)
    if detail is not None:
        return str(detail["value"]), []
    if details:
        text = str(details[0]["value"])
        return "<p>" + escape(text).replace("\n", "<br>") + "</p>", links_in_text(text)
    return str(entry.get("summary") or ""), []


def _author(entry: Any, feed: Any, feed_url: str, link: str | None) -> str:
    """The entry's author, else the Mastodon account in its link, else the feed's title or host."""
    if str(entry.get("author") or "").strip():
        return str(entry["author"])
    account = MASTODON_LINK_RE.match(link or "")
    if account:
        return f"{account.group(2)}@{account.group(1)}"
    named = (feed.get("author"), feed.get("title"), urlsplit(feed_url).hostname)
    return next((str(n) for n in named if str(n or "").strip()), feed_url)


def _text(detail: Any, value: Any) -> str:
    if not value:
        return ""
    return (
        html_to_text(value) if detail and "html" in str(detail.get("type")) else str(value).strip()
    )


def _time(parsed: Any, what: str) -> datetime | None:
    """feedparser's struct_time (already UTC) -> aware datetime, within the accepted years."""
    if not parsed:
        return None
    moment = datetime(*parsed[:6], tzinfo=UTC)
    return in_window(moment, what, moment.isoformat())


def _jsonable(value: Any) -> Any:
    """feedparser's dicts and struct_times -> plain JSON types for the raw payload."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items() if not str(k).endswith("_parsed")}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)
