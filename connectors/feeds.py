"""RSS and Atom feeds: conditional GET through the shared HTTP layer, safe parsing, optional filter.

Cursor: {"feeds": {"<feed url>": {"etag": str | None, "last_modified": str | None}}}. Feeds do
not page: every run asks each feed once (If-None-Match / If-Modified-Since) and yields one Page.
One feed failing does not stop the others: their pages are yielded, then one error is raised.

An entry's date is read by feedparser (RFC 822, ISO 8601 and the other feed formats), else by
dateparser (dates written in other languages: "mer, 16 nov 2022 00:38:15 +0100"); an entry with
no date either can read is stored with no time (connectors.undated), and the page warns about it.
"""

from __future__ import annotations

import calendar
import copy
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import urlsplit
from xml.etree.ElementTree import ParseError

import dateparser
import defusedxml.ElementTree as SafeET
import feedparser
from defusedxml import DefusedXmlException

from connectors.base import ConnectorError, Page, Post, SourceSpec, each_isolated, isolate
from connectors.html import HASHTAG_RE, html_to_text, links_in_html, links_in_text, sanitize_html
from connectors.http import HttpClient
from connectors.settings import FeedSettings
from connectors.undated import UNDATED, undated
from connectors.values import brief, in_window

__all__ = ["FeedConnector", "check_safe_xml", "post_from_entry"]


ACCEPT = (
    "application/atom+xml, application/rss+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.1"
)
ENTITY_RE = re.compile(rb"<!ENTITY", re.I)
MASTODON_LINK_RE = re.compile(r"https?://([^/@]+)/@([\w.-]+)/[\w-]+$")
DATE_CHARS = 100  # a date is ~30 characters: longer text is not one, and is not read further
# dateparser reads only dates written out whole, with day, month and year: never "yesterday" or
# "2 hours ago" (relative to the clock of whoever reads it), never a month alone (it would make up
# the day). A date without a zone is UTC, as feedparser takes it.
DATE_SETTINGS = {
    "PARSERS": ["absolute-time"],
    "REQUIRE_PARTS": ["day", "month", "year"],
    "TIMEZONE": "UTC",
    "RETURN_AS_TIMEZONE_AWARE": True,
}


class FeedConnector:
    """A `feed` source: one or more RSS/Atom URLs (http or https only)."""

    def __init__(
        self,
        spec: SourceSpec[FeedSettings],
        *,
        http: HttpClient,
        **_: Any,
    ) -> None:
        self.name = spec.name
        self.urls = spec.settings.urls
        self.filter = spec.settings.filter
        self.hashtags = [t.lower() for t in spec.hashtags]
        self.http = http.retrying(spec.settings.retry)

    def fetch(self, cursor: Mapping[str, Any] | None) -> Iterator[Page]:
        """One Page per feed, each carrying the whole cursor to save after it."""
        feeds = (cursor or {}).get("feeds")
        state: dict[str, Any] = copy.deepcopy(dict(feeds)) if isinstance(feeds, Mapping) else {}

        def feed(url: str) -> Iterator[Page]:
            yield self._fetch_one(self.http, url, state)

        yield from each_isolated(self.name, self.urls, feed)

    def _fetch_one(self, http: HttpClient, url: str, state: dict[str, Any]) -> Page:
        saved = state.get(url)
        saved = saved if isinstance(saved, Mapping) else {}
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
        """The feed's entries as posts; an entry that cannot be read is quarantined on `page`, and
        entries kept with no time are named in one warning on it."""
        posts = isolate(
            parsed.entries,
            lambda entry: post_from_entry(entry, parsed.feed, url),
            lambda n, entry: f"feed {url} entry {n + 1}",
            page,
        )
        kept = [p for p in posts if self.filter == "all" or mentions_hashtags(p, self.hashtags)]
        if timeless := [p for p in kept if undated(p.created_at)]:
            page.warnings.append(undated_warning(url, timeless))
        return kept


def undated_warning(url: str, posts: list[Post]) -> str:
    """One line for the entries of a feed stored with no time: how many, and the first's date as
    the feed wrote it (or that it has none), so the feed's owner can be told what to fix."""
    raw = posts[0].raw
    given = next((raw[k] for k in ("published", "updated") if raw.get(k)), None)
    shown = f"dates such as {brief(str(given), 60)} cannot be read" if given else "no date given"
    entries = "1 entry" if len(posts) == 1 else f"{len(posts)} entries"
    return (
        f"feed {url}: {entries} kept with no time ({shown}): "
        "left out of every session and the story's timeline, exported with an empty time"
    )


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


def post_from_entry(entry: Any, feed: Any, feed_url: str) -> Post:
    """A feedparser entry -> Post; with no readable date, its time is UNDATED.

    :raises ValueError: when it has neither an id nor a link, or a date outside the years accepted.
    """
    link = entry.get("link") if str(entry.get("link", "")).startswith("http") else None
    guid = entry.get("id") or link
    if not guid:
        raise ValueError("no id, guid or link")
    body_html, plain = _body_html(entry)
    title = _text(entry.get("title_detail"), entry.get("title"))
    body = html_to_text(body_html)
    text = body if title and body.startswith(title.rstrip(".… ")) else f"{title}\n\n{body}".strip()
    tags = [str(t.get("term") or "").lstrip("#＃") for t in entry.get("tags") or []]
    updated = _when(entry, "updated")
    published = _when(entry, "published") or updated
    return Post(
        platform="feed",
        # A bare guid such as "42" is only unique within its feed: qualify it with the feed URL.
        id=guid if ":" in guid else f"{feed_url}#{guid}",
        created_at=published or UNDATED,
        edited_at=updated if updated and updated != published else None,
        author=_author(entry, feed, feed_url, link),
        author_name=entry.get("author") or None,
        text=text,
        html=sanitize_html(body_html),
        url=link,
        lang=feed.get("language") or None,
        hashtags=list(dict.fromkeys(t for t in [*tags, *HASHTAG_RE.findall(text)] if t)),
        links=list(dict.fromkeys(u for u in [link, *links_in_html(body_html), *plain] if u)),
        media=_media(entry),
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


def _media(entry: Any) -> list[dict[str, Any]]:
    """Enclosures (a podcast's audio, an article's picture) and Media RSS content, each URL once
    (a podcast often gives its audio as both), typed by MIME type, else Media RSS's medium."""
    found: dict[str, dict[str, Any]] = {}
    for item in [*(entry.get("enclosures") or []), *(entry.get("media_content") or [])]:
        url = item.get("href") or item.get("url")
        if isinstance(url, str) and url.strip() and url not in found:
            found[url] = {"url": url, "type": item.get("type") or item.get("medium"), "alt": None}
    return list(found.values())


def _when(entry: Any, what: str) -> datetime | None:
    """The entry's `published` or `updated` time as aware UTC, within the accepted years: as
    feedparser read it (its struct_time is UTC), else the text read by dateparser; None when the
    entry has none or neither can read it."""
    # dict.get: feedparser's own .get("updated_parsed") falls back to published, with a warning.
    parsed = dict.get(entry, f"{what}_parsed")
    if parsed:
        moment = datetime.fromtimestamp(calendar.timegm(parsed), UTC)
        return in_window(moment, what, moment.isoformat())
    text = dict.get(entry, what)
    if not isinstance(text, str) or not text.strip() or len(text) > DATE_CHARS:
        return None
    read = dateparser.parse(text, settings=DATE_SETTINGS)
    return in_window(read, what, text) if read else None


def _jsonable(value: Any) -> Any:
    """feedparser's dicts and struct_times -> plain JSON types for the raw payload."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items() if not str(k).endswith("_parsed")}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)
