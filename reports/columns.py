"""The export's columns and what each holds (docs/data-dictionary.md at length), how times are
written, and which cells a spreadsheet would run as formulas."""

from __future__ import annotations

import re
from typing import Any

from aggregator.clock import iso_utc  # re-exported: how every export and manifest writes times

__all__ = [
    "COLUMNS",
    "EXTRAS",
    "FORMULA_FIRST",
    "FORMULA_START",
    "INTERCHANGE",
    "SPACES",
    "csv_cell",
    "iso_utc",
]

# A spreadsheet runs a cell as a formula when it starts with one of these, also after any of
# SPACES (what Python's \s matches, the ideographic space among them; tab and carriage return are
# both). Both CSV writers neutralise such a cell: reports/export.py and reports/export_sql.py.
FORMULA_FIRST = "=+-@＝＋－＠\t\r"
SPACES = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
FORMULA_START = re.compile(f"^[{re.escape(SPACES)}]*[{re.escape(FORMULA_FIRST)}]")


def csv_cell(value: Any) -> Any:
    """A cell a spreadsheet shows as written: formula-like text gets a leading apostrophe, NUL
    is dropped, numbers stay numbers, None is empty."""
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    text = str(value).replace("\x00", "")
    return "'" + text if FORMULA_START.match(text) else text


# The CSV columns, in order; docs/data-dictionary.md says the same at length.
COLUMNS: dict[str, str] = {
    "platform": "text: mastodon, bluesky, x, feed, or an archive's own name",
    "post_id": "text: the post's id on its platform (never a number: long ids stay exact)",
    "url": "text: link to the post; empty when unknown, always empty when pseudonymised",
    "created_at": "ISO 8601 date-time in UTC to the second, ending in Z",
    "created_local": "ISO 8601 date-time in the event's time zone to the second, with its offset",
    "author": "text: the account (user@instance, a handle, or a screen name); a pseudonym when pseudonymised",
    "author_name": "text: the display name; empty when unknown; a pseudonym when pseudonymised",
    "text": "text: the post's plain text",
    "lang": "text: language code; empty when unknown",
    "hashtags": "list: hashtags without #",
    "mentions": "list: accounts mentioned, without @",
    "links": "list: URLs in the post",
    "media": "list: URLs of attached media (alt text is in the JSONL export)",
    "reply_to": "text: id of the post this replies to; empty when not a reply",
    "repost_of": "text: id of the post this reposts; empty when not a repost",
    "quote_of": "text: id of the post this quotes; empty when not a quote",
    "likes": "whole number when collected; empty when the source did not say",
    "reposts": "whole number when collected; empty when the source did not say",
    "replies": "whole number when collected; empty when the source did not say",
    "quotes": "whole number when collected; empty when the source did not say",
    "session_id": "text: the programme session; empty for a general post or one not yet tagged",
    "session_title": "text: that session's title",
    "tag_reason": "text: why the post was put in its session; empty when not yet tagged",
    "tag_score": "number 0-1: how sure the tagger was; empty when not yet tagged",
    "sentiment_polarity": "number -1 to 1; empty when not computed",
    "sentiment_subjectivity": "number 0 to 1; empty when not computed",
    "source": "text: the source that first found the post",
    "collected_at": "ISO 8601 date-time in UTC to the second, ending in Z: when the post was first stored",
}
# The JSONL interchange keys (docs/jsonl.md), then the other columns a JSONL line carries.
INTERCHANGE = (
    "platform", "id", "created_at", "author", "text", "url", "author_name", "reply_to", "repost_of",
    "quote_of", "likes", "reposts", "replies", "quotes", "lang", "hashtags", "mentions", "links",
    "media", "edited_at", "html",
)  # fmt: skip
EXTRAS = (
    "created_local", "session_id", "session_title", "tag_reason", "tag_score",
    "sentiment_polarity", "sentiment_subjectivity", "source", "collected_at",
)  # fmt: skip
