"""Bluesky's Jetstream: the network's new posts as they are made, over a WebSocket.

The stream is subscribed to `app.bsky.feed.post` only; a post is kept when its facets, its record's
`tags` or its text carry one of the source's hashtags (any case). Creates and updates become posts
shaped as the `bluesky` search source stores them (`connectors.bluesky.post_from_view`, from a post
view made of the commit), so a post both sources find is one post. A delete marks a post deleted
(its content emptied) when it is one this source keeps: seen in this stream, or stored
(`stored`, lent by the caller, says which ids are).

The cursor is `{"time_us": N}`, the time of the last event read, saved with each page: a restart
asks the server for the events from a few seconds before it, and storage's upsert on the post's
AT URI absorbs the repeats. A resume whose first event is later than the cursor by more than a
tolerance reached past what the server keeps: the page says so as a gap warning.

`fetch` yields a page every `max_batch` posts or every `batch_seconds`. With `follow` (`aggregator
live`) it runs until `stop` says to stop; without it (`collect`, the nightly job) it catches up
from the cursor to the moment it started and ends. A dropped connection is reconnected with capped
exponential backoff through `sleep` (a StopFlag's ends the wait).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import websockets
import zstandard
from websockets.sync.client import ClientConnection, connect

from connectors.base import ConnectorError, Page, Post, SourceSpec, isolate, reason
from connectors.bluesky import post_from_view
from connectors.http import USER_AGENT
from connectors.settings import JetstreamSettings
from connectors.values import brief

__all__ = ["JetstreamConnector", "post_from_commit"]

log = logging.getLogger(__name__)
POST = "app.bsky.feed.post"
MAX_MESSAGE = 1 << 20  # bytes the server is asked to send at most (maxMessageSizeBytes)
MAX_RECEIVED = 4 << 20  # a larger frame closes the connection (websockets' max_size)
MAX_HANDLES = 10_000  # handles remembered from identity events, newest kept
BACKOFF_SECONDS = 1.0  # the first reconnect's wait; doubled each failure up to max_backoff_seconds
HASH_SIGNS = "#＃"
Stored = Callable[[str, Collection[str]], Collection[str]]


def _iso(time_us: int) -> str:
    moment = datetime.fromtimestamp(time_us / 1e6, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def post_from_commit(
    event: Mapping[str, Any], handle: str | None = None
) -> tuple[Post, str | None]:
    """A create or update commit of `app.bsky.feed.post` -> (Post, a warning or None), as the
    search source stores the same post: its post view made of the commit (the author's DID as its
    handle unless `handle` is known, indexedAt from time_us). An update's time is its `edited_at`.
    Raises ValueError naming the bad field."""
    commit = event["commit"]
    did, rkey = event.get("did"), commit.get("rkey")
    if not isinstance(did, str) or not did.startswith("did:") or not isinstance(rkey, str):
        raise ValueError(f"did {brief(did)} or rkey {brief(rkey)} is not an account and a key")
    if not rkey or "/" in rkey or not did[4:] or "/" in did:
        raise ValueError(f"did {brief(did)} or rkey {brief(rkey)} cannot make an AT URI")
    view = {
        "uri": f"at://{did}/{POST}/{rkey}",
        "cid": commit.get("cid"),
        "author": {"did": did, "handle": handle or did},
        "record": commit.get("record"),
        "indexedAt": _iso(event["time_us"]),
    }
    post, note = post_from_view(view)
    if commit.get("operation") == "update":
        post.edited_at = datetime.fromtimestamp(event["time_us"] / 1e6, UTC)
    return post, note


def _deleted(event: Mapping[str, Any]) -> Post:
    """A delete commit as the deletion of its post: content emptied, deleted at the event's time
    (also its `edited_at`, so the empty copy wins over any earlier one)."""
    commit = event["commit"]
    did, rkey = event.get("did"), commit.get("rkey")
    if not isinstance(did, str) or not isinstance(rkey, str) or not rkey or "/" in rkey:
        raise ValueError(f"did {brief(did)} or rkey {brief(rkey)} cannot make an AT URI")
    when = datetime.fromtimestamp(event["time_us"] / 1e6, UTC)
    uri = f"at://{did}/{POST}/{rkey}"
    return Post(platform="bluesky", id=uri, created_at=when, author=did, text="", deleted=True,
                edited_at=when, url=f"https://bsky.app/profile/{did}/post/{rkey}",
                raw=dict(event))  # fmt: skip


def _time_us(event: Any) -> int:
    value = event.get("time_us") if isinstance(event, Mapping) else None
    if type(value) is not int or not 0 < value < 4_102_444_800_000_000:  # before 2100
        raise ValueError(f"time_us {brief(value)} is not a time in microseconds")
    return value


@dataclass
class _Batch:
    """What is read since the last page: the page growing, and the deletions and edits of posts
    that do not carry the hashtags, kept only if the post is one this source keeps."""

    started: float
    page: Page = field(default_factory=lambda: Page(posts=[]))
    maybe: list[Post] = field(default_factory=list)
    newest: int | None = None  # the latest time_us read
    read: int = 0  # events read

    def size(self) -> int:
        return len(self.page.posts) + len(self.maybe)


class JetstreamConnector:
    """A `jetstream` source: the event's posts from Bluesky's Jetstream, live or caught up."""

    def __init__(
        self,
        spec: SourceSpec[JetstreamSettings],
        *,
        http: Any = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        stop: Callable[[], bool] | None = None,
        follow: bool = False,
        stored: Stored | None = None,
        **_: Any,
    ) -> None:
        self.name = spec.name
        self.settings = settings = spec.settings
        self.hashtags = {t.lower() for t in spec.hashtags}
        self.text_tags = re.compile(
            rf"[{HASH_SIGNS}]({'|'.join(map(re.escape, sorted(self.hashtags)))})(?!\w)", re.I
        ) if self.hashtags else None  # fmt: skip
        self.clock = clock or time.time
        # the run's HTTP client carries the run's sleep (a StopFlag's): waits here end with it too
        self.sleep = sleep or getattr(http, "sleep", None) or time.sleep
        self.stop = stop or (lambda: False)
        self.follow = follow
        self.stored = stored
        # the WebSocket says what calls as the run's HTTP requests do
        self.user_agent = getattr(http, "user_agent", None) or USER_AGENT
        self.host = urlsplit(settings.url).netloc
        self.handles: OrderedDict[str, str] = OrderedDict()
        self.kept: set[str] = set()  # posts this stream kept: their deletes and edits apply
        self.decompressor = None
        if settings.compress and settings.dictionary is not None:
            try:
                data = zstandard.ZstdCompressionDict(settings.dictionary.read_bytes())
                self.decompressor = zstandard.ZstdDecompressor(dict_data=data)
            except (OSError, zstandard.ZstdError) as exc:
                raise ConnectorError(f"source {spec.name!r}: cannot read the zstd dictionary "
                                     f"{settings.dictionary}: {exc}") from None  # fmt: skip

    # -- the stream --------------------------------------------------------------------------

    def fetch(self, cursor: Mapping[str, Any] | None) -> Iterator[Page]:
        saved = (cursor or {}).get("time_us")
        last = saved if type(saved) is int and saved > 0 else None
        until = int(self.clock() * 1e6)  # a catch-up ends at the events of this moment
        failures = 0
        while not self.stop():
            try:
                with self._open(last) as ws:
                    for page in self._read(ws, last, until):
                        newest = page.cursor["time_us"] if page.cursor else None
                        if newest is not None and (last is None or newest > last):
                            failures, last = 0, newest  # this connection made progress
                        yield page
                    return  # caught up, or asked to stop
            except (OSError, websockets.exceptions.WebSocketException) as exc:
                failures += 1
                why = brief(str(exc) or type(exc).__name__, 200)
                failing = f"Jetstream at {self.host}: {failures} connections failed in a row"
                if not self.follow and failures >= self.settings.max_attempts:
                    raise ConnectorError(f"{failing} (last: {why}); the next run resumes from "
                                         "the saved cursor") from None  # fmt: skip
                if failures == self.settings.max_attempts:  # live: said once, in the run log
                    yield Page([], warnings=[f"{failing} (last: {why}); still trying"])
                wait = min(self.settings.max_backoff_seconds,
                           BACKOFF_SECONDS * 2 ** (failures - 1))  # fmt: skip
                log.warning("%s: Jetstream connection lost (%s); reconnecting in %.0f s",
                            self.name, why, wait)  # fmt: skip
                self.sleep(wait)

    def _open(self, last: int | None) -> ClientConnection:
        params: list[tuple[str, str]] = [("wantedCollections", POST),
                                         ("maxMessageSizeBytes", str(MAX_MESSAGE))]  # fmt: skip
        if last is not None:
            rewind = int(self.settings.rewind_seconds * 1e6)
            params.append(("cursor", str(max(1, last - rewind))))
        if self.settings.compress:
            params.append(("compress", "true"))
        parts = urlsplit(self.settings.url)
        query = urlencode([*parse_qsl(parts.query), *params])
        url = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
        log.debug("%s: connecting to %s", self.name, url)
        return connect(url, max_size=MAX_RECEIVED, open_timeout=30, close_timeout=5,
                       user_agent_header=self.user_agent)  # fmt: skip

    def _read(self, ws: ClientConnection, last: int | None, until: int) -> Iterator[Page]:
        """Pages from one connection, until caught up (without `follow`) or asked to stop.
        Raises what the connection raises when it drops, after a page of what it read."""
        batch, first = _Batch(self.clock()), True
        while not self.stop():
            try:
                message = ws.recv(timeout=self.settings.batch_seconds)
            except TimeoutError:
                message = None
            except (OSError, websockets.exceptions.WebSocketException):
                if batch.read or batch.page.rejected:  # read whole: saved before reconnecting
                    yield self._page(batch)
                raise
            if message is not None:
                time_us = self._handle(message, batch)
                if first and time_us is not None:
                    first = False
                    if gap := self._gap(last, time_us):
                        batch.page.warnings.append(gap)
            caught_up = not self.follow and (
                message is None or (batch.newest is not None and batch.newest >= until)
            )
            due = (batch.size() >= self.settings.max_batch or message is None
                   or self.clock() - batch.started >= self.settings.batch_seconds)  # fmt: skip
            if (due or caught_up) and (batch.read or batch.page.rejected):
                yield self._page(batch)
                batch = _Batch(self.clock())
            if caught_up:
                return
        if batch.read or batch.page.rejected:
            yield self._page(batch)

    def _gap(self, last: int | None, first: int) -> str | None:
        if last is None or first - last <= self.settings.gap_tolerance_seconds * 1e6:
            return None
        return (f"gap: Jetstream resumed at {_iso(first)}, not at the saved cursor {_iso(last)}: "
                "the server no longer keeps the events between, so posts made then may be "
                "missing (collect them with the bluesky search source)")  # fmt: skip

    # -- one message ---------------------------------------------------------------------------

    def _handle(self, message: str | bytes, batch: _Batch) -> int | None:
        """Read one message into the batch; its time_us, or None when it could not be read (then
        it is quarantined on the page)."""
        try:
            event = json.loads(self._text(message))
            time_us = _time_us(event)
        except (ValueError, zstandard.ZstdError, RecursionError) as exc:
            digest = hashlib.sha256(message if isinstance(message, bytes)
                                    else message.encode("utf-8", "replace")).hexdigest()[:16]  # fmt: skip
            shown = brief(message, 2000)
            batch.page.reject(f"message {digest}", f"not a Jetstream event: {reason(exc)}",
                              shown)  # fmt: skip
            return None
        batch.read += 1
        batch.newest = max(batch.newest or 0, time_us)
        kind = event.get("kind")
        if kind == "identity":
            self._remember(event.get("identity"))
        elif kind == "commit":
            commit = event.get("commit")
            if isinstance(commit, Mapping) and commit.get("collection") == POST:
                self._commit(event, commit, batch)
            elif not isinstance(commit, Mapping):
                batch.page.reject(f"event {time_us}", "commit is not an object", event)
        return time_us

    def _text(self, message: str | bytes) -> str | bytes:
        if isinstance(message, str) or self.decompressor is None:
            return message
        reader = self.decompressor.stream_reader(io.BytesIO(message))
        data = reader.read(MAX_RECEIVED + 1)
        if len(data) > MAX_RECEIVED:
            raise ValueError(f"decompresses to more than {MAX_RECEIVED} bytes")
        return data

    def _remember(self, identity: Any) -> None:
        """An identity event's handle for its DID, to name the author of its later posts."""
        if not isinstance(identity, Mapping):
            return
        did, handle = identity.get("did"), identity.get("handle")
        if isinstance(did, str) and isinstance(handle, str) and 0 < len(handle) <= 253:
            self.handles[did] = handle.lower()
            self.handles.move_to_end(did)
            if len(self.handles) > MAX_HANDLES:
                self.handles.popitem(last=False)

    def _commit(self, event: Mapping[str, Any], commit: Mapping[str, Any], batch: _Batch) -> None:
        operation = commit.get("operation")
        notes: list[str] = []

        def parse(item: Mapping[str, Any]) -> Post | None:
            if operation == "delete":
                return _deleted(item)
            if operation not in ("create", "update"):
                raise ValueError(f"operation {brief(operation)} is not create, update or delete")
            post, note = post_from_commit(item, self.handles.get(str(item.get("did"))))
            notes.extend([note] if note else [])
            return post

        for post in isolate([event], parse, lambda _n, e: _where(e), batch.page):
            post.via = self.host
            if not post.deleted and self._wanted(post):
                self.kept.add(post.id)
                batch.page.posts.append(post)
                batch.page.warnings += notes
            elif operation != "create":  # an edit or deletion: kept if the post is ours
                batch.maybe.append(post)

    def _wanted(self, post: Post) -> bool:
        if {t.lower() for t in post.hashtags} & self.hashtags:
            return True
        return self.text_tags is not None and self.text_tags.search(post.text) is not None

    def _page(self, batch: _Batch) -> Page:
        """The batch as a page: its posts, the edits and deletions of posts this source keeps, and
        the cursor after its last event."""
        page = batch.page
        if batch.maybe:
            ids = {p.id for p in batch.maybe} - self.kept - {p.id for p in page.posts}
            known = set(self.stored("bluesky", sorted(ids))) if ids and self.stored else set()
            ours = self.kept | known | {p.id for p in page.posts}
            page.posts += [p for p in batch.maybe if p.id in ours]
        if batch.newest is not None:
            page.cursor = {"time_us": batch.newest}
        return page


def _where(event: Mapping[str, Any]) -> str:
    commit = event.get("commit") or {}
    did, rkey = event.get("did"), commit.get("rkey") if isinstance(commit, Mapping) else None
    if isinstance(did, str) and isinstance(rkey, str) and len(did) + len(rkey) <= 250:
        return f"post at://{did}/{POST}/{rkey}"
    return f"event {event.get('time_us')}"
