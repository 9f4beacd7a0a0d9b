"""Archives people already hold: our JSONL interchange format (twarc and TAGS join later)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import math
import re
import zlib
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from connectors.base import ConnectorError, Page, Post, SourceSpec, parse_time, reason
from connectors.html import links_in_text
from connectors.settings import FileSettings
from connectors.undated import UNDATED, undated
from connectors.values import MAX_COUNT, account, brief, count, optional_id, post_id, storable

__all__ = [
    "IMPORT_PAGE_SIZE",
    "PAGE_SIZE",
    "FileSource",
    "JsonlConnector",
    "file_fingerprint",
    "first_line",
    "open_archive",
    "post_from_interchange",
    "read_jsonl",
    "read_lines",
    "resume_point",
    "stamp",
]

PAGE_SIZE = 500  # posts a page of a source: each is saved with the cursor to resume after it
IMPORT_PAGE_SIZE = 2000  # posts a page of a file read whole (import): fewer, larger transactions
REQUIRED = ("platform", "id", "created_at", "author", "text", "url")
# Required keys that may be empty or null: a post whose source gave no readable time (our export
# writes null), an archive without links. `text` may be "" (a media-only post), never null.
NULLABLE = ("created_at", "url")
TIMELESS = (
    "posts whose created_at is empty, null or 1970-01-01T00:00:00Z kept with no time: left out "
    "of every session and the story's timeline, exported with an empty time"
)
INT_FIELDS = ("likes", "reposts", "replies", "quotes")
ID_FIELDS = ("reply_to", "repost_of", "quote_of")
TEXT_FIELDS = ("author_name", "lang", "html", "url")

GZIP_MAGIC = b"\x1f\x8b"
DAMAGED_GZIP = (EOFError, zlib.error, gzip.BadGzipFile)  # what reading a broken .gz raises

_MISSING = object()  # a key a line does not have
HASHTAG_RE = re.compile(r"(?:^|(?<=[^\w&]))[#＃](\w+)")
MENTION_RE = re.compile(r"(?:^|(?<=[^\w]))@(\w[\w.\-]*(?:@[\w.\-]+\w)?)")


def post_from_interchange(obj: Mapping[str, Any]) -> Post:
    """One interchange object -> Post. Raises ValueError naming the bad field."""
    if not isinstance(obj, Mapping):
        raise ValueError("not a JSON object")
    missing = [k for k in REQUIRED if (v := obj.get(k, _MISSING)) is _MISSING or _empty(k, v)]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    text = obj["text"]
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {brief(text)}")
    get = obj.get
    fields: dict[str, Any] = {}
    for key in INT_FIELDS:  # the common values first, then the strict check of anything else
        value = get(key)
        plain = value is None or (type(value) is int and 0 <= value <= MAX_COUNT)
        fields[key] = value if plain else count(value, key, strict=True)
    for key in ID_FIELDS:
        value = get(key)
        fields[key] = None if value is None else optional_id(value, key)
    for key in TEXT_FIELDS:
        value = get(key)
        fields[key] = value if type(value) is str and value else _text(value, key)
    given = {key: _strings(obj, key) for key in ("hashtags", "mentions", "links")}
    hashtags = HASHTAG_RE.findall(text) if given["hashtags"] is None else given["hashtags"]
    edited = get("edited_at")
    return Post(
        platform=account(obj["platform"], "platform"),
        id=post_id(obj["id"]),
        created_at=_created(obj["created_at"]),
        author=account(obj["author"]),
        text=text,
        hashtags=list(dict.fromkeys(h.lstrip("#＃") for h in hashtags)),
        mentions=MENTION_RE.findall(text) if given["mentions"] is None else given["mentions"],
        links=links_in_text(text) if given["links"] is None else given["links"],
        media=_media(get("media")),
        edited_at=parse_time(edited, "edited_at") if edited else None,
        deleted=_flag(get("deleted"), "deleted"),
        raw=dict(obj),
        **fields,
    )


def _empty(key: str, value: Any) -> bool:
    """Whether a required key's value counts as missing."""
    if value is None:
        return key not in NULLABLE
    return value == "" and key not in NULLABLE and key != "text"


def _created(value: Any) -> datetime:
    """`created_at`: empty or null is no time (connectors.undated), never a made-up one."""
    return UNDATED if value is None or value == "" else parse_time(value, "created_at")


def _text(value: Any, key: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string, got {brief(value)}")
    return value


def _strings(obj: Mapping[str, Any], key: str) -> list[str] | None:
    """A list of strings the line gives, or None when it gives none (the text is read instead)."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not (
        set(map(type, value)) <= {str} or all(isinstance(v, str) for v in value)
    ):
        raise ValueError(f"{key} must be a list of strings")
    return value


def _media(value: Any) -> list[dict[str, Any]]:
    """`media`: objects as given; a bare URL string becomes {"url": …}."""
    items = [] if value is None else value
    if not isinstance(items, list) or not all(isinstance(m, dict | str) for m in items):
        raise ValueError("media must be a list of objects")
    return [m if isinstance(m, dict) else {"url": m} for m in items]


def _flag(value: Any, key: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false, got {brief(value)}")
    return value


ParseLine = Callable[[Any], Page]


def is_gzip(path: Path) -> bool:
    """Whether a file is gzip-compressed, told by its first bytes (not its name)."""
    with path.open("rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def open_archive(path: Path) -> io.BufferedIOBase:
    """A file's bytes as written: a gzip-compressed one (`.jsonl.gz`) is decompressed as it is
    read, never whole in memory. :raises OSError: when the file cannot be opened."""
    return gzip.open(path, "rb") if is_gzip(path) else path.open("rb")


def first_line(path: Path) -> bytes:
    """A file's first line that is not blank; b"" when it has none or cannot be read (its
    reader then says why)."""
    try:
        with open_archive(path) as fh:
            return next((line for line in fh if line.strip()), b"")
    except (OSError, *DAMAGED_GZIP):
        return b""


def _lines(fh: io.BufferedIOBase, start: int, path: Path) -> Iterator[bytes]:
    """The lines from byte `start` (of the text as written, in a gzip file too).

    :raises ConnectorError: naming the file when its gzip stream is damaged (cut short, corrupt),
        after the lines before the damage.
    """
    try:
        fh.seek(start)
        yield from fh
    except DAMAGED_GZIP as exc:
        raise ConnectorError(f"cannot read {path.name}: a damaged gzip file ({exc})") from None


def read_lines(
    path: Path, parse: ParseLine, start: int = 0, start_line: int = 0, page_size: int = PAGE_SIZE,
    parse_plain: ParseLine | None = None,
) -> Iterator[Page]:  # fmt: skip
    """Pages from a JSON-lines file, from byte `start` (line `start_line`), of `page_size` posts.

    `parse` turns one line's JSON value into a Page of its posts and the records it skipped;
    `parse_plain`, when given, does it for a plain line (`_decode`), and may leave out the checks
    that plain JSON always passes. Each page's cursor is the byte offset after its last line, so
    a killed import resumes there (in a gzip file, of the text as written: `open_archive`).
    Whatever is wrong with one line (not UTF-8, not JSON, a bad value) skips that line only, kept
    in `quarantined` with its line number; the good lines are still yielded. Every copy of a post
    is kept, in the file's order: storage merges the copies of one post by its rules (an older
    copy never undoes an edit, a deletion stays) within a page as across pages, so how a file is
    cut into pages changes nothing that is stored.
    """
    page = Page([])
    line_no, offset = start_line, start
    try:
        fh = open_archive(path)
    except OSError as exc:
        raise ConnectorError(f"cannot read {path}: {exc.strerror}") from None
    with fh:
        for raw_line in _lines(fh, start, path):
            line_no += 1
            offset += len(raw_line)
            if raw_line.strip():
                for post in _read_line(raw_line, parse, parse_plain, f"line {line_no}", page):
                    post.via = path.name
                    page.posts.append(post)
            if len(page.posts) >= page_size:
                yield _filled(page, offset, line_no)
                page = Page([])
    yield _filled(page, offset, line_no)


class _NotFinite(Exception):
    """NaN or an infinite number in a line (NaN, Infinity, 1e400): plain JSON has none."""


def _constant(name: str) -> Any:
    raise _NotFinite(name)


def _float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _NotFinite(text)
    return number


PLAIN_JSON = json.JSONDecoder(parse_constant=_constant, parse_float=_float)
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # may be an unpaired surrogate


def _decode(text: str) -> tuple[Any, bool]:
    """A line's JSON value, and whether it is plain: every string in it Unicode text (no escaped
    surrogate that may be unpaired) and every number finite (no NaN, Infinity or 1e400, which
    are read all the same: only the record holding one is refused, by its checks).

    :raises ValueError: (json.JSONDecodeError among them) and RecursionError, as json.loads.
    """
    try:
        obj = PLAIN_JSON.decode(text)
    except _NotFinite:
        return json.loads(text), False
    return obj, "\\u" not in text or not SURROGATE_ESCAPE.search(text)


def _read_line(
    raw_line: bytes, parse: ParseLine, parse_plain: ParseLine | None, where: str, page: Page
) -> list[Post]:
    """One line's posts; what is wrong with it, or with any record in it, is rejected on `page`."""
    try:
        text = raw_line.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        page.reject(where, "not UTF-8", raw_line.decode("utf-8", "replace").rstrip("\r\n"))
        return []
    try:
        obj, plain = _decode(text)
    except json.JSONDecodeError as exc:
        page.reject(where, f"invalid JSON ({exc.msg})", text)
        return []
    except (ValueError, RecursionError) as exc:  # a 5000-digit number, [[[[…]]]]
        why = "nested too deep" if isinstance(exc, RecursionError) else reason(exc)
        page.reject(where, f"invalid JSON ({why})", text)
        return []
    try:
        found = (parse_plain if plain and parse_plain else parse)(obj)
    except Exception as exc:  # any bad value in this line: this line only
        page.reject(where, reason(exc), obj)
        return []
    for item in found.quarantined:
        page.reject(f"{where} {item.where}".rstrip(), item.reason, item.raw)
    page.warnings += found.warnings
    return found.posts


def _filled(page: Page, offset: int, line: int) -> Page:
    page.cursor = {"offset": offset, "line": line}
    return page


def _interchange_line(obj: Any) -> Page:
    return Page([storable(post_from_interchange(obj))])


def _plain_interchange_line(obj: Any) -> Page:
    """`_interchange_line` for a plain line (`_decode`): what `post_from_interchange` makes of
    plain JSON is already as `storable` would leave it (tests/connectors/test_jsonl_bulk.py)."""
    return Page([post_from_interchange(obj)])


def read_jsonl(
    path: Path, start: int = 0, start_line: int = 0, page_size: int = IMPORT_PAGE_SIZE
) -> Iterator[Page]:
    """Pages of posts from a file in our JSONL interchange format (docs/jsonl.md), `page_size`
    posts each (a source asks for PAGE_SIZE); a page that keeps posts with no time
    (connectors.undated) says so in one warning, the same on every page (an import says it
    once)."""
    pages = read_lines(
        Path(path), _interchange_line, start, start_line, page_size, _plain_interchange_line
    )
    for page in pages:
        if any(undated(post.created_at) for post in page.posts):
            page.warnings.append(TIMELESS)
        yield page


def file_fingerprint(path: Path, length: int = 4096) -> str:
    """Hash of the first `length` bytes: tells an appended file (resume) from a replaced one (restart)."""
    with path.open("rb") as fh:
        return hashlib.sha256(fh.read(length)).hexdigest()[:16]


def resume_point(
    path: Path, cursor: Mapping[str, Any] | None, count_key: str = "line"
) -> tuple[int, int]:
    """(offset, line or row) to start from: the cursor's only if it was made on this same file.
    (A gzip file's offset counts the text as written, so its compressed size says nothing.)"""
    if cursor and "head" in cursor:
        offset, head_len = int(cursor.get("offset", 0)), int(cursor.get("head_len", 0))
        within = is_gzip(path) or offset <= path.stat().st_size
        if within and file_fingerprint(path, head_len) == cursor["head"]:
            return offset, int(cursor.get(count_key, 0))
    return 0, 0  # new, replaced or shrunk file: read it all; upserts keep this idempotent


def stamp(path: Path, page: Page) -> Page:
    """Add the file's identity to the cursor: a hash of its bytes up to the offset (4 KiB at most),
    so appending to even a small file resumes while a replaced file restarts."""
    cursor = dict(page.cursor or {})
    cursor["head_len"] = min(int(cursor.get("offset", 0)), 4096)
    cursor["head"] = file_fingerprint(path, cursor["head_len"])
    page.cursor = cursor
    return page


Reader = Callable[[Path, int, int, int], Iterator[Page]]


class FileSource:
    """An archive source: its file is read again every run, resuming after what was stored.

    Subclasses name their reader, what the file is, and how a position is counted.
    """

    reader: Reader = staticmethod(read_jsonl)
    kind = "JSONL file"
    count_key = "line"  # the cursor key counting lines (or rows) already read
    first_count = 0  # what a reader starts counting from when the file is read from the top

    def __init__(self, spec: SourceSpec[FileSettings], **_: Any) -> None:
        self.name = spec.name
        if spec.path is None:
            raise ConnectorError(f'source {spec.name!r}: set path = "..." to the {self.kind}')
        self.path = spec.path
        self.page_size = PAGE_SIZE

    def fetch(self, cursor: Mapping[str, Any] | None) -> Iterator[Page]:
        if not self.path.is_file():
            raise ConnectorError(
                f"source {self.name!r}: file not found: {self.path} (fix its path)"
            )
        start, count = resume_point(self.path, cursor, self.count_key)
        for page in self.reader(self.path, start, count or self.first_count, self.page_size):
            yield stamp(self.path, page)


class JsonlConnector(FileSource):
    """A `jsonl` source: a file in our interchange format."""
