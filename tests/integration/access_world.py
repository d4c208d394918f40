"""A small world for access tests (share links, the audit viewer, the role matrix): one user of
each role, teams Blue and Red, and two finished calls with stored media — ``call-blue`` (agent
ann, team Blue: the supervisor's and evaluator's team, ann's own) and ``call-red`` (agent rex,
team Red: nobody's but admin's and compliance's)."""

from __future__ import annotations

import wave
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from fastapi import FastAPI
from fastapi.testclient import TestClient

from server.api.app import create_app
from server.settings import load_settings
from server.store import models
from server.store.db import session_scope
from server.store.storage import sha256_file
from server.store.users import create_user

PASSWORD = "correct-horse-battery"
T0 = 1_780_000_000.0
# One user per role; the agent is ann (team Blue), the supervisor and evaluator supervise Blue.
ROLE_USERS = {"agent": "ann", "supervisor": "sup", "evaluator": "eva", "compliance": "comp", "admin": "admin"}


def _wav(path: Path, seconds: int = 2) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.full((8000 * seconds, 2), 3000, dtype=np.int16).tobytes())


def _mp4(path: Path) -> None:
    """A tiny real MP4 (2 s, 5 fps): the player's timeline reads the muxed file's chapters."""
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=5)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 20, dtype=np.uint8), format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, 5)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def _call(s: object, app: FastAPI, tmp: Path, call_id: str, agent_id: int) -> None:
    from sqlalchemy.orm import Session

    assert isinstance(s, Session)
    s.add(
        models.Interaction(
            id=call_id,
            call_id=call_id,
            dn="2001",
            agent_id=agent_id,
            caller="+15550100",
            callee="2001",
            state="done",
            started_at=T0,
            answered_at=T0 + 0.5,
            ended_at=T0 + 2.5,
            acw_ended_at=T0 + 5.0,
            screen_decision=False,
            screen_percentage=0.0,
            voice_state="complete",
            screen_state="none",
            media_started_at=T0,
        )
    )
    s.flush()
    wav = tmp / f"{call_id}.wav"
    _wav(wav)
    mp4 = tmp / f"{call_id}.mp4"
    _mp4(mp4)
    storage = app.state.ctx.storage
    for kind, path, ctype in (("voice", wav, "audio/wav"), ("muxed", mp4, "video/mp4")):
        key = f"rec/{call_id}/{path.name}"
        sha = sha256_file(path)
        size = storage.put_file(key, path)
        s.add(
            models.MediaFile(
                interaction_id=call_id,
                kind=kind,
                storage_key=key,
                content_type=ctype,
                size=size,
                sha256=sha,
                started_at=T0,
                duration=2.0,
                created_at=T0,
            )
        )


@contextmanager
def world(tmp_path: Path) -> Iterator[TestClient]:
    settings = load_settings(None, data_dir=tmp_path / "data", sip_enabled=False)
    app = create_app(settings)
    with TestClient(app) as client, session_scope(app.state.ctx.sessions) as s:
        create_user(s, "admin", PASSWORD, "admin")
        create_user(s, "comp", PASSWORD, "compliance")
        create_user(s, "sup", PASSWORD, "supervisor", supervises=["Blue"])
        create_user(s, "eva", PASSWORD, "evaluator", supervises=["Blue"])
        create_user(s, "ann", PASSWORD, "agent", team="Blue")
        create_user(s, "rex", PASSWORD, "agent", team="Red")
        s.flush()
        users = {u.username: u.id for u in s.query(models.User)}
        _call(s, app, tmp_path, "call-blue", users["ann"])
        _call(s, app, tmp_path, "call-red", users["rex"])
        s.commit()
        yield client


def login(http: TestClient, user: str) -> dict[str, str]:
    r = http.post("/api/auth/login", json={"username": user, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def audits(http: TestClient, action: str | None = None) -> list[models.AuditRecord]:
    app = http.app
    with session_scope(app.state.ctx.sessions) as s:  # type: ignore[attr-defined]
        q = s.query(models.AuditRecord)
        if action is not None:
            q = q.filter_by(action=action)
        rows = q.order_by(models.AuditRecord.seq).all()
        s.expunge_all()
        return rows
