"""SIP faults: refused calls (missed recordings).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 20:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "missed_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("last_at", sa.Float(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=255), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("from_uri", sa.String(length=255), nullable=False),
        sa.Column("to_uri", sa.String(length=255), nullable=False),
        sa.Column("request_uri", sa.String(length=255), nullable=False),
        sa.Column("dn", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("detail", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("missed_calls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_missed_calls_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_missed_calls_call_id"), ["call_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_missed_calls_dn"), ["dn"], unique=False)
        batch_op.create_index(batch_op.f("ix_missed_calls_reason"), ["reason"], unique=False)


def downgrade() -> None:
    op.drop_table("missed_calls")
