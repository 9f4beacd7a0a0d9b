"""Storing what `pipeline.analyse` found in each post (its `postanalysis` row and its sentiment), and
finding the posts still to analyse."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.sql import ColumnElement

from storage.db import writer
from storage.models import POST_TABLE, PostAnalysis
from storage.queries import _insert, storage_errors

__all__ = ["ANALYSIS_COLUMNS", "count_stale", "stale_rows", "store_analysis"]

ANALYSIS = PostAnalysis.__table__  # type: ignore[attr-defined]
POSTS = POST_TABLE
# Every column of a postanalysis row but its key: each value given to store_analysis has them all.
ANALYSIS_COLUMNS = tuple(c.name for c in ANALYSIS.columns if c.name != "post_pk")


def _stale(analysers: Sequence[str]) -> ColumnElement[bool]:
    """A post to analyse: never analysed, by none of `analysers` (the analyser now, and its name
    for a post it could not read), changed since, or without sentiment."""
    return or_(
        ANALYSIS.c.post_pk.is_(None),
        ANALYSIS.c.analyser.not_in(analysers),
        ANALYSIS.c.analysed_at < POSTS.c.updated_at,
        POSTS.c.sentiment_polarity.is_(None),
    )


def count_stale(engine: Engine, analysers: Sequence[str]) -> int:
    """How many posts there are to analyse (see `stale_rows`)."""
    stmt = select(func.count()).select_from(
        POSTS.outerjoin(ANALYSIS, ANALYSIS.c.post_pk == POSTS.c.id)
    )
    with engine.connect() as conn:
        return int(conn.execute(stmt.where(_stale(analysers))).scalar_one())


def stale_rows(
    engine: Engine, analysers: Sequence[str], columns: Sequence[Any], batch: int
) -> Iterator[list[tuple[Any, ...]]]:
    """The posts to analyse, `batch` at a time in key order, as tuples of `columns` (the post's key
    first): each batch read in a transaction of its own when it is wanted, so the batches before
    it can be written in between and only one batch is held."""
    stmt = (
        select(*columns)
        .select_from(POSTS.outerjoin(ANALYSIS, ANALYSIS.c.post_pk == POSTS.c.id))
        .where(_stale(analysers), POSTS.c.id > bindparam("after"))
        .order_by(POSTS.c.id)
        .limit(batch)
    )
    after = 0  # keys start at 1
    while True:
        with engine.connect() as conn:
            rows = [tuple(r) for r in conn.execute(stmt, {"after": after})]
        if not rows:
            return
        yield rows
        after = rows[-1][0]


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
