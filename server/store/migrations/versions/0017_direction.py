"""Interaction direction: "inbound", "outbound" or "" (not known) — what the SIP side said (a
``direction`` recording parameter / X-header, else the SIPREC calling-party flag), stored so the
search can filter on it. Existing rows: "" (their direction was never kept).

Indexes: (direction, started_at, id) for a search over everyone's calls (admin, compliance), and
direction appended to the (agent, started_at, …) index so a supervisor's "my teams, inbound, 7
days" stays covering (a table read per candidate row is what made such filters slow, see 0010).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 07:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

AGENT_INDEX = "ix_interactions_agent_started_id"
AGENT_COLUMNS = ["agent_id", "started_at", "id", "has_screen", "was_paused"]
DIRECTION_INDEX = "ix_interactions_direction_started_id"


def upgrade() -> None:
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("direction", sa.String(length=10), nullable=False, server_default=""))
    op.drop_index(AGENT_INDEX, table_name="interactions")
    op.create_index(AGENT_INDEX, "interactions", [*AGENT_COLUMNS, "direction"], unique=False)
    op.create_index(DIRECTION_INDEX, "interactions", ["direction", "started_at", "id"], unique=False)


def downgrade() -> None:
    op.drop_index(DIRECTION_INDEX, table_name="interactions")
    op.drop_index(AGENT_INDEX, table_name="interactions")
    op.create_index(AGENT_INDEX, "interactions", AGENT_COLUMNS, unique=False)
    # Plain DROP COLUMN (SQLite 3.35+, PostgreSQL), not a batch table copy: copying interactions
    # means dropping it, which the foreign keys of its media, pauses and segments refuse.
    op.execute("ALTER TABLE interactions DROP COLUMN direction")
