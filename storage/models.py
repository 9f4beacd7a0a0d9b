"""SQLModel tables. Every time is aware UTC (SQLModel's UTCDateTime: the same on SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from types import NoneType, UnionType
from typing import Any, get_args, get_origin, get_type_hints

from sqlalchemy import (
    JSON,
    Column,
    Float,
    Index,
    Integer,
    Table,
    Text,
    UniqueConstraint,
    column,
    select,
)
from sqlalchemy.orm import registry
from sqlalchemy.types import TypeEngine
from sqlmodel import Field, SQLModel
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

from connectors.base import Post

__all__ = [
    "POST_COLUMNS",
    "POST_TABLE",
    "Assignment",
    "CollectionRun",
    "Erasure",
    "Meta",
    "PostAnalysis",
    "PostRow",
    "QuarantineRow",
    "ScheduleState",
    "Sighting",
    "SourceCursor",
    "SourceOutcome",
]


# A Post field's Python type -> its column type, as SQLModel maps them in the other tables.
_COLUMN_TYPES: dict[Any, type[TypeEngine[Any]]] = {
    str: AutoString,
    int: Integer,
    datetime: UTCDateTime,
}


def _post_column(spec: dataclasses.Field[Any], hint: Any) -> Column[Any] | None:
    """The column of one Post field, as its metadata says (connectors/base.py); None if not stored.

    :raises TypeError: naming the field when its type has no column type here.
    """
    if not spec.metadata.get("stored", True):
        return None
    nullable = get_origin(hint) is UnionType and NoneType in get_args(hint)
    if nullable:
        (hint,) = (arg for arg in get_args(hint) if arg is not NoneType)
    if spec.metadata.get("long_text"):
        kind: Any = Text()
    elif get_origin(hint) in (list, dict):
        kind = JSON()
    elif hint in _COLUMN_TYPES:
        kind = _COLUMN_TYPES[hint]()
    else:
        raise TypeError(
            f"Post.{spec.name}: no column type for {hint!r}: give it one in storage/models.py "
            "or metadata in connectors/base.py"
        )
    return Column(spec.metadata.get("column", spec.name), kind, nullable=nullable)


def _post_columns() -> dict[str, Column[Any]]:
    hints = get_type_hints(Post)
    columns = (
        (spec.name, _post_column(spec, hints[spec.name])) for spec in dataclasses.fields(Post)
    )
    return {name: column for name, column in columns if column is not None}


# The stored fields of Post, by field name, in its order (`id` is the column `post_id`).
POST_COLUMNS = _post_columns()
# One post, unique on (platform, post_id): the Post's stored fields and what storage adds.
# `raw` keeps the payload exactly as collected.
POST_TABLE = Table(
    "post",
    SQLModel.metadata,
    Column("id", Integer, primary_key=True),
    *POST_COLUMNS.values(),
    Column("deleted_at", UTCDateTime),  # when a copy first said it was deleted; it stays so
    Column("sentiment_polarity", Float),
    Column("sentiment_subjectivity", Float),
    Column("source", AutoString, nullable=False),  # the source that first found it
    Column("collected_at", UTCDateTime, nullable=False),  # when it was first stored
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("platform", "post_id", name="uq_post_platform_id"),
    Index("ix_post_created_at", "created_at"),
    Index("ix_post_author", "author"),
)


class PostRow:
    """The `post` table as a mapped class, for queries that name its columns (`PostRow.author`)."""


registry(metadata=SQLModel.metadata).map_imperatively(PostRow, POST_TABLE)


def _sighting_count(name: str) -> Any:
    """A sighting's count column. `backfill` is what storage.db fills it with when it adds the
    column to an older database: the count its post holds, the best known for every place."""
    post = POST_TABLE.c
    backfill = select(post[name]).where(post.id == column("post_pk")).scalar_subquery()
    return Field(default=None, sa_column_kwargs={"info": {"backfill": backfill}})


class Sighting(SQLModel, table=True):
    """Each place a post was seen: the same post via two instances or hashtags is one PostRow."""

    __table_args__ = (UniqueConstraint("post_pk", "source", "via", name="uq_sighting"),)

    id: int | None = Field(default=None, primary_key=True)
    post_pk: int = Field(foreign_key="post.id", index=True, ondelete="CASCADE")
    source: str
    via: str = ""
    first_seen: datetime
    # Mastodon: the status id on the instance in `via` (replies point at their parent by it)
    local_id: str | None = Field(default=None, index=True)
    # The engagement counts this place last reported (None: it never said); a later copy from the
    # same place replaces them (an unlike there counts), and the post's own counts are the highest
    # of its sightings' (storage/queries.py). An older database gains them filled with its post's.
    likes: int | None = _sighting_count("likes")
    reposts: int | None = _sighting_count("reposts")
    replies: int | None = _sighting_count("replies")
    quotes: int | None = _sighting_count("quotes")


class Assignment(SQLModel, table=True):
    """The session a post belongs to (None = general), with the score and reason behind it."""

    post_pk: int = Field(primary_key=True, foreign_key="post.id", ondelete="CASCADE")
    session_id: str | None = Field(default=None, index=True)
    score: float = 0.0
    reason: str = ""
    method: str = "auto"  # auto | curated (an organiser chose the session in the curation file)
    programme: str = ""  # fingerprint of the programme, rules and curation it was decided under
    tagged_at: datetime
    # From the organisers' curation file: left out of the story, or pinned as a highlight.
    excluded: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})
    highlight: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})


class CollectionRun(SQLModel, table=True):
    """One run of a writing command (collect, run, import)."""

    id: int | None = Field(default=None, primary_key=True)
    command: str
    started_at: datetime
    finished_at: datetime | None = None
    status: str = "running"  # running | ok | failed | interrupted
    pid: int | None = None
    message: str | None = Field(default=None, sa_column=Column(Text))


class SourceOutcome(SQLModel, table=True):
    """What one source did in one run."""

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="collectionrun.id", index=True, ondelete="CASCADE")
    source: str = Field(index=True)
    status: str = "running"  # running | ok | failed
    new_posts: int = 0
    updated_posts: int = 0
    pages: int = 0
    waits: int = 0
    rejected: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text))
    warnings: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    cursor: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    started_at: datetime
    finished_at: datetime | None = None


class SourceCursor(SQLModel, table=True):
    """Where each source resumes. Written in the same transaction as the page it follows."""

    source: str = Field(primary_key=True)
    cursor: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime


class ScheduleState(SQLModel, table=True):
    """The last scheduled fire time `aggregator schedule` dealt with (run or logged as missed), so a
    restart can tell a run missed within the grace (catch up once) from one missed for longer."""

    job: str = Field(primary_key=True)
    last_fire: datetime
    updated_at: datetime


def _flag() -> Any:
    """A boolean column an older database gains with every row false (storage.db)."""
    return Field(default=False, sa_column_kwargs={"server_default": "0"})


class PostAnalysis(SQLModel, table=True):
    """Text features computed once per post by `pipeline.analyse` (its own table, so an existing
    database gains it through create_all, and its newer columns through storage.db); redone when
    the post changes or the analyser does. The classes are reports.editorial's rules on the post
    alone (docs/report.md, "Editorial rules"); what needs the posts around it (copies, repeated
    spam) is decided by the story from `copy_key`, `repost` and `spam`."""

    post_pk: int = Field(primary_key=True, foreign_key="post.id", ondelete="CASCADE")
    terms: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    question: bool = False  # asks for information or an opinion in the author's own words
    action: bool = False  # a pledge: a first-person commitment to act
    technical: bool = _flag()  # a problem with the broadcast (the organisers' list only)
    low_content: bool = _flag()  # a reaction with nothing to read: emoji, hashtags, "+1"
    spam: bool = _flag()  # spam on its own: hashtag stuffing, three links, a sales pitch
    quote: bool = _flag()  # a quoted line attributed to a speaker ...
    speaker: str | None = None  # ... whose name or handle this is
    repost: bool = _flag()  # written out as a repost ("RT @name: …")
    # the links its text holds, compared as written (one link again and again is spam)
    links: list[str] | None = Field(default=None, sa_column=Column(JSON))
    copy_key: str | None = (
        None  # a digest of its words: the same key, the same text (None: no words)
    )
    disclosure: str | None = (
        None  # the kind of personal health disclosure (aggregator.safeguarding)
    )
    disclosure_reason: str | None = Field(default=None, sa_column=Column(Text))
    role: str | None = None  # the author's profile read as patient_carer, clinician, organisation
    analyser: str = ""  # version of the analysis; a new one redoes every post
    analysed_at: datetime


class Erasure(SQLModel, table=True):
    """One `aggregator forget`: when and how much was removed, never whose (at most a keyed hash)."""

    id: int | None = Field(default=None, primary_key=True)
    erased_at: datetime
    posts: int = 0  # the person's own posts deleted
    sightings: int = 0
    assignments: int = 0
    redacted_posts: int = 0  # other people's posts where their handle or name was removed
    account_hash: str | None = None  # HMAC of the account under AGGREGATOR_PSEUDONYM_KEY, if set


class QuarantineRow(SQLModel, table=True):
    """A record that could not become a post (a bad value, an out-of-range date), kept as received
    for inspection: one row per source and place, refreshed when the same record comes again."""

    __tablename__ = "quarantine"
    __table_args__ = (UniqueConstraint("source", "location", name="uq_quarantine_place"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str  # the source or "import:<file>"
    location: str  # where in it: "line 12", "status 1097…"
    reason: str = Field(sa_column=Column(Text, nullable=False))
    raw: Any = Field(default=None, sa_column=Column(JSON))
    first_seen: datetime
    last_seen: datetime


class Meta(SQLModel, table=True):
    """Small facts about the database itself, by key (e.g. which event first wrote to it)."""

    key: str = Field(primary_key=True)
    value: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime
