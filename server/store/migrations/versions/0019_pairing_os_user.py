"""The pairing's OS user: the PC's OS account a device pairing came from (the device broker's
caller), on its device_pairings row, so the Devices page and the fleet still name it after a
server restart (it was kept in server memory before).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05 10:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ADD COLUMN with a constant default needs no table copy (SQLite, PostgreSQL); rows paired
    # before this revision get "" (not known), as after a restart before.
    op.add_column(
        "device_pairings",
        sa.Column("os_user", sa.String(length=100), nullable=False, server_default=""),
    )


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+, PostgreSQL): no table copy under the foreign keys.
    op.execute("ALTER TABLE device_pairings DROP COLUMN os_user")
