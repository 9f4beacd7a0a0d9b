"""Bluesky: `app.bsky.feed.searchPosts` per hashtag, through the PDS with an app-password session.

Tokens live only in memory (never in a cursor, log or error). The cursor per hashtag is
`{since, newest, cursor, until, oldest}`: `since` stays fixed during a sweep, so a killed run resumes
mid-sweep with the saved API cursor and moves `since` only when the sweep ends.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from connectors.base import ConnectorError, Page, Post, SourceSpec, isolate, parse_time
from connectors.http import HttpClient, HttpError
from connectors.settings import BlueskySettings
from connectors.values import account, brief, count, optional_id, optional_text

__all__ = ["BlueskyConnector", "byte_slice", "post_from_view"]

FACET = "app.bsky.richtext.facet#"
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # before this, createdAt is a broken clock (1970 seen)
FUTURE_SLACK = timedelta(hours=1)  # createdAt this far past indexedAt is a broken clock too
MAX_REQUESTS = 1000  # per hashtag per run: 100k posts, far beyond an event's hashtag


def byte_slice(text: str | bytes, start: int, end: int) -> str | None:
    """text[start:end] counted in UTF-8 bytes, as facets are; None if it cuts a character. `text`
    may come encoded already: one encoding for all of a post's facets."""
    if not 0 <= start <= end:
        return None
    data = text.encode("utf-8") if isinstance(text, str) else text
    try:
        return data[start:end].decode("utf-8")
    except UnicodeDecodeError:
        return None


# A mention facet's span at most: "@" and a handle (253 characters). A longer one is shown as its DID:
# slicing a span over all the text for each of thousands of facets would copy the text each time.
MENTION_BYTES = 254


def _facets(record: Mapping[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"hashtags": [], "mentions": [], "links": []}
    data = str(record.get("text", "")).encode("utf-8")  # once: slicing it per facet is linear
    for facet in record.get("facets") or []:
        index = facet.get("index") or {}
        for feature in facet.get("features") or []:
            kind = str(feature.get("$type", "")).removeprefix(FACET)
            if kind == "tag" and feature.get("tag"):
                out["hashtags"].append(str(feature["tag"]).lstrip("#"))
            elif kind == "link" and feature.get("uri"):
                out["links"].append(str(feature["uri"]))
            elif kind == "mention" and feature.get("did"):
                start, end = index.get("byteStart", -1), index.get("byteEnd", -1)
                shown = byte_slice(data, start, end) if end - start <= MENTION_BYTES else None
                out["mentions"].append(shown.lstrip("@") if shown else str(feature["did"]))
    out["hashtags"] += [str(t).lstrip("#") for t in record.get("tags") or []]
    return {k: list(dict.fromkeys(v)) for k, v in out.items()}


def _media(embed: Mapping[str, Any] | None) -> tuple[list[dict[str, Any]], list[str]]:
    """(media, links) from a PostView's embed view (images, video, external, recordWithMedia)."""
    if not isinstance(embed, Mapping):
        return [], []
    kind = str(embed.get("$type", ""))
    if kind.startswith("app.bsky.embed.recordWithMedia"):
        return _media(embed.get("media"))
    if kind.startswith("app.bsky.embed.images"):
        images = embed.get("images") or []
        return [{"url": i.get("fullsize"), "type": "image", "alt": i.get("alt") or None}
                for i in images], []  # fmt: skip
    if kind.startswith("app.bsky.embed.video"):
        return [{"url": embed.get("playlist"), "type": "video", "alt": embed.get("alt")}], []
    if kind.startswith("app.bsky.embed.external"):
        uri = (embed.get("external") or {}).get("uri")
        return [], [uri] if uri else []
    return [], []


def _quote_of(record: Mapping[str, Any]) -> str | None:
    embed = record.get("embed") or {}
    ref = embed.get("record") or {}
    ref = ref.get("record", ref)  # recordWithMedia nests the strongRef one level deeper
    return ref.get("uri") if isinstance(ref, Mapping) else None


def _created(view: Mapping[str, Any], indexed: datetime) -> tuple[datetime, str | None]:
    """createdAt, unless the poster's clock was absurd: then indexedAt, and a note saying so."""
    raw = view["record"].get("createdAt")
    try:
        created = parse_time(raw, "createdAt")
    except ValueError:
        created = None
    if created and EARLIEST <= created <= indexed + FUTURE_SLACK:
        return created, None
    return indexed, f"createdAt {brief(raw)} is implausible: using indexedAt {view['indexedAt']}"


def post_from_view(view: Mapping[str, Any]) -> tuple[Post, str | None]:
    """One PostView -> (Post, a warning or None). Raises ValueError naming the bad field."""
    if not isinstance(view, Mapping):
        raise ValueError("not a JSON object")
    for key in ("uri", "author", "record", "indexedAt"):
        if not view.get(key):
            raise ValueError(f"no {key}")
    record, author = view["record"], view["author"]
    if not isinstance(record, Mapping) or not isinstance(author, Mapping):
        raise ValueError("record or author is not an object")
    if not isinstance(record.get("text"), str) or not author.get("handle"):
        raise ValueError("record.text or author.handle missing")
    uri = account(view["uri"], "uri")
    indexed = parse_time(view["indexedAt"], "indexedAt")
    created, note = _created(view, indexed)
    handle = account(author["handle"], "author.handle")
    profile = author.get("did") if handle == "handle.invalid" else handle
    media, embed_links = _media(view.get("embed"))
    parts = _facets(record)
    parts["links"] = list(dict.fromkeys(parts["links"] + embed_links))
    reply = (record.get("reply") or {}).get("parent") or {}
    post = Post(
        platform="bluesky",
        id=uri,
        created_at=created,
        author=handle,
        author_name=optional_text(author.get("displayName")),
        text=record["text"],
        url=f"https://bsky.app/profile/{profile}/post/{uri.rsplit('/', 1)[-1]}",
        reply_to=optional_id(reply.get("uri"), "reply.parent.uri"),
        quote_of=optional_id(_quote_of(record), "embed.record.uri"),
        likes=count(view.get("likeCount"), "likeCount"),
        reposts=count(view.get("repostCount"), "repostCount"),
        replies=count(view.get("replyCount"), "replyCount"),
        quotes=count(view.get("quoteCount"), "quoteCount"),
        lang=optional_text((record.get("langs") or [None])[0]),
        hashtags=parts["hashtags"],
        mentions=parts["mentions"],
        links=parts["links"],
        media=media,
        raw=dict(view),  # keeps both record.createdAt and indexedAt
    )
    return post, note and f"{post.url}: {note}"


def _sort_at(post: Post) -> datetime:
    """The search's `sortAt`: the earlier of createdAt and indexedAt."""
    return min(post.created_at, parse_time(post.raw["indexedAt"]))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Session:
    """An app-password session on the PDS. Tokens are kept in memory for this process only."""

    def __init__(self, http: HttpClient, service: str, handle: str, password: str, hint: str):
        self.http, self.service, self.hint = http, service, hint
        self._identity = {"identifier": handle, "password": password}
        self._access: str | None = None
        self._refresh: str | None = None

    def _xrpc(self, nsid: str) -> str:
        return f"{self.service}/xrpc/{nsid}"

    def login(self) -> None:
        resp = self.http.post(self._xrpc("com.atproto.server.createSession"),
                              json=self._identity, accept=(400, 401))  # fmt: skip
        if resp.status >= 400:
            message = _error(resp.json())[1]
            raise ConnectorError(f"Bluesky login as {self._identity['identifier']} failed: "
                                 f"{message} ({self.hint})")  # fmt: skip
        self._keep(resp.json())

    def renew(self) -> None:
        """refreshSession with the refresh token; a new login if that is refused too."""
        if self._refresh:
            resp = self.http.post(self._xrpc("com.atproto.server.refreshSession"),
                                  headers={"Authorization": f"Bearer {self._refresh}"},
                                  accept=(400, 401))  # fmt: skip
            if resp.status < 400:
                return self._keep(resp.json())
        self.login()

    def _keep(self, body: Mapping[str, Any]) -> None:
        self._access, self._refresh = body.get("accessJwt"), body.get("refreshJwt")
        if not self._access:
            raise ConnectorError(f"Bluesky at {self.service} did not return a session token")

    def get(self, nsid: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """A signed-in GET; an expired access token is renewed once and the call retried."""
        if not self._access:
            self.login()
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {self._access}"}
            resp = self.http.get(self._xrpc(nsid), params=params, headers=headers,
                                 accept=(400, 401, 403))  # fmt: skip
            if resp.status < 400:
                return resp.json()
            code, message = _error(resp.json())
            if attempt == 1 and (resp.status == 401 or code in ("ExpiredToken", "InvalidToken")):
                self.renew()
                continue
            if resp.status in (401, 403):
                raise ConnectorError(f"Bluesky refused {nsid} (HTTP {resp.status}: {message}): "
                                     f"search needs a signed-in account ({self.hint})")  # fmt: skip
            raise ConnectorError(f"Bluesky {nsid} failed: HTTP {resp.status} {code}: {message}")
        raise AssertionError("unreachable")  # pragma: no cover


def _advance(state: dict[str, dict[str, Any]], tag: str, next_cursor: str | None) -> bool:
    """Move the tag's state past a page; True when the sweep is over."""
    st = state[tag]
    if next_cursor and next_cursor != st.get("cursor"):  # a repeated cursor is no progress
        st["cursor"] = next_cursor
        return False
    state[tag] = {"since": st.get("newest") or st.get("since")}  # the next run starts here
    return True


def _error(body: Any) -> tuple[str, str]:
    body = body if isinstance(body, Mapping) else {}
    return str(body.get("error", "")), str(body.get("message") or body.get("error") or "no detail")


class BlueskyConnector:
    """A `bluesky` source: every post with the event's hashtags, newest first, resumable."""

    def __init__(
        self,
        spec: SourceSpec[BlueskySettings],
        *,
        http: HttpClient,
        env: Mapping[str, str] | None = None,
        **_: Any,
    ) -> None:
        settings = spec.settings
        self.name = spec.name
        env = os.environ if env is None else env
        names = (settings.handle_env, settings.password_env)
        for var, what in zip(names, ("your Bluesky handle", "a Bluesky app password"), strict=True):
            if not env.get(var):
                raise ConnectorError(f"source {spec.name!r}: set {var} to {what}")
        self.service = settings.service
        self.http = http.retrying(settings.retry)
        hint = f"check {names[0]} and {names[1]}; use an app password"
        self.session = _Session(self.http, self.service, env[names[0]], env[names[1]], hint)
        self.hashtags = spec.hashtags
        self.since = _iso(settings.since) if settings.since else None
        self.host = urlsplit(self.service).netloc

    def fetch(self, cursor: Mapping[str, Any] | None) -> Iterator[Page]:
        state = {t: dict(s) for t, s in ((cursor or {}).get("tags") or {}).items()}
        for tag in self.hashtags:
            state.setdefault(tag, {"since": self.since})
            yield from self._sweep(tag, state)

    def _sweep(self, tag: str, state: dict[str, dict[str, Any]]) -> Iterator[Page]:
        """One hashtag, newest first, down to `since`; restarts below the cap with `until`."""
        seen: set[str] = set()
        notes: list[str] = []
        for _ in range(MAX_REQUESTS):
            st, waits = state[tag], self.http.waits
            try:
                body = self.session.get("app.bsky.feed.searchPosts", self._params(tag, st))
            except HttpError as exc:
                if not self._capped(exc, st):
                    raise
                notes.append(
                    f"Bluesky #{tag}: search hit its result cap; went on below {st['until']}"
                )
                continue
            views = body.get("posts") if isinstance(body, dict) else None
            if not isinstance(views, list | None):
                raise ConnectorError(f"Bluesky search for #{tag} answered no list of posts")
            page = self._page(views or [], tag, st, seen)
            page.waits, page.warnings, notes = self.http.waits - waits, notes + page.warnings, []
            cursor = body.get("cursor") if isinstance(body, dict) else None
            done = _advance(state, tag, cursor if isinstance(cursor, str) else None)
            page.cursor = {"tags": {t: dict(s) for t, s in state.items()}}
            yield page
            if done:
                return
        # why: a server handing out cursors in a cycle must not keep a nightly job running forever
        warning = f"Bluesky #{tag}: stopped after {MAX_REQUESTS} requests; the next run goes on"
        yield Page([], {"tags": {t: dict(s) for t, s in state.items()}}, warnings=[warning])

    def _params(self, tag: str, st: Mapping[str, Any]) -> dict[str, Any]:
        params = {"q": f"#{tag}", "sort": "latest", "limit": 100}
        params.update({k: st[k] for k in ("since", "until", "cursor") if st.get(k)})
        return params

    def _capped(self, exc: HttpError, st: dict[str, Any]) -> bool:
        """A 5xx deep into paging is the search's result cap: go on below the oldest post seen."""
        if not (exc.status and exc.status >= 500 and st.get("cursor") and st.get("oldest")):
            return False
        if st.get("until") == st["oldest"]:
            raise ConnectorError(f"Bluesky search keeps failing below {st['oldest']}: {exc}")
        st.update(until=st["oldest"], cursor=None)
        return True

    def _page(self, views: list[Any], tag: str, st: dict[str, Any], seen: set[str]) -> Page:
        page = Page(posts=[])
        notes: dict[str, str] = {}

        def parse(view: Any) -> Post:
            post, note = post_from_view(view)
            if note:
                notes[post.id] = note
            return post

        for post in isolate(views, parse, _where, page):
            if post.id in notes:
                page.warnings.append(notes[post.id])
            newest, indexed = _sort_at(post), parse_time(post.raw["indexedAt"])
            if not st.get("newest") or newest > parse_time(st["newest"]):
                st["newest"] = _iso(newest)
            if not st.get("oldest") or indexed < parse_time(st["oldest"]):
                st["oldest"] = _iso(indexed)
            if post.id not in seen:  # a restart below the cap overlaps what was seen
                seen.add(post.id)
                post.via = f"{self.host} #{tag}"
                page.posts.append(post)
        return page


def _where(n: int, view: Any) -> str:
    """Where a skipped PostView was: its uri if it is a plausible one, else its place."""
    uri = view.get("uri") if isinstance(view, Mapping) else None
    return f"post {uri if isinstance(uri, str) and uri and len(uri) <= 300 else f'#{n + 1}'}"
