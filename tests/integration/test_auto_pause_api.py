"""``screen.auto_pause`` from the agent's recorder: stored as a pause span with reason
``auto:<rule>`` on the interaction's timeline, ended by the second message, idempotent, audited;
refused (with the reason sent back, and audited) for another agent's call, a malformed message or
a span outside the interaction. The server runs in process (SIP off) under Starlette's TestClient.
"""

from __future__ import annotations

import json
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from server.api.app import create_app
from server.settings import load_settings
from server.sip.listener import CallAccepted, CallOffer
from server.store import models
from server.store.db import session_scope
from server.store.users import create_user
from tandem_protocol.events import Envelope

PASSWORD = "correct-horse-battery-9"
DEADLINE = 20.0


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    app = create_app(load_settings(None, data_dir=tmp_path / "data", sip_enabled=False))
    with session_scope(app.state.ctx.sessions) as s:
        create_user(s, "admin", PASSWORD, "admin")
        create_user(s, "agent1", PASSWORD, "agent", team="Blue")
        create_user(s, "agent2", PASSWORD, "agent", team="Blue")
    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(http: TestClient, user: str) -> str:
    r = http.post("/api/auth/login", json={"username": user, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def recorder_token(http: TestClient, username: str = "agent1") -> str:
    admin = bearer(login(http, "admin"))
    r = http.post("/api/admin/recorders/enrolments", headers=admin, json={"username": username})
    assert r.status_code == 201, r.text
    r = http.post("/api/recorders/enroll", json={"code": r.json()["code"]})
    assert r.status_code == 200, r.text
    http.cookies.clear()  # the recorder's token travels as a Bearer header
    return str(r.json()["token"])


def add_interaction(app: FastAPI, iid: str, agent: str) -> float:
    """A call of ``agent`` in progress for a minute; returns its start."""
    started = time.time() - 60
    with session_scope(app.state.ctx.sessions) as s:
        user = s.execute(select(models.User).where(models.User.username == agent)).scalar_one()
        s.add(
            models.Interaction(
                id=iid,
                call_id=f"call-{iid}",
                dn="1001",
                agent_id=user.id,
                state="active",
                started_at=started,
                answered_at=started,
                screen_decision=True,
                screen_percentage=100.0,
                voice_state="recording",
                screen_state="recording",
            )
        )
    return started


def spans(app: FastAPI, iid: str) -> list[tuple[float, float | None, str, str]]:
    with session_scope(app.state.ctx.sessions) as s:
        rows = s.execute(select(models.PauseSpan).where(models.PauseSpan.interaction_id == iid)).scalars()
        return [(p.started_at, p.ended_at, p.reason, p.by_username) for p in rows]


def audits(app: FastAPI, action: str) -> list[tuple[str, str, str]]:
    with session_scope(app.state.ctx.sessions) as s:
        rows = s.execute(select(models.AuditRecord).where(models.AuditRecord.action == action)).scalars()
        return [(a.username, a.outcome, a.detail) for a in rows]


def wait_for(what: str, check: Callable[[], bool]) -> None:
    end = time.monotonic() + DEADLINE
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def auto_pause(ws: Any, iid: str, rule: str, started: float, ended: float | None = None) -> None:
    data = {"interaction_id": iid, "rule": rule, "started_at": started, "ended_at": ended}
    ws.send_text(Envelope(type="screen.auto_pause", data=data, at=time.time()).to_json())


def next_error(ws: Any) -> str:
    while True:
        env = json.loads(ws.receive_text())
        if env["type"] == "error":
            return str(env["data"]["message"])


def test_auto_pause_is_a_pause_span_on_the_timeline(client: TestClient, app: FastAPI) -> None:
    started = add_interaction(app, "iid-a", "agent1")
    token = recorder_token(client)
    with client.websocket_connect("/api/events?client=recorder", headers=bearer(token)) as ws:
        assert json.loads(ws.receive_text())["type"] == "state"
        auto_pause(ws, "iid-a", "online banking", started + 5)
        wait_for("the open span", lambda: len(spans(app, "iid-a")) == 1)
        assert spans(app, "iid-a") == [(started + 5, None, "auto:online banking", "agent1")]
        auto_pause(ws, "iid-a", "online banking", started + 5, started + 9.5)
        wait_for("the span's end", lambda: spans(app, "iid-a")[0][1] is not None)
        # A message sent again (a reconnecting recorder) changes nothing.
        auto_pause(ws, "iid-a", "online banking", started + 5, started + 9.5)
        auto_pause(ws, "iid-a", "online banking", started + 5)
        # The next message's refusal comes back after the ones before it were handled.
        auto_pause(ws, "no-such-call", "x", started)
        assert "no interaction" in next_error(ws)
    assert spans(app, "iid-a") == [(started + 5, started + 9.5, "auto:online banking", "agent1")]
    allowed = [
        (u, o) for u, o, _ in audits(app, "recording.auto_pause") + audits(app, "recording.auto_resume")
    ]
    assert allowed.count(("agent1", "allowed")) == 2
    # On the interaction's timeline as a supervisor sees it (the mux marks pauses from these too).
    r = client.get("/api/interactions/iid-a", headers=bearer(login(client, "admin")))
    assert r.status_code == 200, r.text
    assert [(p["started_at"], p["ended_at"]) for p in r.json()["pauses"]] == [(started + 5, started + 9.5)]


def test_refusals_are_sent_back_audited_and_store_nothing(client: TestClient, app: FastAPI) -> None:
    started = add_interaction(app, "iid-other", "agent2")
    mine = add_interaction(app, "iid-mine", "agent1")
    token = recorder_token(client)
    with client.websocket_connect("/api/events?client=recorder", headers=bearer(token)) as ws:
        assert json.loads(ws.receive_text())["type"] == "state"
        auto_pause(ws, "iid-other", "bank", started + 1)
        assert "no interaction iid-other of yours" in next_error(ws)
        auto_pause(ws, "iid-mine", "bank", mine + 10, mine + 5)
        assert "ended_at before started_at" in next_error(ws)
        auto_pause(ws, "iid-mine", "  ", mine + 10)
        assert "empty rule" in next_error(ws)
        auto_pause(ws, "iid-mine", "bank", mine - 3600)
        assert "outside the interaction" in next_error(ws)
    assert spans(app, "iid-other") == [] and spans(app, "iid-mine") == []
    denied = audits(app, "recording.auto_pause")
    assert [(u, o) for u, o, _ in denied] == [("agent1", "denied")] * 4
    assert [d for _, _, d in denied] == [
        "screen.auto_pause: no interaction iid-other of yours",
        "malformed ScreenAutoPause: ended_at before started_at",
        "malformed ScreenAutoPause: empty rule name",
        "screen.auto_pause: started_at is outside the interaction",
    ]


class FakeCall:
    """The SIP engine's handle of a recorded call, as the coordinator uses it."""

    def __init__(self, interaction_id: str, voice_path: Path) -> None:
        self.interaction_id = interaction_id
        self.voice_path = voice_path
        self.answered_at = time.time()
        with wave.open(str(voice_path), "wb") as w:
            w.setnchannels(2)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(b"\0\0\0\0" * 8000)

    def pause(self, at: float) -> None:
        pass

    def resume(self, at: float) -> None:
        pass

    async def stop(self, at: float) -> None:
        pass

    def media_stats(self) -> dict[str, object]:
        return {}


def test_an_auto_pause_whose_end_never_came_ends_at_done(
    client: TestClient, app: FastAPI, tmp_path: Path
) -> None:
    """A recorder that lost its connection while a pause rule's window showed never sends the
    end: the span ends at Done instead of lasting for ever (the mux would cut the rest)."""
    r = client.post(
        "/api/auth/login",
        json={"username": "agent1", "password": PASSWORD, "client": "desktop", "dn": "1001"},
    )
    assert r.status_code == 200, r.text
    desktop = bearer(r.json()["token"])
    coordinator = app.state.ctx.coordinator
    assert client.portal is not None
    offer = CallOffer(
        call_id="c-auto",
        dn="1001",
        caller="+15550100",
        callee="1001",
        source=("127.0.0.1", 5060),
        codec="PCMU",
    )
    accepted = client.portal.call(coordinator.on_call_offered, offer)
    assert isinstance(accepted, CallAccepted), accepted
    iid = accepted.interaction_id
    call = FakeCall(iid, tmp_path / "voice.wav")
    client.portal.call(coordinator.on_call_answered, call)
    token = recorder_token(client)
    with client.websocket_connect("/api/events?client=recorder", headers=bearer(token)) as ws:
        assert json.loads(ws.receive_text())["type"] == "state"
        auto_pause(ws, iid, "bank", call.answered_at + 0.5)
        wait_for("the open span", lambda: len(spans(app, iid)) == 1)
    client.portal.call(coordinator.on_call_ended, call, time.time(), "bye")
    # Done must come after the span's start (else it ends at its start): on a fast machine the
    # whole call takes less than the 0.5 s before the rule's window appeared.
    wait_for("the span's start to pass", lambda: time.time() > call.answered_at + 0.6)
    r = client.post(f"/api/interactions/{iid}/done", headers=desktop)
    assert r.status_code == 200, r.text
    with session_scope(app.state.ctx.sessions) as s:
        row = s.get(models.Interaction, iid)
        assert row is not None
        done_at = row.acw_ended_at
    assert done_at is not None
    wait_for("the span closed at Done", lambda: spans(app, iid)[0][1] == done_at)
    assert spans(app, iid)[0][2] == "auto:bank"
