"""The moderators' decisions from the live wall (storage/moderation.py): one row each, never changed.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "moderationdecision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("who", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("platform", sa.String(), nullable=True),
        sa.Column("post_id", sa.String(), nullable=True),
        sa.Column("value", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_moderationdecision_at", "moderationdecision", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_moderationdecision_at", table_name="moderationdecision")
    op.drop_table("moderationdecision")
