"""TAGS (Twitter Archiving Google Sheet) CSV exports, including ones a spreadsheet has mangled."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from connectors.archives import HASHTAG_RE, MENTION_RE, PAGE_SIZE, FileSource
from connectors.base import ConnectorError, Page, Post, reason
from connectors.html import links_in_text
from connectors.twarc import entities_v1, twitter_time
from connectors.values import storable
from connectors.x import Entities, unescape, x_post

__all__ = ["COLUMNS", "TagsConnector", "post_from_row", "read_tags", "recover_id"]

# The 18 columns of a TAGS "Archive" sheet, in order; only the REQUIRED ones must be present.
COLUMNS = ("id_str", "from_user", "text", "created_at", "time", "geo_coordinates", "user_lang",
           "in_reply_to_user_id_str", "in_reply_to_screen_name", "from_user_id_str",
           "in_reply_to_status_id_str", "source", "profile_image_url", "user_followers_count",
           "user_friends_count", "user_location", "status_url", "entities_str")  # fmt: skip
REQUIRED = ("id_str", "from_user", "text", "created_at")
STATUS_ID_RE = re.compile(r"/status(?:es)?/(\d+)")


def recover_id(id_str: str | None, status_url: str | None) -> str:
    """The tweet id as text. Spreadsheets round long numbers ("8.03E+17", "803000000000000000"),
    so the id in `status_url` (text, never rounded) wins; a rounded id_str alone is refused."""
    found = STATUS_ID_RE.search(status_url or "")
    if found:
        return found.group(1)
    value = (id_str or "").strip().lstrip("'")  # a leading ' is how sheets keep a number as text
    if value.isdigit():
        return value
    raise ValueError(f"id_str {id_str!r} was rounded by a spreadsheet and status_url is empty")


def _plain_id(value: str | None) -> str | None:
    """A reply id column if it is still a whole id; rounded ones are dropped, not guessed."""
    value = (value or "").strip().lstrip("'")
    return value if value.isdigit() and value.strip("0") else None


def _entities(row: Mapping[str, str | None], text: str) -> Entities:
    """`entities_str` (v1.1 entities JSON) when present and valid; else found in the text (as
    written: `&amp;` is no hashtag)."""
    try:
        entities = json.loads(row.get("entities_str") or "")
        if isinstance(entities, dict):
            return entities_v1(entities, {})
    except ValueError:
        pass  # a hand-edited or truncated cell: fall back to the text, as TAGS itself displays it

    return Entities(
        hashtags=HASHTAG_RE.findall(text),
        mentions=MENTION_RE.findall(text),
        links=links_in_text(text),
        media=[],
    )


def post_from_row(row: Mapping[str, str | None]) -> Post:
    """One TAGS row (column name -> cell) -> Post. Raises ValueError naming the bad cell."""
    tweet_id = recover_id(row.get("id_str"), row.get("status_url"))
    user = (row.get("from_user") or "").strip().lstrip("@")
    if not user:
        raise ValueError("from_user is empty")
    created = twitter_time(row.get("created_at") or "")
    text = row.get("text") or ""  # as the v1.1 search API sent it: &amp; &lt; &gt; escaped
    return x_post(
        tweet_id,
        created,
        user,
        text,
        {k: v for k, v in row.items() if k},
        _entities(row, unescape(text)),
        username=user,
        reply_to=_plain_id(row.get("in_reply_to_status_id_str")),
    )


class _Lines:
    """Decoded lines for csv.reader, counting the bytes it has consumed.

    csv.reader pulls one line at a time and never reads ahead, so after each row `offset`
    is exactly where the next record starts: a byte cursor a killed import can seek to.
    """

    def __init__(self, fh: BinaryIO, offset: int) -> None:
        self.fh, self.offset, self.recoded = fh, offset, False

    def __iter__(self) -> Iterator[str]:
        for raw in self.fh:
            first = self.offset == 0  # only the file's first line may carry a BOM
            self.offset += len(raw)
            try:
                yield raw.decode("utf-8-sig" if first else "utf-8")
            except UnicodeDecodeError:
                self.recoded = True  # why: Excel re-saves CSVs as Windows-1252
                yield raw.decode("cp1252", errors="replace")


def _header(path: Path) -> list[str]:
    with path.open("rb") as fh:
        try:
            header = next(csv.reader(_Lines(fh, 0)), [])
        except csv.Error as exc:
            why = f"its first row is not CSV ({exc})"
            raise ConnectorError(f"{path} is not a TAGS archive: {why}") from None
    names = [h.strip() for h in header]
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise ConnectorError(f"{path} is not a TAGS archive: no {', '.join(missing)} column")
    return names


def read_tags(
    path: Path, start: int = 0, start_row: int = 1, page_size: int = PAGE_SIZE
) -> Iterator[Page]:
    """Pages of posts from a TAGS CSV, from byte `start` (after spreadsheet row `start_row`).

    Rows are numbered as the spreadsheet shows them (header = row 1) in rejections and cursors.
    """
    path = Path(path)
    try:
        names = _header(path)
        fh = path.open("rb")
    except OSError as exc:
        raise ConnectorError(f"cannot read {path}: {exc.strerror}") from None
    with fh:
        fh.seek(start)
        lines = _Lines(fh, start)
        reader = csv.reader(lines)
        if start == 0:
            next(reader, None)  # the header
        posts: dict[str, Post] = {}
        page = Page([])
        row_no = max(start_row, 1)
        while True:
            row_no += 1
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:  # e.g. a cell past csv's 128 KiB field limit: this row only
                page.reject(f"row {row_no}", f"not a CSV row ({exc})")
                continue
            if any(c.strip() for c in cells):
                row = dict(zip(names, cells, strict=False))
                try:
                    post = storable(post_from_row(row))
                except Exception as exc:  # any bad value in this row: this row only
                    page.reject(f"row {row_no}", reason(exc), row)
                    continue
                post.via = path.name
                posts[post.id] = post
            if len(posts) >= page_size:
                yield _page(page, posts, lines, row_no)
                posts, page = {}, Page([])
        yield _page(page, posts, lines, row_no - 1)


def _page(page: Page, posts: dict[str, Post], lines: _Lines, row: int) -> Page:
    if lines.recoded:
        page.warnings.append("some lines are not UTF-8: read as Windows-1252")
    lines.recoded = False
    page.posts, page.cursor = list(posts.values()), {"offset": lines.offset, "row": row}
    return page


class TagsConnector(FileSource):
    """A `tags` source: a TAGS archive CSV; rows are counted as the spreadsheet shows them."""

    reader = staticmethod(read_tags)
    kind = "TAGS CSV file"
    count_key = "row"
    first_count = 1  # the header is row 1
