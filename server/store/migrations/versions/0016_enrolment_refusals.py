"""Refused device enrolments: kept (bounded) so the fleet page can show a PC whose enrolment
token was expired, revoked, used up or unknown, until it enrols.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 07:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enrolment_refusals",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("hostname", sa.String(length=200), nullable=False),
        sa.Column("os_user", sa.String(length=100), nullable=False, server_default=""),
        sa.Column("remote_addr", sa.String(length=64), nullable=False, server_default=""),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.Column("token_prefix", sa.String(length=12), nullable=False, server_default=""),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("message", sa.String(length=200), nullable=False, server_default=""),
    )
    op.create_index("ix_enrolment_refusals_at", "enrolment_refusals", ["at"])
    op.create_index("ix_enrolment_refusals_hostname", "enrolment_refusals", ["hostname"])


def downgrade() -> None:
    op.drop_index("ix_enrolment_refusals_hostname", table_name="enrolment_refusals")
    op.drop_index("ix_enrolment_refusals_at", table_name="enrolment_refusals")
    op.drop_table("enrolment_refusals")
