"""Archives people already hold: our JSONL interchange format (twarc and TAGS join later)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from aggregator.config import Config, SourceConfig
from connectors.base import ConnectorError, Page, Post, parse_time

__all__ = [
    "PAGE_SIZE",
    "JsonlConnector",
    "post_from_interchange",
    "read_jsonl",
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


def read_jsonl(
    path: Path, start: int = 0, start_line: int = 0, page_size: int = PAGE_SIZE
) -> Iterator[Page]:
    """Pages of posts from a JSONL file, resuming at byte offset `start` (line `start_line`).

    Each page's cursor is the byte offset after its last line, so a killed import resumes there.
    A bad line is rejected with its line number; the good lines are still yielded.
    """
    posts: list[Post] = []
    rejected: list[str] = []
    line_no = start_line
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise ConnectorError(f"cannot read {path}: {exc.strerror}") from None
    with fh:
        fh.seek(start)
        offset = start
        for raw_line in fh:
            line_no += 1
            offset += len(raw_line)
            line = raw_line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
                posts.append(post_from_interchange(obj))
                posts[-1].via = path.name
            except UnicodeDecodeError:
                rejected.append(f"line {line_no}: not UTF-8")
            except json.JSONDecodeError as exc:
                rejected.append(f"line {line_no}: invalid JSON ({exc.msg})")
            except ValueError as exc:
                rejected.append(f"line {line_no}: {exc}")
            if len(posts) >= page_size:
                yield Page(
                    posts=posts, cursor={"offset": offset, "line": line_no}, rejected=rejected
                )
                posts, rejected = [], []
        yield Page(posts=posts, cursor={"offset": offset, "line": line_no}, rejected=rejected)


def file_fingerprint(path: Path, length: int = 4096) -> str:
    """Hash of the first `length` bytes: tells an appended file (resume) from a replaced one (restart)."""
    with path.open("rb") as fh:
        return hashlib.sha256(fh.read(length)).hexdigest()[:16]


class JsonlConnector:
    """A `jsonl` source: re-reads its file every run, resuming after what was already stored."""

    def __init__(self, source: SourceConfig, config: Config, **_: Any) -> None:
        self.name = source.name
        if source.path is None:
            raise ConnectorError(f'source {source.name!r}: set path = "..." to the JSONL file')
        self.path = source.path

    def fetch(self, cursor: Mapping[str, Any] | None) -> Iterator[Page]:
        if not self.path.is_file():
            raise ConnectorError(
                f"source {self.name!r}: file not found: {self.path} (fix its path)"
            )
        start, line = 0, 0
        if cursor and "head" in cursor:
            offset, head_len = int(cursor.get("offset", 0)), int(cursor.get("head_len", 0))
            same_file = file_fingerprint(self.path, head_len) == cursor["head"]
            if same_file and offset <= self.path.stat().st_size:
                start, line = offset, int(cursor.get("line", 0))
            # otherwise the file was replaced or shrank: read it all again (upserts keep this idempotent)
        for page in read_jsonl(self.path, start, line):
            offset = page.cursor["offset"] if page.cursor else 0
            head_len = min(offset, 4096)
            page.cursor = {
                **(page.cursor or {}),
                "head": file_fingerprint(self.path, head_len),
                "head_len": head_len,
            }
            yield page
