"""Exports for researchers, streamed row by row: memory stays flat whatever the size."""

from __future__ import annotations

import csv
import re
from datetime import UTC
from typing import Any, TextIO

from sqlalchemy.engine import Engine

from storage.queries import iter_posts

__all__ = ["CSV_COLUMNS", "csv_cell", "export_csv"]

CSV_COLUMNS = (
    "platform", "post_id", "url", "created_at", "author", "author_name", "text", "lang",
    "hashtags", "links", "reply_to", "likes", "reposts", "replies", "quotes",
    "session_id", "tag_reason", "tag_score", "source", "collected_at",
)  # fmt: skip
LIST_DELIMITER = "|"
# A spreadsheet runs a cell as a formula when it starts with one of these, even after spaces.
FORMULA_START = re.compile(r"^[\s\u3000]*[=+\-@\t\r＝＋－＠]")


def csv_cell(value: Any) -> Any:
    """Neutralise formula-like text with a leading apostrophe; numbers stay numbers."""
    if isinstance(value, str) and FORMULA_START.match(value):
        return "'" + value
    return value


def _iso(value: Any) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else ""


def _row(row: Any) -> list[Any]:
    values = {
        "platform": row.platform,
        "post_id": row.post_id,
        "url": row.url or "",
        "created_at": _iso(row.created_at),
        "author": row.author,
        "author_name": row.author_name or "",
        "text": row.text.replace("\x00", ""),
        "lang": row.lang or "",
        "hashtags": LIST_DELIMITER.join(row.hashtags or []),
        "links": LIST_DELIMITER.join(row.links or []),
        "reply_to": row.reply_to or "",
        "likes": row.likes,
        "reposts": row.reposts,
        "replies": row.replies,
        "quotes": row.quotes,
        "session_id": row.session_id or "",
        "tag_reason": row.reason or "",
        "tag_score": row.score,
        "source": row.source,
        "collected_at": _iso(row.collected_at),
    }
    return [csv_cell(values[c]) for c in CSV_COLUMNS]


def export_csv(engine: Engine, out: TextIO) -> int:
    """Write one row per live post to `out`; returns the number of rows."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    with engine.connect() as conn:
        for row in iter_posts(conn):
            writer.writerow(_row(row))
            count += 1
    return count
