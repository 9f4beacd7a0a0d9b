"""Baseline: the schema of the last release without migrations (8343dd1), written out in full.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

A database that release made (it has these tables but no alembic_version) is brought up to this
schema by storage/db.py, the additive way that release did it, and stamped here; a new database
is made by running this revision. The tables are frozen here, not taken from storage/models.py,
so the baseline never changes when the models do; later revisions change them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from alembic.operations.ops import CreateIndexOp, CreateTableOp

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

METADATA = sa.MetaData()


def _sighting_count(name: str) -> sa.Column[int]:
    """A sighting's count. `backfill` (read by storage/db.py when it adds the column to a database
    older still): the count its post holds, the best known for every place."""
    post = METADATA.tables["post"].c
    fill = sa.select(post[name]).where(post.id == sa.column("post_pk")).scalar_subquery()
    return sa.Column(name, sa.Integer(), nullable=True, info={"backfill": fill})


sa.Table(
    "collectionrun",
    METADATA,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("command", sa.String(), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("status", sa.String(), nullable=False),
    sa.Column("pid", sa.Integer(), nullable=True),
    sa.Column("message", sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint("id"),
)

sa.Table(
    "erasure",
    METADATA,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("posts", sa.Integer(), nullable=False),
    sa.Column("sightings", sa.Integer(), nullable=False),
    sa.Column("assignments", sa.Integer(), nullable=False),
    sa.Column("redacted_posts", sa.Integer(), nullable=False),
    sa.Column("account_hash", sa.String(), nullable=True),
    sa.PrimaryKeyConstraint("id"),
)

sa.Table(
    "meta",
    METADATA,
    sa.Column("key", sa.String(), nullable=False),
    sa.Column("value", sa.Text(), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("key"),
)

sa.Table(
    "post",
    METADATA,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("platform", sa.String(), nullable=False),
    sa.Column("post_id", sa.String(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("author", sa.String(), nullable=False),
    sa.Column("text", sa.Text(), nullable=False),
    sa.Column("url", sa.String(), nullable=True),
    sa.Column("author_name", sa.String(), nullable=True),
    sa.Column("reply_to", sa.String(), nullable=True),
    sa.Column("repost_of", sa.String(), nullable=True),
    sa.Column("quote_of", sa.String(), nullable=True),
    sa.Column("likes", sa.Integer(), nullable=True),
    sa.Column("reposts", sa.Integer(), nullable=True),
    sa.Column("replies", sa.Integer(), nullable=True),
    sa.Column("quotes", sa.Integer(), nullable=True),
    sa.Column("lang", sa.String(), nullable=True),
    sa.Column("hashtags", sa.JSON(), nullable=False),
    sa.Column("mentions", sa.JSON(), nullable=False),
    sa.Column("links", sa.JSON(), nullable=False),
    sa.Column("media", sa.JSON(), nullable=False),
    sa.Column("html", sa.Text(), nullable=True),
    sa.Column("edited_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("raw", sa.JSON(), nullable=False),
    sa.Column("reply_to_via", sa.String(), nullable=True),
    sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("sentiment_polarity", sa.Float(), nullable=True),
    sa.Column("sentiment_subjectivity", sa.Float(), nullable=True),
    sa.Column("source", sa.String(), nullable=False),
    sa.Column("collected_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("platform", "post_id", name="uq_post_platform_id"),
    sa.Index("ix_post_author", "author"),
    sa.Index("ix_post_created_at", "created_at"),
)

sa.Table(
    "quarantine",
    METADATA,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("source", sa.String(), nullable=False),
    sa.Column("location", sa.String(), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("raw", sa.JSON(), nullable=True),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("source", "location", name="uq_quarantine_place"),
)

sa.Table(
    "schedulestate",
    METADATA,
    sa.Column("job", sa.String(), nullable=False),
    sa.Column("last_fire", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("job"),
)

sa.Table(
    "sourcecursor",
    METADATA,
    sa.Column("source", sa.String(), nullable=False),
    sa.Column("cursor", sa.JSON(), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("source"),
)

sa.Table(
    "assignment",
    METADATA,
    sa.Column("post_pk", sa.Integer(), nullable=False),
    sa.Column("session_id", sa.String(), nullable=True),
    sa.Column("score", sa.Float(), nullable=False),
    sa.Column("reason", sa.String(), nullable=False),
    sa.Column("method", sa.String(), nullable=False),
    sa.Column("programme", sa.String(), nullable=False),
    sa.Column("tagged_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("excluded", sa.Boolean(), server_default="0", nullable=False),
    sa.Column("highlight", sa.Boolean(), server_default="0", nullable=False),
    sa.ForeignKeyConstraint(["post_pk"], ["post.id"], ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("post_pk"),
    sa.Index("ix_assignment_session_id", "session_id"),
)

sa.Table(
    "postanalysis",
    METADATA,
    sa.Column("post_pk", sa.Integer(), nullable=False),
    sa.Column("terms", sa.JSON(), nullable=False),
    sa.Column("question", sa.Boolean(), nullable=False),
    sa.Column("action", sa.Boolean(), nullable=False),
    sa.Column("technical", sa.Boolean(), server_default="0", nullable=False),
    sa.Column("low_content", sa.Boolean(), server_default="0", nullable=False),
    sa.Column("spam", sa.Boolean(), server_default="0", nullable=False),
    sa.Column("quote", sa.Boolean(), server_default="0", nullable=False),
    sa.Column("speaker", sa.String(), nullable=True),
    sa.Column("repost", sa.Boolean(), server_default="0", nullable=False),
    sa.Column("links", sa.JSON(), nullable=True),
    sa.Column("copy_key", sa.String(), nullable=True),
    sa.Column("disclosure", sa.String(), nullable=True),
    sa.Column("disclosure_reason", sa.Text(), nullable=True),
    sa.Column("role", sa.String(), nullable=True),
    sa.Column("analyser", sa.String(), nullable=False),
    sa.Column("analysed_at", sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["post_pk"], ["post.id"], ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("post_pk"),
)

sa.Table(
    "sighting",
    METADATA,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("post_pk", sa.Integer(), nullable=False),
    sa.Column("source", sa.String(), nullable=False),
    sa.Column("via", sa.String(), nullable=False),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("local_id", sa.String(), nullable=True),
    _sighting_count("likes"),
    _sighting_count("reposts"),
    _sighting_count("replies"),
    _sighting_count("quotes"),
    sa.ForeignKeyConstraint(["post_pk"], ["post.id"], ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("post_pk", "source", "via", name="uq_sighting"),
    sa.Index("ix_sighting_local_id", "local_id"),
    sa.Index("ix_sighting_post_pk", "post_pk"),
)

sa.Table(
    "sourceoutcome",
    METADATA,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("run_id", sa.Integer(), nullable=False),
    sa.Column("source", sa.String(), nullable=False),
    sa.Column("status", sa.String(), nullable=False),
    sa.Column("new_posts", sa.Integer(), nullable=False),
    sa.Column("updated_posts", sa.Integer(), nullable=False),
    sa.Column("pages", sa.Integer(), nullable=False),
    sa.Column("waits", sa.Integer(), nullable=False),
    sa.Column("rejected", sa.Integer(), nullable=False),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("warnings", sa.JSON(), nullable=False),
    sa.Column("cursor", sa.JSON(), nullable=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(["run_id"], ["collectionrun.id"], ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id"),
    sa.Index("ix_sourceoutcome_run_id", "run_id"),
    sa.Index("ix_sourceoutcome_source", "source"),
)


def upgrade() -> None:
    for table in METADATA.sorted_tables:
        op.invoke(CreateTableOp.from_table(table))
        for index in sorted(table.indexes, key=lambda index: str(index.name)):
            op.invoke(CreateIndexOp.from_index(index))


def downgrade() -> None:
    for table in reversed(METADATA.sorted_tables):
        op.drop_table(table.name)
