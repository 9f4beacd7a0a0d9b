"""X (Twitter) API v2 search: recent (7 days) or full-archive, with a gap-free `since_id` cursor.

Paging rule: `since_id` stays fixed while `next_token` is followed (saved after every page); it moves
to the sweep's first `newest_id` only when no `next_token` is left. A killed run resumes from the
saved `next_token` with the same `since_id`, so nothing between the two runs is skipped.

Also what every X format shares (the API here, twarc files in twarc.py, TAGS sheets in tags.py):
`x_post` builds their posts alike (text as written, each hashtag once), and `page_notes` says
once a page what its posts lost (media not found, authors not included).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from connectors.base import ConnectorError, Page, Post, SourceSpec, isolate, parse_time
from connectors.http import HttpClient
from connectors.settings import XSettings
from connectors.values import account, brief, count, optional_id, optional_text

__all__ = [
    "WITHHELD",
    "Counts",
    "Entities",
    "XConnector",
    "counts",
    "first_version",
    "id_time",
    "page_notes",
    "post_from_v2",
    "posts_from_v2_page",
    "problem_text",
    "tweet_url",
    "unescape",
    "unique_hashtags",
    "x_post",
]

SEARCH = "/tweets/search/"  # after the API's base URL (XSettings.base_url)
MAX_RESULTS = {"recent": 100, "all": 500}
RECENT_REACH = timedelta(days=7)
SNOWFLAKE_EPOCH_MS = 1_288_834_974_657  # X ids carry their creation time since this instant
FIELDS = {
    "tweet.fields": "created_at,author_id,public_metrics,entities,referenced_tweets,lang,"
    "note_tweet,attachments,conversation_id,in_reply_to_user_id,edit_history_tweet_ids",
    # the media of retweeted and quoted posts come only with the last expansion
    "expansions": "author_id,referenced_tweets.id,referenced_tweets.id.author_id,"
    "attachments.media_keys,referenced_tweets.id.attachments.media_keys",
    "user.fields": "username,name",
    "media.fields": "url,preview_image_url,alt_text,type",
}
# The author of a post whose account the page does not include (withheld in the country asking,
# suspended, or not expanded) is "withheld:<author_id>": plainly not a handle (X handles are
# letters, digits and _), and still one account per id for the rules that count by account.
WITHHELD = "withheld:"
MISSING_MEDIA = "_missing_media"  # in a post's raw: its media keys no media object was found for
ESCAPED = re.compile("&(amp|lt|gt);")
UNESCAPED = {"amp": "&", "lt": "<", "gt": ">"}


def tweet_url(user: str | None, tweet_id: str) -> str:
    """The web address of a post; `/i/web/` works when the author's handle is unknown."""
    return f"https://x.com/{user or 'i/web'}/status/{tweet_id}"


def unescape(text: str) -> str:
    """A post's text as written. X's APIs (v1.1 and v2, so twarc and TAGS files too) send `&`,
    `<` and `>` as `&amp;`, `&lt;` and `&gt;`, and escape nothing else. Undone in one pass, so a
    written "&lt;" (sent as "&amp;lt;") stays "&lt;", and text already plain keeps its `&`s."""
    return ESCAPED.sub(lambda found: UNESCAPED[found[1]], text)


def unique_hashtags(tags: Iterable[Any]) -> list[str]:
    """Each hashtag once, whatever its case (#Brexit … #brexit), spelt as first written; a
    value that is not text is no hashtag."""
    first: dict[str, str] = {}
    for tag in tags:
        if isinstance(tag, str):
            first.setdefault(tag.casefold(), tag)
    return list(first.values())


class Counts(NamedTuple):
    """A post's public counts; None where the source gives none (or one of the wrong type)."""

    likes: int | None = None
    reposts: int | None = None
    replies: int | None = None
    quotes: int | None = None


class Entities(NamedTuple):
    """What a post tags, mentions, links to and shows, as Post fields; `missing_media` are the
    media keys it names that no media object was found for."""

    hashtags: list[str]
    mentions: list[str]
    links: list[str]
    media: list[dict[str, Any]]
    missing_media: tuple[str, ...] = ()


NO_COUNTS = Counts()


def counts(likes: Any, reposts: Any, replies: Any, quotes: Any) -> Counts:
    """Public counts as Post fields; a count of the wrong type becomes None rather than sinking
    the post. :raises ValueError: for a count no database can hold (10**30)."""
    return Counts(
        count(likes, "likes"), count(reposts, "reposts"), count(replies, "replies"),
        count(quotes, "quotes"),
    )  # fmt: skip


def x_post(
    post_id: str,
    created_at: datetime,
    author: str,
    text: str,
    raw: dict[str, Any],
    entities: Entities,
    *,
    username: str | None,
    author_name: str | None = None,
    counts: Counts = NO_COUNTS,
    reply_to: str | None = None,
    repost_of: str | None = None,
    quote_of: str | None = None,
    lang: str | None = None,
    edited_at: datetime | None = None,
) -> Post:
    """A post on X, as every X format (the API, twarc, TAGS) stores it: the text as written
    (`unescape`), each hashtag once, the address from the author's handle (`username`), no
    "und" language, and in `raw` the media keys that could not be found (`page_notes` counts
    them)."""
    raw.pop(MISSING_MEDIA, None)  # only ever ours
    if entities.missing_media:
        raw[MISSING_MEDIA] = list(entities.missing_media)
    return Post(
        platform="x",
        id=post_id,
        created_at=created_at,
        author=author,
        author_name=author_name,
        text=unescape(text),
        url=tweet_url(username, post_id),
        reply_to=reply_to,
        repost_of=repost_of,
        quote_of=quote_of,
        likes=counts.likes,
        reposts=counts.reposts,
        replies=counts.replies,
        quotes=counts.quotes,
        lang=None if lang == "und" else lang,
        hashtags=unique_hashtags(entities.hashtags),
        mentions=entities.mentions,
        links=entities.links,
        media=entities.media,
        edited_at=edited_at,
        raw=raw,
    )


def page_notes(posts: Iterable[Post]) -> list[str]:
    """What a page of X posts could not hold, said once for the page, never once a post: media
    that could not be found, and authors the page does not include."""
    unique = {post.id: post for post in posts}.values()
    missing = [post.raw.get(MISSING_MEDIA) for post in unique]
    keys = sum(len(m) for m in missing if isinstance(m, list))
    withheld = sum(post.author.startswith(WITHHELD) for post in unique)
    notes = []
    if keys:
        notes.append(
            f"{keys} media key(s) of {sum(bool(m) for m in missing)} post(s) were not in the "
            "page's includes.media (removed, or a retweeted or quoted post's media not "
            "expanded): those photos and videos are not stored"
        )
    if withheld:
        notes.append(
            f"{withheld} post(s) by accounts the page does not include (withheld, suspended or "
            f"not expanded): stored with the author {WITHHELD}<author_id>"
        )
    return notes


def first_version(tweet: Mapping[str, Any], version: str) -> str:
    """The id a post keeps through its edits: the first of its `edit_history_tweet_ids` (oldest
    first) when that list is ids and names this version; else the version's own id."""
    history = tweet.get("edit_history_tweet_ids")
    if isinstance(history, list) and version in history and all(_label(h) for h in history):
        return str(history[0])
    return version


def _media(
    tweet: Mapping[str, Any], media: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], list[str]]:
    """A post's media (from the page's includes by key, or inlined by twarc2 flatten, which puts
    `{}` where it found none) and the keys no media object was found for."""
    attachments = _mapping(tweet.get("attachments"))
    keys = [str(k) for k in _list(attachments.get("media_keys"))]
    inline = attachments.get("media")
    items = inline if isinstance(inline, list) and inline else [media.get(k) for k in keys]
    found = [
        {"url": m.get("url") or m.get("preview_image_url"), "type": m.get("type"),
         "alt": m.get("alt_text")}
        for m in items
        if isinstance(m, Mapping) and m
    ]  # fmt: skip
    missing = [k for k, m in zip(keys, items, strict=False) if not (isinstance(m, Mapping) and m)]
    return found, missing


def _v2_entities(tweet: Mapping[str, Any], media: Mapping[str, Any]) -> Entities:
    """Hashtags, mentions, links and media of a v2 post (long posts keep them in note_tweet)."""
    note = _mapping(tweet.get("note_tweet"))
    entities = note.get("entities") or tweet.get("entities") or {}
    urls = entities.get("urls") or []
    found, missing = _media(tweet, media)
    return Entities(
        hashtags=[h["tag"] for h in entities.get("hashtags") or [] if h.get("tag")],
        mentions=[m["username"] for m in entities.get("mentions") or [] if m.get("username")],
        links=[u.get("expanded_url") or u["url"] for u in urls if u.get("url")],
        media=found,
        missing_media=tuple(missing),
    )


def _ref_id(ref: Mapping[str, Any], tweets: Mapping[str, Any]) -> Any:
    """A referenced post's id, as its first version's when the page shows its edits."""
    ref_id = ref.get("id")
    if not isinstance(ref_id, str):
        return ref_id  # None, or a bad value for optional_id to name
    shown = ref if "edit_history_tweet_ids" in ref else _mapping(tweets.get(ref_id))
    return first_version(shown, ref_id)


def _author(username: str | None, tweet: Mapping[str, Any]) -> str:
    if username is not None:
        return account(username, "author.username")
    author_id = optional_id(tweet.get("author_id"), "author_id")
    if author_id is None:
        raise ValueError("no author: no user for it on the page and no author_id")
    return WITHHELD + author_id


def post_from_v2(
    tweet: Mapping[str, Any],
    users: Mapping[str, Any] | None = None,
    tweets: Mapping[str, Any] | None = None,
    media: Mapping[str, Any] | None = None,
    *,
    follow_retweet: bool = True,
) -> Post:
    """One v2 post (+ the page's includes by id, or inlined by twarc2 flatten) -> Post.

    A retweet becomes its original, so each post is one row with its full text. An edited post
    is one post whatever version this is: its id is the first version's, `edited_at` the time
    of this version when it is an edit (storage keeps the newest). A post whose author the page
    does not include keeps the author "withheld:<author_id>".
    """
    users, tweets, media = users or {}, tweets or {}, media or {}
    refs = {
        r.get("type"): r for r in tweet.get("referenced_tweets") or [] if isinstance(r, Mapping)
    }
    retweeted = _mapping(refs.get("retweeted"))
    original = retweeted if "text" in retweeted else tweets.get(str(retweeted.get("id")))
    if follow_retweet and isinstance(original, Mapping):
        # the original's own retweet refs are not followed: a post retweeting itself ends here
        post = post_from_v2(original, users, tweets, media, follow_retweet=False)
        post.raw["_retweet"] = {"id": tweet.get("id"), "author_id": tweet.get("author_id")}
        return post
    version = tweet.get("id")
    if not isinstance(version, str) or not (version.isascii() and version.isdigit()):
        raise ValueError(f"id {brief(version)} is not an id string")
    post_id = first_version(tweet, version)
    created = parse_time(tweet.get("created_at"), "created_at")
    author = _mapping(tweet.get("author")) or _mapping(users.get(str(tweet.get("author_id"))))
    username = optional_text(author.get("username"))
    text = _mapping(tweet.get("note_tweet")).get("text") or tweet.get("text")
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {brief(text)}")
    metrics = tweet.get("public_metrics") or {}
    return x_post(
        post_id,
        created,
        _author(username, tweet),
        text,
        {**tweet, "author": dict(author)} if author else dict(tweet),
        _v2_entities(tweet, media),
        username=username,
        author_name=optional_text(author.get("name")),
        counts=counts(
            metrics.get("like_count"),
            metrics.get("retweet_count"),
            metrics.get("reply_count"),
            metrics.get("quote_count"),
        ),
        repost_of=optional_id(retweeted.get("id"), "retweeted id"),  # only when not included
        reply_to=optional_id(_ref_id(_mapping(refs.get("replied_to")), tweets), "replied_to id"),
        quote_of=optional_id(_ref_id(_mapping(refs.get("quoted")), tweets), "quoted id"),
        lang=optional_text(tweet.get("lang")),
        edited_at=created if post_id != version else None,
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


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


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
    for error in _list(body.get("errors")):
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
        self.url = settings.base_url + SEARCH + settings.endpoint
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
            warnings += [f"X reported: {problem_text(e)}" for e in _list(body.get("errors"))]
            meta = _mapping(body.get("meta"))
            if not state.get("next_token"):  # the sweep's first page: its newest is the next since
                state["newest_id"] = _label(meta.get("newest_id"))
            token = meta.get("next_token")
            state["next_token"] = token if isinstance(token, str) and token else None
            state = (
                {**state, "query": self.query} if state["next_token"] else self._sweep_done(state)
            )
            page.cursor, page.waits = dict(state), self.http.waits - waits
            page.warnings = warnings + page.warnings + page_notes(page.posts)
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
        resp = self.http.get(self.url, params=params, headers=headers,
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
