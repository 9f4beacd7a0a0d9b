"""SQLModel tables. Every time is aware UTC (SQLModel's UTCDateTime: the same on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = [
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


class PostRow(SQLModel, table=True):
    """One post, unique on (platform, post_id). `raw` keeps the payload exactly as collected."""

    __tablename__ = "post"
    __table_args__ = (
        UniqueConstraint("platform", "post_id", name="uq_post_platform_id"),
        Index("ix_post_created_at", "created_at"),
        Index("ix_post_author", "author"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str
    post_id: str
    created_at: datetime
    author: str
    author_name: str | None = None
    text: str = Field(sa_column=Column(Text, nullable=False))
    html: str | None = Field(default=None, sa_column=Column(Text))
    url: str | None = None
    reply_to: str | None = None
    reply_to_via: str | None = None  # Mastodon: the instance whose local id reply_to is
    repost_of: str | None = None
    quote_of: str | None = None
    likes: int | None = None
    reposts: int | None = None
    replies: int | None = None
    quotes: int | None = None
    lang: str | None = None
    hashtags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    mentions: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    links: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    media: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    edited_at: datetime | None = None
    deleted_at: datetime | None = None
    sentiment_polarity: float | None = None
    sentiment_subjectivity: float | None = None
    source: str  # the source that first found it
    collected_at: datetime  # when it was first stored
    updated_at: datetime
    raw: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


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
