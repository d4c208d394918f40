"""The shared setup of the segment-upload state tests (tests/unit/test_segment_uploads.py,
test_outage_limits.py): a real, migrated SQLite database with agent 1 and his interaction ``i1`` in
after-call work with its screen recording — the one a recorder's segment uploads go to."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from server.store import models
from server.store.db import make_engine, make_session_factory, migrate, session_scope
from tandem_protocol.tus import SegmentDeclaration


@contextmanager
def upload_db(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """Sessions on the database; its engine is disposed at the end (left to the garbage collector,
    the database, its WAL and shm stayed open)."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    migrate(url)
    engine = make_engine(url)
    try:
        factory = make_session_factory(engine)
        with session_scope(factory) as s:
            s.add(
                models.User(
                    id=1, username="agent1", full_name="", role="agent", password_hash="x", created_at=0
                )
            )
            s.flush()
            s.add(
                models.Interaction(
                    id="i1",
                    call_id="c1",
                    dn="1001",
                    agent_id=1,
                    state="acw",
                    started_at=time.time() - 60,
                    screen_decision=True,
                    screen_percentage=100.0,
                    voice_state="stopped",
                    screen_state="recording",
                )
            )
        yield factory
    finally:
        engine.dispose()


def declaration(body: bytes, seq: int = 0) -> SegmentDeclaration:
    """Run ``run-1``'s segment ``seq`` of ``body``, started 30 s ago."""
    return SegmentDeclaration(
        "run-1", seq, time.time() - 30, hashlib.sha256(body).hexdigest(), len(body), False
    )
