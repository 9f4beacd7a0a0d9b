"""X (Twitter) API v2 search: recent (7 days) or full-archive, with a gap-free `since_id` cursor.

Paging rule: `since_id` stays fixed while `next_token` is followed (saved after every page); it moves
to the sweep's first `newest_id` only when no `next_token` is left. A killed run resumes from the
saved `next_token` with the same `since_id`, so nothing between the two runs is skipped.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import ConnectorError, Page, Post, SourceSpec, isolate, parse_time
from connectors.http import HttpClient
from connectors.settings import XSettings
from connectors.values import account, brief, count, optional_id, optional_text

__all__ = [
    "XConnector",
    "counts",
    "id_time",
    "post_from_v2",
    "posts_from_v2_page",
    "problem_text",
    "tweet_url",
]

API = "https://api.x.com/2/tweets/search/"
MAX_RESULTS = {"recent": 100, "all": 500}
RECENT_REACH = timedelta(days=7)
SNOWFLAKE_EPOCH_MS = 1_288_834_974_657  # X ids carry their creation time since this instant
FIELDS = {
    "tweet.fields": "created_at,author_id,public_metrics,entities,referenced_tweets,lang,"
    "note_tweet,attachments,conversation_id,in_reply_to_user_id,edit_history_tweet_ids",
    "expansions": "author_id,referenced_tweets.id,referenced_tweets.id.author_id,"
    "attachments.media_keys",
    "user.fields": "username,name",
    "media.fields": "url,preview_image_url,alt_text,type",
}


def tweet_url(user: str | None, tweet_id: str) -> str:
    """The web address of a post; `/i/web/` works when the author's handle is unknown."""
    return f"https://x.com/{user or 'i/web'}/status/{tweet_id}"


def counts(likes: Any, reposts: Any, replies: Any, quotes: Any) -> dict[str, int | None]:
    """Public counts as Post fields; a count of the wrong type becomes None rather than sinking
    the post. :raises ValueError: for a count no database can hold (10**30)."""
    given = {"likes": likes, "reposts": reposts, "replies": replies, "quotes": quotes}
    return {name: count(value, name) for name, value in given.items()}


def _v2_lists(tweet: Mapping[str, Any], media: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Hashtags, mentions, links and media of a v2 post (long posts keep them in note_tweet)."""
    note = tweet.get("note_tweet") if isinstance(tweet.get("note_tweet"), Mapping) else {}
    entities = note.get("entities") or tweet.get("entities") or {}
    attachments = tweet.get("attachments") or {}
    items = attachments.get("media") or [media.get(k) for k in attachments.get("media_keys", [])]
    urls = entities.get("urls") or []
    return {
        "hashtags": [h["tag"] for h in entities.get("hashtags") or [] if h.get("tag")],
        "mentions": [m["username"] for m in entities.get("mentions") or [] if m.get("username")],
        "links": [u.get("expanded_url") or u["url"] for u in urls if u.get("url")],
        "media": [
            {
                "url": m.get("url") or m.get("preview_image_url"),
                "type": m.get("type"),
                "alt": m.get("alt_text"),
            }
            for m in items
            if m
        ],
    }


def post_from_v2(
    tweet: Mapping[str, Any],
    users: Mapping[str, Any] | None = None,
    tweets: Mapping[str, Any] | None = None,
    media: Mapping[str, Any] | None = None,
) -> Post:
    """One v2 post (+ the page's includes by id, or inlined by twarc2 flatten) -> Post.

    A retweet becomes its original, so each post is one row with its full text."""
    users, tweets, media = users or {}, tweets or {}, media or {}
    refs = {
        r.get("type"): r for r in tweet.get("referenced_tweets") or [] if isinstance(r, Mapping)
    }
    retweeted = refs.get("retweeted") or {}
    original = retweeted if "text" in retweeted else tweets.get(str(retweeted.get("id")))
    if isinstance(original, Mapping):
        # the original's own retweet refs are not followed: a post retweeting itself ends here
        post = post_from_v2(original, users, {}, media)
        post.raw["_retweet"] = {"id": tweet.get("id"), "author_id": tweet.get("author_id")}
        return post
    tweet_id = tweet.get("id")
    if not isinstance(tweet_id, str) or not (tweet_id.isascii() and tweet_id.isdigit()):
        raise ValueError(f"id {brief(tweet_id)} is not an id string")
    created = parse_time(tweet.get("created_at"), "created_at")
    author = tweet.get("author") or users.get(str(tweet.get("author_id"))) or {}
    username = optional_text(author.get("username"))
    note = tweet.get("note_tweet") if isinstance(tweet.get("note_tweet"), Mapping) else {}
    text = note.get("text") or tweet.get("text", "")
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {brief(text)}")
    metrics = tweet.get("public_metrics") or {}
    lang = optional_text(tweet.get("lang"))
    return Post(
        platform="x",
        id=tweet_id,
        created_at=created,
        author=account(username or tweet.get("author_id"), "author (username or author_id)"),
        author_name=optional_text(author.get("name")),
        text=text,
        url=tweet_url(username, tweet_id),
        repost_of=optional_id(retweeted.get("id"), "retweeted id"),  # only when not included
        reply_to=optional_id(refs.get("replied_to", {}).get("id"), "replied_to id"),
        quote_of=optional_id(refs.get("quoted", {}).get("id"), "quoted id"),
        lang=None if lang == "und" else lang,
        raw={**tweet, "author": dict(author)} if author else dict(tweet),
        **counts(
            metrics.get("like_count"),
            metrics.get("retweet_count"),
            metrics.get("reply_count"),
            metrics.get("quote_count"),
        ),
        **_v2_lists(tweet, media),
    )


def _by(items: Any, key: str) -> dict[str, Any]:
    items = items if isinstance(items, list) else []
    return {str(i[key]): i for i in items if isinstance(i, Mapping) and key in i}


def posts_from_v2_page(page: Mapping[str, Any]) -> Page:
    """A v2 response page `{data, includes, meta}` -> a Page of its posts; each post that cannot
    be read is quarantined on it ("tweet <id>") and never costs the others.

    :raises ValueError: when `data` is neither a list of posts nor one post.
    """
    includes = _mapping(page.get("includes"))
    users = _by(includes.get("users"), "id")
    tweets = _by(includes.get("tweets") or includes.get("posts"), "id")
    media = _by(includes.get("media"), "media_key")
    data = page.get("data") or []
    if not isinstance(data, list | Mapping):
        raise ValueError(f"data is not a list of posts: {brief(data)}")

    def parse(tweet: Any) -> Post:
        post = post_from_v2(_object(tweet), users, tweets, media)
        if "__twarc" in page:  # provenance: where and when twarc fetched it
            post.raw["__twarc"] = page["__twarc"]
        return post

    out = Page([])
    out.posts = isolate(
        [data] if isinstance(data, Mapping) else data,
        parse,
        lambda n, tweet: f"tweet {_label(_mapping(tweet).get('id')) or f'#{n + 1}'}",
        out,
    )
    return out


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _object(tweet: Any) -> Mapping[str, Any]:
    if not isinstance(tweet, Mapping):
        raise ValueError("not a JSON object")
    return tweet


def _label(value: Any) -> str | None:
    """An X id (a string of at most 30 digits), else None: never a hostile value in a cursor."""
    ok = isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 30
    return value if ok else None


def id_time(tweet_id: str) -> datetime:
    """When an X post id was made (ids are snowflakes: milliseconds in the top bits)."""
    ms = (int(tweet_id) >> 22) + SNOWFLAKE_EPOCH_MS
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)  # exact, unlike a float


def problem_text(body: Any) -> str:
    """X's problem JSON (`{title, detail, type}` or `errors[]`) in plain words."""
    if not isinstance(body, Mapping):
        return "no detail"
    parts = [str(body[k]) for k in ("title", "detail") if body.get(k)]
    for error in body.get("errors") or []:
        if isinstance(error, Mapping):
            parts.append(str(error.get("detail") or error.get("message") or error.get("title")))
    return ": ".join(dict.fromkeys(parts)) or "no detail"


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class XConnector:
    """An `x` source: posts matching the query (by default the event's hashtags OR'ed)."""

    def __init__(
        self,
        spec: SourceSpec[XSettings],
        *,
        http: HttpClient,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] | None = None,
        **_: Any,
    ) -> None:
        settings = spec.settings
        self.name = spec.name
        env = os.environ if env is None else env
        self.token_env = settings.token_env
        self._token = env.get(self.token_env)
        if not self._token:
            raise ConnectorError(
                f"source {spec.name!r}: set {self.token_env} to an X API bearer token "
                "(X has no free read access: see docs/connectors.md)"
            )
        self.endpoint = settings.endpoint
        self.query = settings.query or " OR ".join(f"#{t}" for t in spec.hashtags)
        self.start_time = _stamp(settings.start_time) if settings.start_time else None
        self.clock = clock or time.time
        self.http = http.retrying(settings.retry)

    def fetch(self, cursor: Mapping[str, Any] | None) -> Iterator[Page]:
        state = dict(cursor or {})
        if state.get("next_token") and state.get("query") != self.query:
            # a next_token only works with the query that made it; the since point still holds
            state = {k: state[k] for k in ("since_id", "start_time") if state.get(k)}
        warnings = self._reach(state)
        while True:
            waits = self.http.waits
            body = self._search(state)
            try:
                page = posts_from_v2_page(body)
            except ValueError as exc:
                raise ConnectorError(
                    f"X {self.endpoint} search answered a bad page: {exc}"
                ) from None
            for post in page.posts:
                post.via = f"x {self.endpoint}: {self.query}"
            # a 200 can carry data and errors: keep the data, say what failed
            errors = body.get("errors") if isinstance(body.get("errors"), list) else []
            warnings += [f"X reported: {problem_text(e)}" for e in errors]
            meta = _mapping(body.get("meta"))
            if not state.get("next_token"):  # the sweep's first page: its newest is the next since
                state["newest_id"] = _label(meta.get("newest_id"))
            token = meta.get("next_token")
            state["next_token"] = token if isinstance(token, str) and token else None
            state = (
                {**state, "query": self.query} if state["next_token"] else self._sweep_done(state)
            )
            page.cursor, page.waits = dict(state), self.http.waits - waits
            page.warnings = warnings + page.warnings
            yield page
            warnings = []
            if not state.get("next_token"):
                return

    def _sweep_done(self, state: Mapping[str, Any]) -> dict[str, Any]:
        """Only now does `since_id` move: to the first page's newest id (kept if nothing new)."""
        since_id = state.get("newest_id") or state.get("since_id")
        done: dict[str, Any] = {"since_id": since_id}
        if not since_id and state.get("start_time"):
            done["start_time"] = state["start_time"]  # nothing found yet: keep the lower bound
        return done

    def _reach(self, state: dict[str, Any]) -> list[str]:
        """Recent search sees 7 days back: when the saved point is older, say so and start there."""
        now = datetime.fromtimestamp(self.clock(), UTC)
        horizon = now - RECENT_REACH + timedelta(minutes=1)  # a minute's slack for clock skew
        if not state:
            state["start_time"] = self.start_time
        since = state.get("since_id")
        point = id_time(since) if since else state.get("start_time")
        point = parse_time(point) if isinstance(point, str) else point
        if self.endpoint != "recent" or point is None or point >= horizon:
            return []
        state.clear()  # the old since_id/next_token would be refused (400); restart at the horizon
        state["start_time"] = _stamp(horizon)
        return [
            f"X recent search reaches back 7 days; posts between {_stamp(point)} and "
            f'{_stamp(horizon)} may be missing (use endpoint = "all" or import an archive)'
        ]

    def _search(self, state: Mapping[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {"query": self.query, "max_results": MAX_RESULTS[self.endpoint]}
        params.update(FIELDS)
        for key in ("since_id", "start_time", "next_token"):
            if state.get(key) and not (key == "start_time" and state.get("since_id")):
                params[key] = state[key]
        headers = {"Authorization": f"Bearer {self._token}"}
        resp = self.http.get(API + self.endpoint, params=params, headers=headers,
                             accept=(400, 401, 403))  # fmt: skip
        body = resp.json()
        if resp.status in (401, 403):
            raise ConnectorError(f"X refused the {self.endpoint} search (HTTP {resp.status}: "
                                 f"{problem_text(body)}); check {self.token_env} and your "
                                 "plan's access")  # fmt: skip
        if resp.status == 400:
            raise ConnectorError(f"X rejected the search for {self.query!r}: {problem_text(body)}")
        if not isinstance(body, dict):
            raise ConnectorError(f"X {self.endpoint} search answered with something not JSON")
        return body
