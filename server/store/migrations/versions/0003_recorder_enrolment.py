"""Recorder credentials and upload integrity: recorder enrolment codes, media rows that claim
their (interaction, kind) before the file is stored, and no more password-issued recorder tokens.

Tokens with client "recorder" issued before this revision came from a password login, which any
user could ask for; they are revoked here. Each recorder must be enrolled again
(``tandem-server enroll-recorder`` or ``POST /api/admin/recorders/enrolments``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 20:40:00
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("media_files", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("state", sa.String(length=10), nullable=False, server_default="complete")
        )
    op.create_table(
        "recorder_enrolments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("used_at", sa.Float(), nullable=True),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["token_id"], ["api_tokens.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code_hash"),
    )
    with op.batch_alter_table("recorder_enrolments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recorder_enrolments_user_id"), ["user_id"], unique=False)
    op.execute(
        sa.text(
            "UPDATE api_tokens SET revoked_at = :now WHERE client = 'recorder' AND revoked_at IS NULL"
        ).bindparams(now=time.time())
    )


def downgrade() -> None:
    with op.batch_alter_table("recorder_enrolments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recorder_enrolments_user_id"))
    op.drop_table("recorder_enrolments")
    op.execute(sa.text("DELETE FROM media_files WHERE state <> 'complete'"))
    with op.batch_alter_table("media_files", schema=None) as batch_op:
        batch_op.drop_column("state")
