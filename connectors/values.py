"""The values a post may hold: ids, accounts, counts and dates checked one by one, and a whole Post
checked (`storable`) before it leaves a connector, so a hostile record fails alone, never its page."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from aggregator.clock import as_utc

__all__ = [
    "EARLIEST",
    "LATEST",
    "MAX_COUNT",
    "account",
    "brief",
    "count",
    "in_window",
    "optional_id",
    "optional_text",
    "post_id",
    "storable",
]

# Before the Unix epoch or after 2099 a post's date is a broken clock or a hostile value; either
# would stretch every chart and report across centuries.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
MAX_COUNT = 2**63 - 1  # the largest whole number SQLite and PostgreSQL (BIGINT) hold
MAX_KEY_BYTES = 1000  # ids and accounts are indexed: PostgreSQL refuses index entries past ~2.7 kB
ID_FIELDS = ("reply_to", "repost_of", "quote_of", "local_id")
TEXT_FIELDS = ("url", "author_name", "lang", "html", "via", "reply_to_via")
COUNT_FIELDS = ("likes", "reposts", "replies", "quotes")
LIST_FIELDS = ("hashtags", "mentions", "links")
SURROGATE_RE = re.compile("[\ud800-\udfff]")


class Checked(Protocol):
    """What `storable` reads of a post by name (`connectors.base.Post` has it all; the other
    fields are named in the lists above). Named here, so that this module needs nothing from
    connectors.base, which builds on it."""

    platform: str
    id: str
    author: str
    created_at: datetime
    edited_at: datetime | None
    text: str
    media: list[dict[str, Any]]
    deleted: bool
    raw: dict[str, Any]


PostT = TypeVar("PostT", bound=Checked)


def brief(value: Any, limit: int = 60) -> str:
    """`repr(value)` cut to `limit` characters: a hostile value never floods a one-line reason."""
    try:
        shown = repr(value)
    except ValueError:  # an int past Python's 4300-digit limit for printing
        shown = f"<a {value.bit_length()}-bit number>"
    except RecursionError:
        shown = f"<a {type(value).__name__} nested too deep to show>"
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def in_window(moment: datetime, what: str = "date-time", shown: Any = None) -> datetime:
    """An aware (or naive = UTC) datetime -> aware UTC between EARLIEST and LATEST.

    :raises ValueError: "<what> <shown> is out of range …" (also for dates past what UTC can hold).
    """
    try:
        utc = as_utc(moment)
    except OverflowError:  # 9999-12-31T23:59:59-05:00 is past year 9999 in UTC
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise ValueError(
            f"{what} {brief(moment if shown is None else shown)} is out of range "
            f"(dates from {EARLIEST.year} to {LATEST.year - 1} are accepted)"
        )
    return utc


def post_id(value: Any, what: str = "id") -> str:
    """An id given as a string or a whole number (never true/false, 1.5e3 or an object) -> text.

    :raises ValueError: naming `what` when the id is of another type, blank or too long.
    """
    if type(value) is str and 0 < len(value) <= MAX_KEY_BYTES // 4 and not value.isspace():
        return value  # the common case: text too short to be too long in any encoding
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"{what} must be a string or a whole number, got {brief(value)}")
    text = str(value)
    if not text.strip():
        raise ValueError(f"{what} is blank")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise ValueError(f"{what} is longer than {MAX_KEY_BYTES} bytes")
    return text


def optional_id(value: Any, what: str) -> str | None:
    """`post_id` for a reference that may be absent (None or "")."""
    return None if value is None or value == "" else post_id(value, what)


def account(value: Any, what: str = "author") -> str:
    """An account name: a string that is not blank. :raises ValueError: naming `what`."""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, got {brief(value)}")
    return post_id(value, what)


def optional_text(value: Any) -> str | None:
    """A display value (a name, a language code) if it is a non-empty string; anything else is
    a platform's quirk, not a reason to lose the post: None."""
    return value if isinstance(value, str) and value else None


def count(value: Any, what: str, strict: bool = False) -> int | None:
    """A public count (likes, reposts…): a whole number from 0 to MAX_COUNT, or None.

    A count of another type (a string, a float) is None, as a platform's quirk; with `strict`
    (our own interchange format) it is an error, and a string of digits is read as its number.

    :raises ValueError: naming `what` for a whole number that storage cannot hold (10**30), and
        with `strict` for anything that is not a whole number.
    """
    if value is None:
        return None
    if strict and isinstance(value, str) and value.isascii() and value.isdigit():
        digits = value.lstrip("0")
        value = int(digits or "0") if len(digits) <= 19 else MAX_COUNT + 1
    whole = isinstance(value, int) and not isinstance(value, bool)
    if whole and abs(value) > MAX_COUNT:
        raise ValueError(f"{what} {brief(value, 30)} is out of range (0 to {MAX_COUNT})")
    if whole and value >= 0:
        return value
    if strict:
        raise ValueError(f"{what} must be a whole number from 0 to {MAX_COUNT}, got {brief(value)}")
    return None


def storable(post: PostT) -> PostT:
    """The post as storage can hold it, checked field by field.

    Unpaired surrogates (invalid Unicode that UTF-8 cannot encode) are replaced with U+FFFD in
    the text fields, the lists and the raw payload; in an id or the author they are an error.

    :raises ValueError: naming the first field that cannot be stored.
    """
    _keys(post)
    if not isinstance(post.created_at, datetime) or post.created_at.tzinfo is None:
        raise ValueError(f"created_at {brief(post.created_at)} is not an aware datetime")
    post.created_at = in_window(post.created_at, "created_at")
    if post.edited_at is not None:
        post.edited_at = in_window(post.edited_at, "edited_at")
    if not isinstance(post.text, str):
        raise ValueError(f"text must be a string, got {brief(post.text)}")
    for name in ("text", *TEXT_FIELDS):
        value = getattr(post, name)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name} must be a string, got {brief(value)}")
        setattr(post, name, value if value is None else _unicode(value))
    for name in COUNT_FIELDS:
        value = getattr(post, name)
        if value is not None and count(value, name, strict=True) != value:
            raise ValueError(f"{name} must be a whole number, got {brief(value)}")
    for name in LIST_FIELDS:
        value = getattr(post, name)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{name} must be a list of strings")
        setattr(post, name, [_unicode(v) for v in value])
    if not isinstance(post.media, list) or not all(isinstance(m, dict) for m in post.media):
        raise ValueError("media must be a list of objects")
    if not isinstance(post.deleted, bool):
        raise ValueError(f"deleted must be true or false, got {brief(post.deleted)}")
    if not isinstance(post.raw, dict):
        raise ValueError("raw payload is not an object")
    post.media, post.raw = _json("media", post.media), _json("raw payload", post.raw)
    return post


def _keys(post: Checked) -> None:
    """The values storage indexes: platform, id and author (required), and the references."""
    post.platform = _valid_key(account(post.platform, "platform"), "platform")
    post.id = _valid_key(account(post.id, "id"), "id")
    post.author = _valid_key(account(post.author, "author"), "author")
    for name in ID_FIELDS:
        value = getattr(post, name)
        if value is not None:
            _valid_key(account(value, name), name)


def _valid_key(value: str, what: str) -> str:
    if _unicode(value) != value:
        raise ValueError(f"{what} {brief(value)} is not valid Unicode")
    return value


def _unicode(text: str) -> str:
    """Unpaired surrogates (from JSON escapes such as "\\ud800") -> U+FFFD; other text unchanged."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return SURROGATE_RE.sub("\ufffd", text)
    return text


def _json(what: str, value: Any) -> Any:
    """Plain JSON (no NaN or Infinity, which JSON and PostgreSQL refuse), surrogates repaired."""
    try:
        dumped = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(f"{what} is not plain JSON ({exc})") from None
    repaired = _unicode(dumped)
    return value if repaired is dumped else json.loads(repaired)
