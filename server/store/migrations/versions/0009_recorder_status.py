"""Recorder health: the latest heartbeat of each recorder, for the fleet page.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 23:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recorder_status",
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("interaction_id", sa.String(length=64), nullable=True),
        sa.Column("spool_bytes", sa.Integer(), nullable=False),
        sa.Column("segments_pending", sa.Integer(), nullable=False),
        sa.Column("upload", sa.Text(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=False),
        sa.Column("free_disk_bytes", sa.Integer(), nullable=True),
        sa.Column("free_disk_percent", sa.Float(), nullable=True),
        sa.Column("clock_offset", sa.Float(), nullable=True),
        sa.Column("clock_accuracy", sa.Float(), nullable=True),
        sa.Column("interval", sa.Float(), nullable=False),
        sa.Column("first_seen", sa.Float(), nullable=False),
        sa.Column("last_seen", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("token_id"),
    )
    with op.batch_alter_table("recorder_status", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recorder_status_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_recorder_status_last_seen"), ["last_seen"], unique=False)


def downgrade() -> None:
    op.drop_table("recorder_status")
