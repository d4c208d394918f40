"""SIPREC metadata: interaction kind, participants, recording metadata, stop time; pause reasons;
full-time recording DN per agent.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=10), nullable=False, server_default="plain"))
        batch_op.add_column(sa.Column("session_id", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("source", sa.String(length=64), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("participants", sa.Text(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("recording_meta", sa.Text(), nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("stopped_at", sa.Float(), nullable=True))
        batch_op.create_index(batch_op.f("ix_interactions_session_id"), ["session_id"], unique=False)
    with op.batch_alter_table("pause_spans", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reason", sa.String(length=100), nullable=False, server_default=""))
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("full_time_dn", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_users_full_time_dn"), ["full_time_dn"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_full_time_dn"))
        batch_op.drop_column("full_time_dn")
    with op.batch_alter_table("pause_spans", schema=None) as batch_op:
        batch_op.drop_column("reason")
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_interactions_session_id"))
        for column in ("stopped_at", "recording_meta", "participants", "source", "session_id", "kind"):
            batch_op.drop_column(column)
