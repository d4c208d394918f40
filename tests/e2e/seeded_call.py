"""The shared preamble of the browser tests that play a finished call (the pause-reason, share-link
/ audit and endpoint-audio player tests): a running server (sampling 0 %: no call of the test's own
records a screen) with Chromium beside it, and a finished call of agent1 (team Blue, the
supervisor's) seeded straight into the server's database with its media copied into storage —
stored as the server stores them: a row per file with its size and SHA-256."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import Browser
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.store import models
from server.store.db import make_engine, make_session_factory, session_scope
from server.store.storage import sha256_file
from tests.e2e.browser import chromium
from tests.e2e.harness import ServerProcess, run_server

AGENT = "agent1"
CALLER = "Carol <sip:+15550100@pbx>"


@contextlib.contextmanager
def server_and_browser(
    tmp_path: Path, extra_users: list[tuple[str, str, str]] | None = None
) -> Iterator[tuple[ServerProcess, Browser]]:
    with (
        run_server(tmp_path / "server", extra_users or [], TANDEM_SERVER_SCREEN_PERCENTAGE="0") as server,
        chromium() as browser,
    ):
        yield server, browser


@contextlib.contextmanager
def seeding(data_dir: Path) -> Iterator[tuple[Session, int]]:
    """One unit of work on the running server's database, and agent1's user id. The engine is
    disposed at the end: left to the garbage collector, the database stayed open in the test."""
    engine = make_engine(f"sqlite:///{(data_dir / 'tandem.db').resolve()}")
    try:
        with session_scope(make_session_factory(engine)) as s:
            agent = s.execute(select(models.User).where(models.User.username == AGENT)).scalar_one()
            yield s, agent.id
    finally:
        engine.dispose()


def finished_call(
    iid: str,
    call_id: str,
    agent_id: int,
    t0: float,
    *,
    answered_at: float,
    ended_at: float,
    acw_ended_at: float,
    screen: bool,
) -> models.Interaction:
    """agent1's call ``iid`` (SIP Call-ID ``call_id``) from Carol on DN 1001, started at ``t0``,
    ended by BYE and done; its voice complete, its screen complete (``screen``) or not selected."""
    return models.Interaction(
        id=iid,
        call_id=call_id,
        dn="1001",
        agent_id=agent_id,
        caller=CALLER,
        callee="1001",
        state="done",
        started_at=t0,
        answered_at=answered_at,
        ended_at=ended_at,
        acw_ended_at=acw_ended_at,
        end_reason="bye",
        screen_decision=screen,
        screen_percentage=100.0 if screen else 0.0,
        voice_state="complete",
        screen_state="complete" if screen else "not_selected",
        media_started_at=t0,
    )


def stored_media(
    data_dir: Path,
    folder: str,
    iid: str,
    kind: str,
    source: Path,
    content_type: str,
    *,
    started_at: float,
    duration: float,
    created_at: float,
) -> models.MediaFile:
    """``source`` copied into the server's storage as ``<folder>/<its name>``, and its row."""
    stored = data_dir / "storage" / folder / source.name
    stored.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, stored)
    return models.MediaFile(
        interaction_id=iid,
        kind=kind,
        storage_key=f"{folder}/{source.name}",
        content_type=content_type,
        size=stored.stat().st_size,
        sha256=sha256_file(stored),
        started_at=started_at,
        duration=duration,
        created_at=created_at,
    )
