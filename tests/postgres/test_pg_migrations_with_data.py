"""Revisions that rewrite existing rows, on PostgreSQL with rows in place: 0004 chains the audit
records written before the chain existed (the product's verifier then passes them), and 0010
fills the search columns of existing calls (the same expectations as the SQLite test in
tests/integration/test_search_api.py)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from server.store import audit
from server.store.db import alembic_config, make_engine, make_session_factory, session_scope


def test_revision_0004_chains_the_audit_records_already_there(pg_url: str) -> None:
    cfg = alembic_config(pg_url)
    command.upgrade(cfg, "0003")
    engine = make_engine(pg_url)
    try:
        with engine.begin() as db:
            for i, at in enumerate((100.0, 100.5, 99.0)):  # one a little back in time: a clock step
                db.execute(
                    text(
                        "INSERT INTO audit_log (at, user_id, username, action, target_type, target_id,"
                        " outcome, detail, remote_addr) VALUES (:at, NULL, 'old', 'media.read',"
                        " 'interaction', :t, 'allowed', 'before the chain', '10.0.0.1')"
                    ),
                    {"at": at, "t": f"i{i}"},
                )
        command.upgrade(cfg, "head")
        with session_scope(make_session_factory(engine)) as session:
            audit.record(session, action="pg.after", outcome="allowed")
        with session_scope(make_session_factory(engine)) as session:
            result = audit.verify(session)
        assert result.intact, [str(f) for f in result.findings]
        assert (result.records, result.last_seq) == (4, 4)
        command.downgrade(cfg, "0003")
        with engine.begin() as db:
            assert db.execute(text("SELECT count(*) FROM audit_log")).scalar_one() == 4
    finally:
        engine.dispose()


def test_revision_0010_fills_the_search_columns_of_existing_calls(pg_url: str) -> None:
    cfg = alembic_config(pg_url)
    command.upgrade(cfg, "0009")
    engine = make_engine(pg_url)
    call = (
        "INSERT INTO interactions (id, call_id, dn, caller, callee, state, started_at, answered_at, ended_at,"
        " end_reason, screen_decision, screen_percentage, voice_state, screen_state, kind, source,"
        " participants, recording_meta) VALUES (:id, 'c', '2001', :caller, '2001', 'done', 100, :ans, :end,"
        " 'bye', TRUE, 100, 'complete', 'complete', 'plain', '', '[]', '{}')"
    )
    media = (
        "INSERT INTO media_files (interaction_id, kind, storage_key, content_type, size, sha256, started_at,"
        " created_at, state) VALUES (:id, :kind, :id, 'video/mp4', 1, '', 100, 100, :state)"
    )
    pause = (
        "INSERT INTO pause_spans (interaction_id, started_at, by_username, reason)"
        " VALUES (:id, 101, '', :reason)"
    )
    try:
        with engine.begin() as db:
            db.execute(
                text(call), {"id": "a", "caller": "Ann <sip:+44 20 7946 0000@sbc>", "ans": 110, "end": 170}
            )
            db.execute(text(call), {"id": "b", "caller": "1555", "ans": None, "end": None})
            db.execute(text(call), {"id": "c", "caller": "tel:+1-555-0100", "ans": None, "end": 130})
            db.execute(text(media), {"id": "a", "kind": "muxed", "state": "complete"})
            db.execute(text(media), {"id": "b", "kind": "screen", "state": "pending"})  # not stored yet
            db.execute(text(media), {"id": "c", "kind": "voice", "state": "complete"})
            db.execute(text(pause), {"id": "a", "reason": "hold"})
            db.execute(text(pause), {"id": "b", "reason": "agent"})
        command.upgrade(cfg, "head")
        with engine.begin() as db:
            rows = db.execute(
                text(
                    "SELECT id, caller_number, duration, has_screen, was_paused FROM interactions ORDER BY id"
                )
            ).all()
        assert [tuple(r) for r in rows] == [
            ("a", "442079460000", 60.0, True, False),
            ("b", "1555", None, False, True),
            ("c", "15550100", 30.0, False, False),
        ]
        command.downgrade(cfg, "0009")
    finally:
        engine.dispose()
