"""Pause reasons: the agent's reason code (an admin code of kind "pause") and its label at the
time, on each pause span. Codes of kind "pause" live in agent_codes (revision 0013) as they are.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pause_spans") as batch:
        batch.add_column(sa.Column("reason_code", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("reason_label", sa.String(length=80), nullable=False, server_default=""))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+, PostgreSQL): no table copy under the foreign keys.
    for column in ("reason_label", "reason_code"):
        op.execute(f"ALTER TABLE pause_spans DROP COLUMN {column}")
