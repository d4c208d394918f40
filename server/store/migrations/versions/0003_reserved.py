"""Recorder credentials and upload integrity (token scopes, enrollment).

Reserved revision: the change it names is being written; until then it changes nothing.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 20:40:00
"""

from __future__ import annotations

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
