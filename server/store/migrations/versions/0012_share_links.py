"""Time-limited share links to one media file of an interaction (token stored hashed).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 00:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "share_links",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("interaction_id", sa.String(length=36), sa.ForeignKey("interactions.id"), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("created_by", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_by_username", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
    )
    op.create_index("ix_share_links_interaction_id", "share_links", ["interaction_id"])


def downgrade() -> None:
    op.drop_index("ix_share_links_interaction_id", table_name="share_links")
    op.drop_table("share_links")
