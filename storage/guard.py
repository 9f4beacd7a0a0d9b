"""What the database can hold: why a post cannot be stored, and records made safe to keep.

The last line of defence for every connector: `upsert_posts` asks `why_unstorable` about each post
and quarantines the ones it names instead of failing the page. A post is storable when
- `platform`, `id` and `author` are non-blank text, and they, `via` and `local_id` are at most
  `KEY_BYTES` of UTF-8 (they are indexed: PostgreSQL cannot index a much longer value);
- every text is valid Unicode (no unpaired surrogates) and, on PostgreSQL, has no NUL character;
- `created_at` (and `edited_at`, when set) is a date and time that converts to UTC at least a day
  inside the calendar (years 1 to 9999), so every time zone can show it; a naive one is taken as UTC;
- each count is a whole number the column holds (64-bit on SQLite, 32-bit on PostgreSQL);
- `hashtags`, `mentions` and `links` are lists of such text, `media` a list of JSON objects and
  `raw` a JSON object, each reading back from JSON exactly as given (no NaN, no non-text keys).
Only `deleted` is not checked: only its truth is used.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, get_type_hints

from aggregator.clock import as_utc  # re-exported: the one conversion to aware UTC
from connectors.base import Post

__all__ = [
    "CHECKS",
    "KEY_BYTES",
    "RAW_CAP",
    "as_utc",
    "one_line",
    "storable_json",
    "why_unstorable",
]

KEY_BYTES = (
    1000  # two of them, as in (platform, post_id), stay under PostgreSQL's 2704-byte index row
)
RAW_CAP = 64 * 1024  # characters of JSON text kept of a quarantined record
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, tzinfo=UTC)  # exclusive
INT_BITS = {"postgresql": 32}  # counts are INTEGER columns: int4 on PostgreSQL, 64-bit on SQLite
SURROGATE = re.compile("[\ud800-\udfff]")

Check = Callable[[Any, str], str | None]  # (value, dialect) -> what is wrong with it, or None


def _text(value: Any, dialect: str) -> str | None:
    if not isinstance(value, str):
        return f"must be text, not {type(value).__name__}"
    if found := SURROGATE.search(value):
        return f"has an unpaired surrogate (U+{ord(found.group()):04X}), which is not Unicode text"
    if dialect == "postgresql" and "\x00" in value:
        return "has a NUL character, which PostgreSQL cannot store"
    return None


def _key(value: Any, dialect: str) -> str | None:
    if problem := _text(value, dialect):
        return problem
    if not value.strip():
        return "is blank"
    if len(value) > KEY_BYTES or len(value.encode("utf-8")) > KEY_BYTES:
        return f"is longer than {KEY_BYTES} bytes, more than the database can index"
    return None


def _time(value: Any, _dialect: str) -> str | None:
    if not isinstance(value, datetime):
        return f"must be a date and time, not {type(value).__name__}"
    try:
        utc = as_utc(value)
    except Exception as exc:  # year 9999 at -05:00 is past the calendar in UTC; a broken tzinfo
        return f"{_shown(value)} cannot be converted to UTC ({one_line(exc, 200)})"
    if not EARLIEST <= utc < LATEST:
        return f"{_shown(value)} is too near an end of the calendar to show in every time zone"
    return None


def _count(value: Any, dialect: str) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return f"must be a whole number, not {type(value).__name__}"
    bits = INT_BITS.get(dialect, 64)
    if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
        shown = str(value) if value.bit_length() <= 128 else f"(a {value.bit_length()}-bit number)"
        return f"{shown} is outside the {bits}-bit range the database stores"
    return None


def _texts(value: Any, dialect: str) -> str | None:
    if not isinstance(value, list):
        return f"must be a list of text, not {type(value).__name__}"
    for n, item in enumerate(value):
        if problem := _text(item, dialect):
            return f"item {n} {problem}"
    return None


def _json(value: Any) -> str | None:
    """Why `value` does not read back from JSON as it is (surrogates, NaN, tuples, int keys…)."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")  # unpaired surrogates: the exports write UTF-8
        same = json.loads(text) == value
    except (TypeError, ValueError, RecursionError) as exc:
        return f"is not JSON ({one_line(exc, 200)})"
    return None if same else "changes when written as JSON (keys must be text; no tuples)"


def _objects(value: Any, _dialect: str) -> str | None:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        return "must be a list of JSON objects"
    return _json(value)


def _object(value: Any, _dialect: str) -> str | None:
    if not isinstance(value, dict):
        return f"must be a JSON object, not {type(value).__name__}"
    return _json(value)


def _optional(check: Check) -> Check:
    return lambda value, dialect: None if value is None else check(value, dialect)


def _fields(kind: Any, but: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The names of Post's fields of type `kind` (e.g. `str | None`), in its order, but `but`."""
    hints = get_type_hints(Post)
    return tuple(f.name for f in fields(Post) if hints[f.name] == kind and f.name not in but)


KEYS = ("platform", "id", "author")  # indexed and required
OPTIONAL_KEYS = ("via", "local_id")  # indexed, so held to KEY_BYTES
OPTIONAL_TEXTS = _fields(str | None, but=OPTIONAL_KEYS)  # url, author_name, html…
COUNTS = _fields(int | None)  # likes, reposts…
TEXT_LISTS = ("hashtags", "mentions", "links")
# Every field of Post but `deleted`, with what it must be (tests hold a new field to this).
CHECKS: dict[str, Check] = {
    **{name: _key for name in KEYS},
    **{name: _optional(_key) for name in OPTIONAL_KEYS},
    "created_at": _time,
    "edited_at": _optional(_time),
    "text": _text,
    **{name: _optional(_text) for name in OPTIONAL_TEXTS},
    **{name: _optional(_count) for name in COUNTS},
    **{name: _texts for name in TEXT_LISTS},
    "media": _objects,
    "raw": _object,
}
# Whether `_plainly_storable` looks at every field CHECKS does (a field checked by hand in CHECKS
# and not there leaves every post to CHECKS: tests say so).
PLAIN_COVERS_ALL = set(CHECKS) == {
    *KEYS, *OPTIONAL_KEYS, "created_at", "edited_at", "text", *OPTIONAL_TEXTS, *COUNTS,
    *TEXT_LISTS, "media", "raw",
}  # fmt: skip
PLAIN_KEY = KEY_BYTES // 4  # characters: a key this short is never longer in UTF-8 bytes
INT_RANGES = {d: (-(2 ** (b - 1)), 2 ** (b - 1)) for d, b in {"sqlite": 64, **INT_BITS}.items()}


def why_unstorable(post: Post, dialect: str) -> str | None:
    """One line naming the first value of `post` the database (`dialect`) cannot hold, or None."""
    if PLAIN_COVERS_ALL and _plainly_storable(post, dialect):
        return None
    for name, check in CHECKS.items():
        if problem := check(getattr(post, name, None), dialect):
            return f"{name} {problem}"
    return None


def _plainly_storable(post: Post, dialect: str) -> bool:
    """Whether `post` is of the common kind every check in CHECKS passes, told in one pass: short
    keys, UTC times, exact text, lists and counts, media and raw of plain JSON (`_plain_json`),
    and no surrogate (nor NUL, on PostgreSQL) in any text. False leaves the post to CHECKS, which
    name what is wrong (or find nothing: this pass only knows the common kind)."""
    given = vars(post)
    strings: list[str] = []  # every text in the post, checked at the end in one piece
    for name in (*KEYS, *OPTIONAL_KEYS):
        value = given[name]
        if value is None and name in OPTIONAL_KEYS:
            continue
        if type(value) is not str or not 0 < len(value) <= PLAIN_KEY or value.isspace():
            return False
        strings.append(value)
    for name in ("text", *OPTIONAL_TEXTS):
        value = given[name]
        if value is None and name != "text":
            continue
        if type(value) is not str:
            return False
        strings.append(value)
    for name in ("created_at", "edited_at"):
        value = given[name]
        if value is None and name == "edited_at":
            continue
        if type(value) is not datetime or value.tzinfo is not UTC or not EARLIEST <= value < LATEST:
            return False
    low, high = INT_RANGES.get(dialect, INT_RANGES["sqlite"])
    for name in COUNTS:
        value = given[name]
        if value is not None and not (type(value) is int and low <= value < high):
            return False
    for name in TEXT_LISTS:
        value = given[name]
        if type(value) is not list:
            return False
        strings += value
    media, raw = given["media"], given["raw"]
    if type(media) is not list or type(raw) is not dict:
        return False
    if not set(map(type, media)) <= {dict}:
        return False
    if not _plain_json([media, raw], strings):
        return False
    try:
        joined = "".join(strings)  # TypeError: an item of a list is not text
        joined.encode("utf-8")  # UnicodeEncodeError (a ValueError): an unpaired surrogate
    except (TypeError, ValueError):
        return False
    return not (dialect == "postgresql" and "\x00" in joined)


PLAIN_DEPTH, PLAIN_ITEMS = 64, 10_000  # deeper or bigger JSON is left to json itself
PLAIN_INT = 2**64  # a bigger whole number is left to json too (it writes a few thousand digits)


def _plain_json(value: Any, strings: list[str]) -> bool:
    """Whether `value` is plain JSON that reads back exactly as given: dicts with text keys,
    lists, text, whole numbers below PLAIN_INT, finite floats, true, false and null, of exactly
    those types (no tuple, no subclass), at most PLAIN_DEPTH deep and PLAIN_ITEMS in all (so a
    cycle ends here too). Every text and key in it joins `strings`, whose Unicode the caller
    checks."""
    level, seen = [value], 0
    for _ in range(PLAIN_DEPTH):
        seen += len(level)
        if seen > PLAIN_ITEMS:
            return False
        deeper: list[Any] = []
        for item in level:
            kind = type(item)
            if kind is str:
                strings.append(item)
            elif kind is dict:
                if not set(map(type, item)) <= {str}:  # text keys only
                    return False
                strings.extend(item)
                deeper.extend(item.values())
            elif kind is list:
                deeper.extend(item)
            elif kind is int:
                if not -PLAIN_INT < item < PLAIN_INT:
                    return False
            elif kind is float:
                if not math.isfinite(item):
                    return False
            elif not (kind is bool or item is None):
                return False
        if not deeper:
            return True
        level = deeper
    return False


def _repr(value: Any) -> str:
    try:
        return repr(value)[:RAW_CAP]
    except Exception:  # a huge int, a hostile __repr__: say what it was
        return f"<{type(value).__name__} that cannot be shown>"


def _shown(value: Any) -> str:
    """Text as it is, an error as its message, a time in ISO 8601, anything else as its repr."""
    if isinstance(value, str):
        return value
    try:
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, BaseException):
            return str(value) or type(value).__name__
        return _repr(value)
    except Exception:  # a tzinfo or an error that fails to describe itself
        return _repr(value)


def one_line(value: object, cap: int) -> str:
    """`value` as one line of at most `cap` characters any database keeps (NUL and unpaired
    surrogates escaped)."""
    text = _shown(value)[: cap * 4].encode("utf-8", "backslashreplace").decode("utf-8")
    text = " ".join(text.replace("\x00", "\\x00").split())
    return text if len(text) <= cap else text[: cap - 1] + "…"


def storable_json(value: Any) -> Any:
    """`value` as JSON both databases keep, never raising: what JSON cannot write becomes text
    (a time in ISO 8601, anything else its repr), unpaired surrogates '?'; JSON text longer than RAW_CAP (or too deep to read back) is
    kept as text, `{"json_text": its first RAW_CAP characters, "truncated": whether cut}`."""
    try:
        text = json.dumps(value, default=_shown, ensure_ascii=False, allow_nan=False)
    except Exception:  # NaN, a circular or too deep structure, a huge int
        text = json.dumps(_repr(value), ensure_ascii=False)
    text = text.encode("utf-8", "replace").decode("utf-8")
    if len(text) <= RAW_CAP:
        try:
            return json.loads(text)
        except RecursionError:  # deeper than the reader goes: keep it as text
            pass
    return {"json_text": text[:RAW_CAP], "truncated": len(text) > RAW_CAP}
