"""Set up the server's database for a load run: one agent per DN, each DN the agent's full-time
recording DN, so a SIPREC call naming that DN is recorded with nobody logged in; and the voice
formats each finished call is encoded into.

One agent takes one call at a time (a second concurrent call for it is refused with 486), so N
concurrent calls need N agents. Creating them through the API would mean N logins; this is a
set-up step of the benchmark, done once with the server's own store code. The password hash is
computed once and shared: nobody logs in as these agents.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

from sqlalchemy import select

from server.policy.voice_formats import VOICE_FORMATS_KEY, dump
from server.security.passwords import hash_password
from server.settings import load_settings
from server.store import models
from server.store.db import make_engine, make_session_factory, migrate, session_scope
from server.store.users import ensure_team

FIRST_DN = 700000  # DNs 700000, 700001, ...: well clear of the demo set-up's users


def agent_dns(count: int) -> list[str]:
    return [str(FIRST_DN + i) for i in range(count)]


def create_load_agents(
    data_dir: Path, count: int, team: str = "Load", voice_formats: list[str] | None = None
) -> list[str]:
    """Make sure agents ``load0..load{count-1}`` exist with full-time DNs; return the DNs.
    ``voice_formats``: the admin's selection of encodings (None: leave the server's default)."""
    settings = load_settings(None, data_dir=data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url
    migrate(url)
    engine = make_engine(url)
    dns = agent_dns(count)
    try:
        with session_scope(make_session_factory(engine)) as s:
            existing = set(
                s.execute(select(models.User.username).where(models.User.username.like("load%"))).scalars()
            )
            if voice_formats is not None:
                s.merge(models.Setting(key=VOICE_FORMATS_KEY, value=dump(voice_formats)))
            team_id = ensure_team(s, team).id
            password_hash = hash_password(secrets.token_urlsafe(16))
            now = time.time()
            for i, dn in enumerate(dns):
                name = f"load{i}"
                if name in existing:
                    continue
                s.add(
                    models.User(
                        username=name,
                        full_name=f"Load Agent {i}",
                        role="agent",
                        password_hash=password_hash,
                        team_id=team_id,
                        active=True,
                        created_at=now,
                        full_time_dn=dn,
                    )
                )
    finally:
        engine.dispose()
    return dns
