"""Twitter archives: twarc 1.x (v1.1 tweets) and twarc2 (v2 pages or flattened tweets) JSONL.

v2 tweets are parsed by `x.py` (the same shape the live API returns); `tags.py` reuses the v1.1
helpers here.
"""

from __future__ import annotations

import html
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from connectors.archives import PAGE_SIZE, FileSource, read_lines
from connectors.base import Page, Post, parse_time
from connectors.values import account, brief, in_window, optional_text, storable
from connectors.x import counts, post_from_v2, posts_from_v2_page, tweet_url

__all__ = [
    "TwarcConnector",
    "entities_v1",
    "post_from_v1",
    "read_twarc",
    "twitter_time",
]

V1_TIME = "%a %b %d %H:%M:%S %z %Y"  # "Wed Oct 10 20:19:24 +0000 2018"


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


def entities_v1(entities: Mapping[str, Any], extended: Mapping[str, Any]) -> dict[str, list[Any]]:
    """v1.1 `entities` (+ `extended_entities` for media) -> Post list fields."""
    media_src = extended.get("media") or entities.get("media") or []
    return {
        "hashtags": [h["text"] for h in entities.get("hashtags") or [] if h.get("text")],
        "mentions": [
            m["screen_name"] for m in entities.get("user_mentions") or [] if m.get("screen_name")
        ],
        "links": [
            u.get("expanded_url") or u["url"] for u in entities.get("urls") or [] if u.get("url")
        ],
        "media": [
            {
                "url": m.get("media_url_https") or m.get("media_url"),
                "type": m.get("type"),
                "alt": m.get("ext_alt_text"),
            }
            for m in media_src
        ],
    }


def _v1_raw(status: Mapping[str, Any], retweet: Mapping[str, Any] | None) -> dict[str, Any]:
    raw = dict(status)
    if retweet:  # the row is the original; keep who retweeted it for provenance
        user = retweet.get("user") or {}
        raw["_retweet"] = {"id_str": retweet.get("id_str"), "user": user.get("screen_name"),
                           "created_at": retweet.get("created_at")}  # fmt: skip
    return raw


def post_from_v1(tweet: Mapping[str, Any]) -> Post:
    """One v1.1 tweet -> Post. A retweet becomes its original (one row per post, full text)."""
    retweet = tweet if isinstance(tweet.get("retweeted_status"), Mapping) else None
    status: Mapping[str, Any] = tweet["retweeted_status"] if retweet else tweet
    tweet_id = _ids(status.get("id_str"))
    user = status.get("user") if isinstance(status.get("user"), Mapping) else {}
    if not tweet_id:
        raise ValueError("no id_str (numeric ids may have lost digits: export with id_str)")
    if not user.get("screen_name"):
        raise ValueError(f"tweet {tweet_id}: no user.screen_name")
    screen_name = account(user["screen_name"], "user.screen_name")
    created = twitter_time(status.get("created_at"))
    extended = status.get("extended_tweet") if status.get("truncated") else None
    source = extended if isinstance(extended, Mapping) else status
    text = status.get("full_text") or source.get("full_text") or status.get("text") or ""
    if not isinstance(text, str):
        raise ValueError(f"tweet {tweet_id}: text must be a string, got {brief(text)}")
    quoted = status.get("quoted_status") if isinstance(status.get("quoted_status"), Mapping) else {}
    lang = optional_text(status.get("lang"))
    return Post(
        platform="x",
        id=tweet_id,
        created_at=created,
        author=screen_name,
        author_name=optional_text(user.get("name")),
        text=html.unescape(text),  # v1.1 escapes & < > in text
        url=tweet_url(screen_name, tweet_id),
        reply_to=_ids(status.get("in_reply_to_status_id_str")),
        quote_of=_ids(status.get("quoted_status_id_str")) or _ids(quoted.get("id_str")),
        lang=None if lang == "und" else lang,
        raw=_v1_raw(status, retweet),
        **counts(
            status.get("favorite_count"),
            status.get("retweet_count"),
            status.get("reply_count"),
            status.get("quote_count"),
        ),
        **entities_v1(source.get("entities") or {}, source.get("extended_entities") or {}),
    )


def parse_twarc_line(obj: Any) -> Page:
    """Any twarc line -> a Page of its posts (and, for a v2 page, the posts it skipped).
    Shapes: v1.1 tweet, v2 page, flattened v2 tweet.

    :raises ValueError: when the line is none of them, or is one tweet that cannot be read.
    """
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    if "data" in obj:
        return posts_from_v2_page(obj)
    if "id_str" in obj or "user" in obj:  # v1.1: `user` is an object; v2 has `author_id`
        return Page([storable(post_from_v1(obj))])
    if "id" in obj and "text" in obj:
        return Page([storable(post_from_v2(obj))])
    raise ValueError("neither a v1.1 tweet, a v2 page nor a flattened v2 tweet")


def read_twarc(
    path: Path, start: int = 0, start_line: int = 0, page_size: int = PAGE_SIZE
) -> Iterator[Page]:
    """Pages of posts from a twarc or twarc2 JSONL file (any of the three line shapes)."""
    return read_lines(Path(path), parse_twarc_line, start, start_line, page_size)


class TwarcConnector(FileSource):
    """A `twarc` source: a twarc/twarc2 JSONL file."""

    reader = staticmethod(read_twarc)
    kind = "twarc JSONL file"
