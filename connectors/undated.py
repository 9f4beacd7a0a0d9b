"""A post whose source gives no time that can be read: how it is stored and how it is known.

Every stored post has a `created_at` (the column is NOT NULL, in databases made by older versions
too), so "no time" is one reserved instant: UNDATED, the Unix epoch, 1970-01-01T00:00:00Z. No
source is taken at its word for that instant (feeds write it when they have no date; Bluesky's
and X's clocks never start there), so it cannot stand for a real post's time. A connector gives
it to a post whose date it cannot read, and says so in a warning on the page; storage keeps it
until a later copy of the post brings a readable time; the tagging stage puts such a post in no
session; the story leaves it out of its parts and charts; exports write its time empty
(docs/data-dictionary.md, "Times").
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["UNDATED", "undated"]

UNDATED = datetime(1970, 1, 1, tzinfo=UTC)


def undated(moment: datetime) -> bool:
    """Whether `moment` (aware, or naive UTC) is UNDATED: the post's source gave no readable time."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)) == UNDATED
