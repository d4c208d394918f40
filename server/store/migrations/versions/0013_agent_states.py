"""Agent states and codes: admin-defined reason and disposition codes, the agents' state history,
and the wrap-up (disposition code, notes) on each interaction.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 00:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_codes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("label", sa.String(length=80), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("kind", "code", name="uq_agent_codes_kind_code"),
    )
    op.create_table(
        "agent_state_changes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("reason_code", sa.String(length=32), nullable=True),
        sa.Column("at", sa.Float(), nullable=False),
    )
    op.create_index("ix_agent_state_changes_user_id", "agent_state_changes", ["user_id"])
    op.create_index("ix_agent_state_changes_at", "agent_state_changes", ["at"])
    with op.batch_alter_table("interactions") as batch:
        batch.add_column(sa.Column("disposition_code", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("notes", sa.Text(), nullable=False, server_default=""))
        batch.create_index("ix_interactions_disposition_code", ["disposition_code"])


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+, PostgreSQL), not a batch table copy: copying interactions
    # means dropping it, which the foreign keys of its media, pauses and segments refuse.
    op.drop_index("ix_interactions_disposition_code", table_name="interactions")
    for column in ("notes", "disposition_code"):
        op.execute(f"ALTER TABLE interactions DROP COLUMN {column}")
    op.drop_index("ix_agent_state_changes_at", "agent_state_changes")
    op.drop_index("ix_agent_state_changes_user_id", "agent_state_changes")
    op.drop_table("agent_state_changes")
    op.drop_table("agent_codes")
