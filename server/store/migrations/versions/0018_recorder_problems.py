"""Recorder problems: why the recorder on a PC is not running, as the desktop on that PC reported
it (one row per host and OS user), for the fleet page.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recorder_problems",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("hostname", sa.String(length=200), nullable=False),
        sa.Column("os_user", sa.String(length=100), nullable=False, server_default=""),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("message", sa.Text(), nullable=False, server_default=""),
        sa.Column("occurred_at", sa.Float(), nullable=False),
        sa.Column("reported_at", sa.Float(), nullable=False),
        sa.Column("reported_by_id", sa.Integer(), nullable=True),
        sa.Column("reported_by", sa.String(length=100), nullable=False, server_default=""),
        sa.Column("recorder_version", sa.String(length=50), nullable=False, server_default=""),
        sa.Column("remote_addr", sa.String(length=64), nullable=False, server_default=""),
        sa.UniqueConstraint("hostname", "os_user", name="uq_recorder_problems_host_user"),
    )
    op.create_index("ix_recorder_problems_reported_at", "recorder_problems", ["reported_at"])


def downgrade() -> None:
    op.drop_index("ix_recorder_problems_reported_at", table_name="recorder_problems")
    op.drop_table("recorder_problems")
