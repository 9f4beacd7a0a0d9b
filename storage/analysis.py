"""Storing what `pipeline.analyse` found in each post: its `postanalysis` row and its sentiment."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.engine import Engine

from storage.db import writer
from storage.models import POST_TABLE, PostAnalysis
from storage.queries import _insert, storage_errors

__all__ = ["ANALYSIS_COLUMNS", "store_analysis"]

ANALYSIS = PostAnalysis.__table__  # type: ignore[attr-defined]
POSTS = POST_TABLE
# Every column of a postanalysis row but its key: each value given to store_analysis has them all.
ANALYSIS_COLUMNS = tuple(c.name for c in ANALYSIS.columns if c.name != "post_pk")


def store_analysis(engine: Engine, values: Sequence[Mapping[str, Any]]) -> None:
    """Store posts' analyses and sentiment in one transaction, replacing older ones. Each value
    holds post_pk, every column in ANALYSIS_COLUMNS, polarity and subjectivity; the post's
    `updated_at` is left alone (an analysis is no edit)."""
    if not values:
        return
    rows = [{"post_pk": v["post_pk"], **{k: v[k] for k in ANALYSIS_COLUMNS}} for v in values]
    scores = [{"pk": v["post_pk"], "pol": v["polarity"], "subj": v["subjectivity"]} for v in values]
    with storage_errors("could not save the text analysis"), writer(engine).begin() as conn:
        stmt = _insert(conn, ANALYSIS)
        update = {k: stmt.excluded[k] for k in ANALYSIS_COLUMNS}
        conn.execute(stmt.on_conflict_do_update(index_elements=["post_pk"], set_=update), rows)
        conn.execute(
            POSTS.update().where(POSTS.c.id == bindparam("pk"))
            .values(sentiment_polarity=bindparam("pol"), sentiment_subjectivity=bindparam("subj")),
            scores,
        )  # fmt: skip
