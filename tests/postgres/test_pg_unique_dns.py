"""The database itself refuses two owners of one DN on PostgreSQL, as on SQLite (revision 0005):
the unique full-time DN (NULLs allowed) and the partial unique index on active bindings, which
settles two logins that race past the service's check."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from server.store import models
from server.store.db import make_engine, make_session_factory, session_scope


@pytest.fixture
def sessions(on_postgres: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(on_postgres)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


def _user(name: str, dn: str | None = None) -> models.User:
    return models.User(
        username=name, role="agent", password_hash="-", created_at=time.time(), full_time_dn=dn
    )


def test_two_agents_cannot_have_one_full_time_dn(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as s:
        s.add_all([_user("ann", "2001"), _user("bob"), _user("cy")])  # NULLs: any number
    with pytest.raises(IntegrityError, match="ix_users_full_time_dn"), session_scope(sessions) as s:
        s.add(_user("dee", "2001"))
    with session_scope(sessions) as s:
        s.add(_user("dee", "2002"))


def test_one_active_binding_per_dn_released_ones_aside(sessions: sessionmaker[Session]) -> None:
    now = time.time()
    with session_scope(sessions) as s:
        ann, bob = _user("ann"), _user("bob")
        s.add_all([ann, bob])
        s.flush()
        tokens = [
            models.ApiToken(
                token_hash=f"{i:064x}", user_id=u.id, client="desktop", created_at=now, expires_at=now + 60
            )
            for i, u in enumerate((ann, bob, ann))
        ]
        s.add_all(tokens)
        s.flush()
        ids = [(u.id, t.id) for u, t in zip((ann, bob, ann), tokens, strict=True)]
        s.add(
            models.DnBinding(dn="3001", user_id=ids[0][0], token_id=ids[0][1], bound_at=now, released_at=now)
        )
        s.add(models.DnBinding(dn="3001", user_id=ids[1][0], token_id=ids[1][1], bound_at=now))
    with pytest.raises(IntegrityError, match="uq_dn_bindings_active_dn"), session_scope(sessions) as s:
        s.add(models.DnBinding(dn="3001", user_id=ids[2][0], token_id=ids[2][1], bound_at=now))
    with session_scope(sessions) as s:  # another DN is free
        s.add(models.DnBinding(dn="3002", user_id=ids[2][0], token_id=ids[2][1], bound_at=now))
