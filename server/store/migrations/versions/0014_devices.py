"""Devices: enrolment tokens, enrolled recorder devices with their own credential, and the
device ↔ agent-session pairings (hot-desking).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enrolment_tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("scope", sa.String(length=100), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("max_uses", sa.Integer(), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
    )
    op.create_table(
        "devices",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("credential_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("hostname", sa.String(length=200), nullable=False),
        sa.Column("scope", sa.String(length=100), nullable=False),
        sa.Column("enrolment_token_id", sa.Integer(), sa.ForeignKey("enrolment_tokens.id"), nullable=False),
        sa.Column("enrolled_at", sa.Float(), nullable=False),
        sa.Column("last_seen_at", sa.Float(), nullable=True),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.Column("revoked_by", sa.String(length=100), nullable=True),
    )
    op.create_table(
        "device_pairings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("device_id", sa.Integer(), sa.ForeignKey("devices.id"), nullable=False),
        sa.Column("agent_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("agent_token_id", sa.Integer(), sa.ForeignKey("api_tokens.id"), nullable=False),
        sa.Column(
            "recorder_token_id", sa.Integer(), sa.ForeignKey("api_tokens.id"), nullable=False, unique=True
        ),
        sa.Column("paired_at", sa.Float(), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_device_pairings_device_id", "device_pairings", ["device_id"])
    op.create_index("ix_device_pairings_agent_id", "device_pairings", ["agent_id"])


def downgrade() -> None:
    op.drop_index("ix_device_pairings_agent_id", table_name="device_pairings")
    op.drop_index("ix_device_pairings_device_id", table_name="device_pairings")
    op.drop_table("device_pairings")
    op.drop_table("devices")
    op.drop_table("enrolment_tokens")
