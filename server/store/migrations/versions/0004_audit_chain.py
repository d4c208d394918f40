"""Tamper-evident audit log: every record gets seq, prev_hash and hash (a SHA-256 chain); the
existing records are chained in id order; one-row ``audit_head`` holds the last seq and hash.

The append-only triggers are dropped for the chaining UPDATEs and created again. ``audit_head``
gets triggers too: its row cannot be deleted, and its seq can only stay or rise by one. They
guard against mistakes only — whoever can write the database file can drop a trigger — and the
head needs no more: a head edited by hand makes the next record link to a wrong hash or seq,
which ``tandem-server audit verify`` reports, and signed checkpoints outside the database catch
a tail rewritten together with the head.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 20:40:00
"""

from __future__ import annotations

import hashlib
import json

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

GENESIS = "0" * 64
CONTENT = (
    "at",
    "user_id",
    "username",
    "action",
    "target_type",
    "target_id",
    "outcome",
    "detail",
    "remote_addr",
)


def _hash(seq: int, prev_hash: str, row: sa.Row[tuple[object, ...]]) -> str:
    # Same encoding as server.store.audit_chain.canonical (version 1), copied so this revision
    # keeps producing what it produced when the code moves on.
    body: dict[str, object] = {"v": 1, "seq": seq, "prev_hash": prev_hash}
    body.update({name: getattr(row, name) for name in CONTENT})
    body["at"] = float(body["at"])  # type: ignore[arg-type]
    data = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    return hashlib.sha256(data).hexdigest()


def upgrade() -> None:
    _drop_log_triggers()
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    bind = op.get_bind()
    log = sa.table(
        "audit_log",
        sa.column("id", sa.Integer),
        sa.column("seq", sa.Integer),
        sa.column("prev_hash", sa.String),
        sa.column("hash", sa.String),
        *(sa.column(name) for name in CONTENT),
    )
    prev, seq = GENESIS, 0
    rows = bind.execute(sa.select(log.c.id, *(log.c[n] for n in CONTENT)).order_by(log.c.id)).all()
    for row in rows:
        seq += 1
        digest = _hash(seq, prev, row)
        bind.execute(sa.update(log).where(log.c.id == row.id).values(seq=seq, prev_hash=prev, hash=digest))
        prev = digest
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_index(batch_op.f("ix_audit_log_seq"), ["seq"], unique=True)
    _create_log_triggers()
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(head, [{"id": 1, "seq": seq, "hash": prev}])
    _create_head_triggers()


def downgrade() -> None:
    _drop_head_triggers()
    op.drop_table("audit_head")
    _drop_log_triggers()
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_seq"))
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("seq")
    _create_log_triggers()


def _create_log_triggers() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
        )


def _drop_log_triggers() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    elif dialect == "postgresql":
        # The function (created by 0001) stays; only the trigger is re-created.
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")


def _create_head_triggers() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(
            "CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head "
            "BEGIN SELECT RAISE(ABORT, 'the audit head cannot be deleted'); END"
        )
        op.execute(
            "CREATE TRIGGER audit_head_forward_only BEFORE UPDATE ON audit_head "
            "WHEN NEW.id != OLD.id OR NEW.seq NOT IN (OLD.seq, OLD.seq + 1) "
            "BEGIN SELECT RAISE(ABORT, 'the audit head only moves forward by one'); END"
        )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF TG_OP = 'DELETE' THEN RAISE EXCEPTION 'the audit head cannot be deleted'; END IF; "
            "IF NEW.id <> OLD.id OR NEW.seq NOT IN (OLD.seq, OLD.seq + 1) THEN "
            "RAISE EXCEPTION 'the audit head only moves forward by one'; END IF; "
            "RETURN NEW; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_head_forward_only BEFORE UPDATE OR DELETE ON audit_head "
            "FOR EACH ROW EXECUTE FUNCTION audit_head_forward_only()"
        )


def _drop_head_triggers() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_head_no_delete")
        op.execute("DROP TRIGGER IF EXISTS audit_head_forward_only")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_head_forward_only ON audit_head")
        op.execute("DROP FUNCTION IF EXISTS audit_head_forward_only()")
