"""Linked interactions: a subscriber's second simultaneous call (three-way, call waiting,
consultation) is recorded as its own interaction that names the first one.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 21:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_interaction_id", sa.String(length=36), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_interactions_parent_interaction_id"), ["parent_interaction_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_interactions_parent_interaction_id"))
        batch_op.drop_column("parent_interaction_id")
