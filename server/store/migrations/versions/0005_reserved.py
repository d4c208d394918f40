"""Normalised DN bindings (unique active binding), password policy.

Reserved revision: the change it names is being written; until then it changes nothing.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 20:40:00
"""

from __future__ import annotations

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
