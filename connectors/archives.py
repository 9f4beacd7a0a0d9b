"""Archives people already hold: our JSONL interchange format (twarc and TAGS join later)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from aggregator.config import Config, SourceConfig
from connectors.base import ConnectorError, Page, Post, parse_time

__all__ = [
    "PAGE_SIZE",
    "FileSource",
    "JsonlConnector",
    "file_fingerprint",
    "post_from_interchange",
    "read_jsonl",
    "read_lines",
    "resume_point",
    "stamp",
]

PAGE_SIZE = 500
REQUIRED = ("platform", "id", "created_at", "author", "text", "url")
INT_FIELDS = ("likes", "reposts", "replies", "quotes")
LIST_FIELDS = ("hashtags", "mentions", "links", "media")
STR_FIELDS = ("author_name", "reply_to", "repost_of", "quote_of", "lang", "html")
KNOWN = (
    set(REQUIRED) | set(INT_FIELDS) | set(LIST_FIELDS) | set(STR_FIELDS) | {"edited_at", "deleted"}
)

HASHTAG_RE = re.compile(r"(?:^|(?<=[^\w&]))[#＃](\w+)")
MENTION_RE = re.compile(r"(?:^|(?<=[^\w]))@(\w[\w.\-]*(?:@[\w.\-]+\w)?)")
LINK_RE = re.compile(r"https?://[^\s<>\"']+")


def post_from_interchange(obj: Mapping[str, Any]) -> Post:
    """One interchange object -> Post. Raises ValueError naming the bad field."""
    if not isinstance(obj, Mapping):
        raise ValueError("not a JSON object")
    # text may be empty (a media-only post) and url empty or null (an archive without links).
    missing = [
        k
        for k in REQUIRED
        if (k not in obj if k == "url" else obj.get(k) is None or (obj[k] == "" and k != "text"))
    ]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    try:
        created = parse_time(str(obj["created_at"]))
    except ValueError:
        raise ValueError(f"created_at {obj['created_at']!r} is not ISO 8601") from None
    text = str(obj["text"])
    fields: dict[str, Any] = {}
    for key in INT_FIELDS:
        value = obj.get(key)
        if value is not None:
            if (
                isinstance(value, bool)
                or not isinstance(value, int | str)
                or not str(value).isdigit()
            ):
                raise ValueError(f"{key} must be a whole number, got {value!r}")
            fields[key] = int(value)
    for key in STR_FIELDS:
        value = obj.get(key)
        fields[key] = None if value in (None, "") else str(value)
    for key in LIST_FIELDS:
        value = obj.get(key)
        if value is not None and not isinstance(value, list):
            raise ValueError(f"{key} must be a list")
        fields[key] = value
    if fields["hashtags"] is None:
        fields["hashtags"] = HASHTAG_RE.findall(text)
    if fields["mentions"] is None:
        fields["mentions"] = MENTION_RE.findall(text)
    if fields["links"] is None:
        fields["links"] = LINK_RE.findall(text)
    fields["hashtags"] = list(dict.fromkeys(str(h).lstrip("#＃") for h in fields["hashtags"]))
    fields["media"] = [m if isinstance(m, dict) else {"url": str(m)} for m in fields["media"] or []]
    edited = obj.get("edited_at")
    return Post(
        platform=str(obj["platform"]),
        id=str(obj["id"]),
        created_at=created,
        author=str(obj["author"]),
        text=text,
        url=obj.get("url") or None,
        edited_at=parse_time(str(edited)) if edited else None,
        deleted=bool(obj.get("deleted", False)),
        raw={k: v for k, v in obj.items()},
        **fields,
    )


ParseLine = Callable[[Any], tuple[list[Post], list[str]]]


def read_lines(
    path: Path, parse: ParseLine, start: int = 0, start_line: int = 0, page_size: int = PAGE_SIZE
) -> Iterator[Page]:
    """Pages from a JSON-lines file, from byte `start` (line `start_line`).

    Each page's cursor is the byte offset after its last line, so a killed import resumes there.
    A bad line is rejected with its line number; the good lines are still yielded. Within a page
    the last copy of a post wins (retweets of one original collapse to one row).
    """
    posts: dict[tuple[str, str], Post] = {}
    rejected: list[str] = []
    line_no, offset = start_line, start
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise ConnectorError(f"cannot read {path}: {exc.strerror}") from None
    with fh:
        fh.seek(start)
        for raw_line in fh:
            line_no += 1
            offset += len(raw_line)
            if not raw_line.strip():
                continue
            try:
                found, reasons = parse(json.loads(raw_line))
                rejected += [f"line {line_no}: {r}" for r in reasons]
                for post in found:
                    post.via = path.name
                    posts[(post.platform, post.id)] = post
            except UnicodeDecodeError:
                rejected.append(f"line {line_no}: not UTF-8")
            except json.JSONDecodeError as exc:
                rejected.append(f"line {line_no}: invalid JSON ({exc.msg})")
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                rejected.append(f"line {line_no}: {exc}")
            if len(posts) >= page_size:
                yield Page(list(posts.values()), {"offset": offset, "line": line_no}, rejected)
                posts, rejected = {}, []
    yield Page(list(posts.values()), {"offset": offset, "line": line_no}, rejected)


def _interchange_line(obj: Any) -> tuple[list[Post], list[str]]:
    return [post_from_interchange(obj)], []


def read_jsonl(
    path: Path, start: int = 0, start_line: int = 0, page_size: int = PAGE_SIZE
) -> Iterator[Page]:
    """Pages of posts from a file in our JSONL interchange format (docs/jsonl.md)."""
    return read_lines(Path(path), _interchange_line, start, start_line, page_size)


def file_fingerprint(path: Path, length: int = 4096) -> str:
    """Hash of the first `length` bytes: tells an appended file (resume) from a replaced one (restart)."""
    with path.open("rb") as fh:
        return hashlib.sha256(fh.read(length)).hexdigest()[:16]


def resume_point(
    path: Path, cursor: Mapping[str, Any] | None, count_key: str = "line"
) -> tuple[int, int]:
    """(offset, line or row) to start from: the cursor's only if it was made on this same file."""
    if cursor and "head" in cursor:
        offset, head_len = int(cursor.get("offset", 0)), int(cursor.get("head_len", 0))
        if offset <= path.stat().st_size and file_fingerprint(path, head_len) == cursor["head"]:
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

    reader: Reader = staticmethod(read_jsonl)  # type: ignore[assignment]
    kind = "JSONL file"
    count_key = "line"  # the cursor key counting lines (or rows) already read
    first_count = 0  # what a reader starts counting from when the file is read from the top

    def __init__(self, source: SourceConfig, config: Config, **_: Any) -> None:
        self.name = source.name
        if source.path is None:
            raise ConnectorError(f'source {source.name!r}: set path = "..." to the {self.kind}')
        self.path = source.path
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
