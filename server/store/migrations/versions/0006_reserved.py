"""SIP faults: refused calls (missed recordings), true end reasons.

Reserved revision: the change it names is being written; until then it changes nothing.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 20:40:00
"""

from __future__ import annotations

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
