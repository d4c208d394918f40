"""Bookmarks and comments at a time of an interaction's recording, private or shared.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 00:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bookmarks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("interaction_id", sa.String(length=36), sa.ForeignKey("interactions.id"), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_bookmarks_interaction_id", "bookmarks", ["interaction_id"])


def downgrade() -> None:
    op.drop_index("ix_bookmarks_interaction_id", table_name="bookmarks")
    op.drop_table("bookmarks")
