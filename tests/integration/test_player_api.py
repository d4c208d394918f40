"""The player's API in process (SIP off): voice peaks (computed once, a derived file), the timeline
(pauses with who and why, holds, auto-pauses, missing screen from the muxed file's chapters, call
end, ACW end), bookmarks (private/shared, audited), who may read them (table-driven) and the
admin's per-team agent playback (API and CLI)."""

from __future__ import annotations

import base64
import wave
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient

from server.api.app import create_app
from server.api.routes_player import peaks_cache_path
from server.cli import main
from server.settings import load_settings
from server.store import models
from server.store.db import session_scope
from server.store.storage import sha256_file
from server.store.users import create_user

PASSWORD = "correct-horse-battery"
T0 = 1_780_000_000.0
RATE = 8000


def _voice_wav(path: Path) -> None:
    """4 s stereo: the caller speaks in second 0, the agent in second 2."""
    samples = np.zeros((RATE * 4, 2), dtype=np.int16)
    samples[:RATE, 0] = 12000
    samples[2 * RATE : 3 * RATE, 1] = -12000
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.tobytes())


def _muxed_with_gap(path: Path) -> None:
    """A tiny MP4 whose chapters mark the screen missing from 1.5 s to 2.5 s (as the mux does)."""
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=5)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(20):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 10, dtype=np.uint8), format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, 5)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        marks = [(0, 1500, "lead-in"), (1500, 2500, "screen_missing"), (2500, 4000, "screen_resumed")]
        out.set_chapters(
            [
                {"id": i, "start": a, "end": b, "time_base": Fraction(1, 1000), "metadata": {"title": t}}
                for i, (a, b, t) in enumerate(marks, start=1)
            ]
        )


@pytest.fixture
def env(tmp_path: Path) -> Iterator[TestClient]:
    settings = load_settings(None, data_dir=tmp_path / "data", sip_enabled=False)
    app = create_app(settings)
    storage = app.state.ctx.storage
    wav, mp4 = tmp_path / "v.wav", tmp_path / "m.mp4"
    _voice_wav(wav)
    _muxed_with_gap(mp4)
    files = {"voice": (wav, "audio/wav", T0 + 0.5), "muxed": (mp4, "video/mp4", T0)}
    with TestClient(app) as c, session_scope(app.state.ctx.sessions) as s:
        create_user(s, "admin", PASSWORD, "admin")
        create_user(s, "comp", PASSWORD, "compliance")
        create_user(s, "sup", PASSWORD, "supervisor", supervises=["Blue"])
        create_user(s, "sup_red", PASSWORD, "supervisor", supervises=["Red"])
        create_user(s, "ann", PASSWORD, "agent", team="Blue")
        create_user(s, "bob", PASSWORD, "agent", team="Blue")
        s.flush()
        ann = s.query(models.User).filter_by(username="ann").one()
        s.add(
            models.Interaction(
                id="call-1",
                call_id="c1",
                dn="2001",
                agent_id=ann.id,
                caller="+15550100",
                callee="2001",
                state="done",
                started_at=T0,
                answered_at=T0 + 0.5,
                ended_at=T0 + 4.5,
                acw_ended_at=T0 + 9.0,
                screen_decision=True,
                screen_percentage=100.0,
                voice_state="complete",
                screen_state="complete",
                media_started_at=T0,
            )
        )
        s.flush()
        s.add_all(
            [
                models.PauseSpan(
                    interaction_id="call-1",
                    started_at=T0 + 1.0,
                    ended_at=T0 + 1.4,
                    by_username="ann",
                    reason="agent",
                ),
                models.PauseSpan(
                    interaction_id="call-1",
                    started_at=T0 + 3.0,
                    ended_at=T0 + 3.5,
                    by_username="",
                    reason="hold",
                ),
                models.PauseSpan(
                    interaction_id="call-1",
                    started_at=T0 + 3.6,
                    ended_at=T0 + 3.8,
                    by_username="ann",
                    reason="auto:bank",
                ),
            ]
        )
        for kind, (path, ctype, started) in files.items():
            key = f"rec/call-1/{path.name}"
            sha = sha256_file(path)
            size = storage.put_file(key, path)
            s.add(
                models.MediaFile(
                    interaction_id="call-1",
                    kind=kind,
                    storage_key=key,
                    content_type=ctype,
                    size=size,
                    sha256=sha,
                    started_at=started,
                    duration=4.0,
                    created_at=T0,
                )
            )
        s.commit()
        yield c


def login(http: TestClient, user: str) -> dict[str, str]:
    r = http.post("/api/auth/login", json={"username": user, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def audits(http: TestClient, action: str) -> list[models.AuditRecord]:
    app = http.app
    with session_scope(app.state.ctx.sessions) as s:  # type: ignore[attr-defined]
        rows = s.query(models.AuditRecord).filter_by(action=action).order_by(models.AuditRecord.seq).all()
        s.expunge_all()
        return rows


def test_peaks_two_channels_computed_once_as_a_derived_file(env: TestClient) -> None:
    auth = login(env, "sup")
    r = env.get("/api/interactions/call-1/peaks", headers=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["started_at"] == T0 + 0.5 and body["bins_per_second"] == 8
    assert body["duration"] == pytest.approx(4.0)
    caller, agent = (np.frombuffer(base64.b64decode(c["peaks"]), dtype=np.uint8) for c in body["channels"])
    assert [c["name"] for c in body["channels"]] == ["caller", "agent"]
    assert caller[:8].min() > 90 and caller[8:].max() == 0
    assert agent[16:24].min() > 90 and agent[:16].max() == 0 and agent[24:].max() == 0
    ctx = env.app.state.ctx  # type: ignore[attr-defined]
    with session_scope(ctx.sessions) as s:
        voice = s.query(models.MediaFile).filter_by(kind="voice").one()
        cached, voice_sha = peaks_cache_path(ctx.settings.data_dir, voice.sha256), voice.sha256
        key = voice.storage_key
    assert cached.is_file()
    # The second read comes from the derived file: the stored WAV is only ever read.
    stamp = cached.stat().st_mtime_ns
    assert env.get("/api/interactions/call-1/peaks", headers=auth).json() == body
    assert cached.stat().st_mtime_ns == stamp
    assert sha256_file(ctx.storage.local_path(key)) == voice_sha
    assert [a.outcome for a in audits(env, "recording.peaks")] == ["allowed", "allowed"]


def test_timeline_has_pauses_with_who_and_why_holds_auto_pauses_missing_screen(env: TestClient) -> None:
    r = env.get("/api/interactions/call-1/timeline", headers=login(env, "comp"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["events"] == [
        {"kind": "call-start", "at": T0 + 0.5},
        {"kind": "call-end", "at": T0 + 4.5},
        {"kind": "acw-end", "at": T0 + 9.0},
    ]
    spans = [(s["kind"], s["start"], s["end"], s["who"], s["why"]) for s in body["spans"]]
    assert spans == [
        ("pause", T0 + 1.0, T0 + 1.4, "ann", "paused by the agent"),
        ("screen-missing", T0 + 1.5, T0 + 2.5, "", spans[1][4]),
        ("hold", T0 + 3.0, T0 + 3.5, "", "call on hold"),
        ("auto-pause", T0 + 3.6, T0 + 3.8, "ann", "masking rule 'bank' on screen"),
    ]
    assert body["files"]["muxed"]["started_at"] == T0 and body["files"]["voice"]["started_at"] == T0 + 0.5
    assert audits(env, "recording.timeline")[-1].outcome == "allowed"


def test_timeline_of_a_damaged_muxed_file_still_answers(env: TestClient) -> None:
    ctx = env.app.state.ctx  # type: ignore[attr-defined]
    with session_scope(ctx.sessions) as s:
        muxed = s.query(models.MediaFile).filter_by(interaction_id="call-1", kind="muxed").one()
        path = ctx.storage.local_path(muxed.storage_key)
    path.write_bytes(b"not an mp4 at all")
    with session_scope(ctx.sessions) as s:  # a new hash: the chapter cache must read it again
        s.query(models.MediaFile).filter_by(interaction_id="call-1", kind="muxed").update(
            {"sha256": "0" * 64}
        )
    r = env.get("/api/interactions/call-1/timeline", headers=login(env, "comp"))
    assert r.status_code == 200, r.text
    assert [s["kind"] for s in r.json()["spans"]] == ["pause", "hold", "auto-pause"]


ACCESS = [("admin", 200), ("comp", 200), ("sup", 200), ("sup_red", 403), ("ann", 403), ("bob", 403)]
PATHS = {
    "peaks": "recording.peaks",
    "timeline": "recording.timeline",
    "bookmarks": "bookmark.read",
    "media/voice": "recording.read",
}


def test_who_may_read_the_player_data_and_every_refusal_is_audited(env: TestClient) -> None:
    for user, status in ACCESS:
        auth = login(env, user)
        for path, action in PATHS.items():
            r = env.get(f"/api/interactions/call-1/{path}", headers=auth)
            assert r.status_code == status, (user, path, r.text)
            last = audits(env, action)[-1]
            assert (last.username, last.target_id) == (user, "call-1")
            assert last.outcome == ("allowed" if status == 200 else "denied"), (user, path)


def test_agents_play_their_own_recordings_where_the_admin_allows_it_for_their_team(env: TestClient) -> None:
    ann, admin = login(env, "ann"), login(env, "admin")
    assert env.get("/api/interactions/call-1/media/voice", headers=ann).status_code == 403
    r = env.put("/api/admin/agent-playback", json={"teams": ["Nowhere"]}, headers=admin)
    assert r.status_code == 422 and "Nowhere" in r.json()["message"]
    assert env.put("/api/admin/agent-playback", json={"teams": ["Blue"]}, headers=ann).status_code == 403
    r = env.put("/api/admin/agent-playback", json={"teams": ["Blue"]}, headers=admin)
    assert r.status_code == 200 and r.json() == {"teams": ["Blue"]}
    assert env.get("/api/admin/agent-playback", headers=admin).json() == {"teams": ["Blue"]}
    assert env.get("/api/interactions/call-1/media/voice", headers=ann).status_code == 200
    assert env.get("/api/interactions/call-1/peaks", headers=ann).status_code == 200
    # Own recordings only: a team-mate is still refused.
    assert env.get("/api/interactions/call-1/media/voice", headers=login(env, "bob")).status_code == 403
    changes = audits(env, "policy.agent_playback")
    assert [c.outcome for c in changes] == ["denied", "allowed"]
    assert '"before": []' in changes[-1].detail and '"after": ["Blue"]' in changes[-1].detail


def test_agent_playback_from_the_cli(env: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = str(env.app.state.ctx.settings.data_dir)  # type: ignore[attr-defined]
    assert main(["--data-dir", data_dir, "agent-playback", "set", "Blue"]) == 0
    assert main(["--data-dir", data_dir, "agent-playback", "set", "Nowhere"]) == 1
    assert main(["--data-dir", data_dir, "agent-playback", "show"]) == 0
    assert capsys.readouterr().out.strip().endswith('{"teams": ["Blue"]}')
    assert env.get("/api/interactions/call-1/media/voice", headers=login(env, "ann")).status_code == 200
    assert [(c.username, c.outcome) for c in audits(env, "policy.agent_playback")] == [
        ("cli", "allowed"),
        ("cli", "denied"),
    ]


def test_bookmarks_private_and_shared_audited(env: TestClient) -> None:
    sup, admin = login(env, "sup"), login(env, "admin")
    url = "/api/interactions/call-1/bookmarks"
    mine = env.post(url, json={"at": T0 + 2.0, "text": " rude reply ", "shared": False}, headers=sup)
    assert mine.status_code == 201, mine.text
    assert mine.json()["text"] == "rude reply" and mine.json()["mine"] is True
    shared = env.post(url, json={"at": T0 + 1.0, "text": "good greeting", "shared": True}, headers=sup)
    assert shared.status_code == 201
    assert [b["text"] for b in env.get(url, headers=sup).json()] == ["good greeting", "rude reply"]
    seen_by_admin = env.get(url, headers=admin).json()
    assert [(b["text"], b["username"], b["mine"]) for b in seen_by_admin] == [("good greeting", "sup", False)]
    # Refused: empty text, a time outside the recording, someone else's bookmark.
    assert env.post(url, json={"at": T0 + 2, "text": "  "}, headers=sup).status_code == 422
    assert env.post(url, json={"at": T0 + 9999, "text": "late"}, headers=sup).status_code == 422
    bid = shared.json()["id"]
    # Edited by its author only: the text and the sharing, not the time.
    assert env.patch(f"{url}/{bid}", json={"text": "x"}, headers=admin).status_code == 403
    r = env.patch(f"{url}/{mine.json()['id']}", json={"shared": True, "text": "rude reply!"}, headers=sup)
    assert r.status_code == 200 and r.json()["shared"] is True and r.json()["text"] == "rude reply!"
    assert env.patch(f"{url}/{bid}", json={"text": " "}, headers=sup).status_code == 422
    assert [b["text"] for b in env.get(url, headers=admin).json()] == ["good greeting", "rude reply!"]
    env.patch(f"{url}/{mine.json()['id']}", json={"shared": False}, headers=sup)
    assert env.delete(f"{url}/{bid}", headers=admin).status_code == 403
    assert env.delete(f"{url}/{mine.json()['id']}", headers=admin).status_code == 404
    assert env.delete(f"{url}/{bid}", headers=sup).status_code == 204
    assert [b["text"] for b in env.get(url, headers=sup).json()] == ["rude reply!"]
    creates = [(a.username, a.outcome) for a in audits(env, "bookmark.create")]
    assert creates == [("sup", "allowed"), ("sup", "allowed"), ("sup", "denied"), ("sup", "denied")]
    assert [a.outcome for a in audits(env, "bookmark.delete")] == ["denied", "denied", "allowed"]
    assert len(audits(env, "bookmark.read")) == 4
    updates = [a.outcome for a in audits(env, "bookmark.update")]
    assert updates == ["denied", "allowed", "denied", "allowed"]


def test_revision_0011_adds_and_removes_the_bookmarks_table(tmp_path: Path) -> None:
    import sqlite3

    from alembic import command

    from server.store.db import alembic_config

    path = tmp_path / "t.db"
    url = f"sqlite:///{path}"

    def tables() -> set[str]:
        with sqlite3.connect(path) as db:
            return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    command.upgrade(alembic_config(url), "head")
    assert "bookmarks" in tables()
    command.downgrade(alembic_config(url), "0010")
    assert "bookmarks" not in tables() and "saved_searches" in tables()
    command.upgrade(alembic_config(url), "head")
    assert "bookmarks" in tables()
