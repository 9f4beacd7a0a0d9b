"""Twitter archives: twarc 1.x (v1.1 tweets) and twarc2 (v2 pages or flattened tweets) JSONL,
gzipped or not.

v2 tweets are parsed by `x.py` (the same shape the live API returns); `tags.py` reuses the v1.1
helpers here. A file of something else twarc writes (accounts, lists, counts, compliance results,
ids) is refused whole, saying what it is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from connectors.archives import PAGE_SIZE, FileSource, first_line, read_lines
from connectors.base import ConnectorError, Page, Post, parse_time
from connectors.values import EARLIEST, account, brief, in_window, optional_text, storable
from connectors.x import Entities, counts, page_notes, post_from_v2, posts_from_v2_page, x_post

__all__ = [
    "TwarcConnector",
    "entities_v1",
    "not_posts",
    "post_from_v1",
    "read_twarc",
    "twitter_time",
]

V1_TIME = "%a %b %d %H:%M:%S %z %Y"  # "Wed Oct 10 20:19:24 +0000 2018"
# What twarc writes that is not posts, as `not_posts` names it, and what such a file holds.
NOT_POSTS = {
    "users": "X accounts (a twarc users, followers, following or list members file)",
    "lists": "X lists (a twarc lists file)",
    "counts": "tweet counts (a twarc2 counts file)",
    "compliance": "compliance results (a twarc2 compliance file)",
}


def twitter_time(value: Any, what: str = "created_at") -> datetime:
    """v1.1 `created_at` or ISO 8601 (v2) -> aware UTC within the accepted years.

    :raises ValueError: naming `what` when the value is neither, or out of range.
    """
    try:
        moment = datetime.strptime(value.strip(), V1_TIME)
    except (AttributeError, TypeError, ValueError):
        return parse_time(value, what)
    return in_window(moment, what, value)


def _ids(value: Any) -> str | None:
    """An id string, or None. Numeric ids are refused: they may have lost digits in JSON tools."""
    return value if isinstance(value, str) and value.isascii() and value.isdigit() else None


def entities_v1(entities: Mapping[str, Any], extended: Mapping[str, Any]) -> Entities:
    """v1.1 `entities` (+ `extended_entities` for media) -> what the post tags, mentions, links
    to and shows."""
    media_src = extended.get("media") or entities.get("media") or []
    return Entities(
        hashtags=[h["text"] for h in entities.get("hashtags") or [] if h.get("text")],
        mentions=[
            m["screen_name"] for m in entities.get("user_mentions") or [] if m.get("screen_name")
        ],
        links=[
            u.get("expanded_url") or u["url"] for u in entities.get("urls") or [] if u.get("url")
        ],
        media=[
            {
                "url": m.get("media_url_https") or m.get("media_url"),
                "type": m.get("type"),
                "alt": m.get("ext_alt_text"),
            }
            for m in media_src
        ],
    )


def _v1_raw(status: Mapping[str, Any], retweet: Mapping[str, Any] | None) -> dict[str, Any]:
    raw = dict(status)
    if retweet:  # the row is the original; keep who retweeted it for provenance
        user = retweet.get("user") or {}
        raw["_retweet"] = {"id_str": retweet.get("id_str"), "user": user.get("screen_name"),
                           "created_at": retweet.get("created_at")}  # fmt: skip
    return raw


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def post_from_v1(tweet: Mapping[str, Any]) -> Post:
    """One v1.1 tweet -> Post. A retweet becomes its original (one row per post, full text):
    `full_text` (extended mode), else `extended_tweet` when `truncated` (streaming), else
    `text`."""
    retweet = tweet if isinstance(tweet.get("retweeted_status"), Mapping) else None
    status: Mapping[str, Any] = tweet["retweeted_status"] if retweet else tweet
    tweet_id = _ids(status.get("id_str"))
    user = _mapping(status.get("user"))
    if not tweet_id:
        raise ValueError("no id_str (numeric ids may have lost digits: export with id_str)")
    if not user.get("screen_name"):
        raise ValueError(f"tweet {tweet_id}: no user.screen_name")
    screen_name = account(user["screen_name"], "user.screen_name")
    created = twitter_time(status.get("created_at"))
    extended = _mapping(status.get("extended_tweet")) if status.get("truncated") else {}
    source = extended or status
    text = status.get("full_text") or source.get("full_text") or status.get("text") or ""
    if not isinstance(text, str):
        raise ValueError(f"tweet {tweet_id}: text must be a string, got {brief(text)}")
    quoted = _mapping(status.get("quoted_status"))
    return x_post(
        tweet_id,
        created,
        screen_name,
        text,
        _v1_raw(status, retweet),
        entities_v1(source.get("entities") or {}, source.get("extended_entities") or {}),
        username=screen_name,
        author_name=optional_text(user.get("name")),
        counts=counts(
            status.get("favorite_count"),
            status.get("retweet_count"),
            status.get("reply_count"),
            status.get("quote_count"),
        ),
        reply_to=_ids(status.get("in_reply_to_status_id_str")),
        quote_of=_ids(status.get("quoted_status_id_str")) or _ids(quoted.get("id_str")),
        lang=optional_text(status.get("lang")),
    )


def not_posts(obj: Any) -> str | None:
    """What a twarc line holds when it is something other than posts (a key of NOT_POSTS), else
    None: twarc writes accounts, lists, counts and compliance results in the same JSON lines."""
    if not isinstance(obj, Mapping):
        return None
    data = obj.get("data", obj)
    records = [r for r in (data if isinstance(data, list) else [data]) if isinstance(r, Mapping)]
    if not records or any("text" in r or "full_text" in r for r in records):
        return None  # a post, or a page with one
    kinds = {_kind(record) for record in records}
    return kinds.pop() if len(kinds) == 1 else None


def _kind(record: Mapping[str, Any]) -> str | None:
    if "tweet_count" in record:
        return "counts"
    if "action" in record and "id" in record:
        return "compliance"
    if "username" in record or "screen_name" in record:
        return "users"
    if "member_count" in record or "owner_id" in record:
        return "lists"
    return None


def parse_twarc_line(obj: Any) -> Page:
    """Any twarc line -> a Page of its posts (and, for a v2 page, the posts it skipped).
    Shapes: v1.1 tweet, v2 page, flattened v2 tweet.

    :raises ValueError: when the line is none of them, or is one tweet that cannot be read.
    """
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    kind = not_posts(obj)
    if kind:
        raise ValueError(f"not a post: {NOT_POSTS[kind]}")
    if "data" in obj:
        return posts_from_v2_page(obj)
    if "id_str" in obj or "user" in obj:  # v1.1: `user` is an object; v2 has `author_id`
        return Page([storable(post_from_v1(obj))])
    if "id" in obj and "text" in obj:
        return Page([storable(post_from_v2(obj))])
    raise ValueError("neither a v1.1 tweet, a v2 page nor a flattened v2 tweet")


def _refuse_what_is_not_posts(path: Path) -> None:
    """A file whose first line is not posts (accounts, lists, counts, compliance results, ids) is
    refused whole, before anything is stored, in one line saying what it is.

    :raises ConnectorError: naming the file and what it holds.
    """
    try:
        first = json.loads(first_line(path))
    except (ValueError, RecursionError):  # not JSON, not UTF-8: each line is rejected on its own
        return
    if isinstance(first, int) and not isinstance(first, bool):
        raise ConnectorError(
            f"{path.name} holds ids, not posts: hydrate them first (twarc2 hydrate "
            f"{path.name} tweets.jsonl) and import the tweets"
        )
    kind = not_posts(first)
    if kind:
        raise ConnectorError(
            f"{path.name} holds {NOT_POSTS[kind]}, not posts: import a file of tweets "
            "(from twarc2 search, timeline or hydrate)"
        )


def _newest_versions() -> Callable[[Post], bool]:
    """Whether a post read is not an older version of an edited post already read in this pass.

    The reader keeps the last copy of a post in a page, so an original read after its edit
    would undo the edit there (storage keeps the newest only across copies it is given)."""
    newest: dict[str, datetime] = {}

    def keep(post: Post) -> bool:
        history = post.raw.get("edit_history_tweet_ids")
        if not (isinstance(history, list) and len(history) > 1):
            return True
        when = post.edited_at or EARLIEST
        if when < newest.get(post.id, EARLIEST):
            return False
        newest[post.id] = when
        return True

    return keep


def read_twarc(
    path: Path, start: int = 0, start_line: int = 0, page_size: int = PAGE_SIZE
) -> Iterator[Page]:
    """Pages of posts from a twarc or twarc2 JSONL file, gzipped or not (any of the three line
    shapes), each with what its posts lost said once (`x.page_notes`).

    :raises ConnectorError: for a file that is not posts (`_refuse_what_is_not_posts`), before
        any page.
    """
    path = Path(path)
    _refuse_what_is_not_posts(path)
    keep = _newest_versions()

    def parse(obj: Any) -> Page:
        page = parse_twarc_line(obj)
        page.posts = [post for post in page.posts if keep(post)]
        return page

    for page in read_lines(path, parse, start, start_line, page_size):
        page.warnings += page_notes(page.posts)
        yield page


class TwarcConnector(FileSource):
    """A `twarc` source: a twarc/twarc2 JSONL file (or .jsonl.gz)."""

    reader = staticmethod(read_twarc)
    kind = "twarc JSONL file"
