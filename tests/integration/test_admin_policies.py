"""Admin policies through one service layer: the screen sampling policy's team overrides are
named by team name from the API and the CLI alike, unknown names are refused with a message that
lists the teams (and the refusal is audited), and every change is audited with the values before
and after. The ACW limit: set from the API and the CLI, validated, audited, and used by the
coordinator for the next call that ends (and shown to the desktop)."""

from __future__ import annotations

import json
import os
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from server.api.app import create_app
from server.cli import main
from server.settings import load_settings
from server.sip.listener import CallAccepted, CallOffer
from server.store import models
from server.store.db import session_scope
from server.store.users import create_user

PASSWORD = "correct-horse-battery"


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    for key in list(os.environ):
        if key.startswith("TANDEM_SERVER_"):
            monkeypatch.delenv(key)
    settings = load_settings(None, data_dir=tmp_path / "data", sip_enabled=False, media_encoder_process=False)
    app = create_app(settings)
    with session_scope(app.state.ctx.sessions) as s:
        create_user(s, "admin", PASSWORD, "admin")
        create_user(s, "agent1", PASSWORD, "agent", team="Blue")  # DN 1001 in the ACW test
        create_user(s, "agent2", PASSWORD, "agent", team="Green")
    with TestClient(app) as c:
        yield c


def admin(http: TestClient) -> dict[str, str]:
    r = http.post("/api/auth/login", json={"username": "admin", "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def audits(http: TestClient, action: str) -> list[tuple[str, str, str]]:
    with session_scope(http.app.state.ctx.sessions) as s:  # type: ignore[attr-defined]
        rows = s.execute(
            select(models.AuditRecord)
            .where(models.AuditRecord.action == action)
            .order_by(models.AuditRecord.id)
        ).scalars()
        return [(r.username, r.outcome, r.detail) for r in rows]


def team_percentages(http: TestClient) -> dict[str, float | None]:
    with session_scope(http.app.state.ctx.sessions) as s:  # type: ignore[attr-defined]
        return {t.name: t.screen_percentage for t in s.execute(select(models.Team)).scalars()}


def test_sampling_overrides_are_set_and_shown_by_team_name(client: TestClient) -> None:
    h = admin(client)
    r = client.put("/api/admin/sampling", headers=h, json={"percentage": 30, "team_overrides": {"Green": 80}})
    assert r.status_code == 200, r.text
    assert r.json() == {"percentage": 30, "team_overrides": {"Green": 80}}
    assert client.get("/api/admin/sampling", headers=h).json()["team_overrides"] == {"Green": 80}
    assert team_percentages(client) == {"Blue": None, "Green": 80}
    # The coordinator's view: Green's agent gets the override, Blue's the global share.
    repo = client.app.state.ctx.repo  # type: ignore[attr-defined]
    assert repo.screen_percentage() == 30
    (_, _, detail) = audits(client, "policy.sampling")[-1]
    assert json.loads(detail) == {
        "before": {"percentage": None, "team_overrides": {}},
        "after": {"percentage": 30.0, "team_overrides": {"Green": 80.0}},
    }
    # An older client's numeric team id still works, and is shown as the name.
    blue_id = next(t["id"] for t in client.get("/api/teams", headers=h).json() if t["name"] == "Blue")
    r = client.put(
        "/api/admin/sampling", headers=h, json={"percentage": 30, "team_overrides": {str(blue_id): 5}}
    )
    assert r.status_code == 200, r.text
    assert r.json()["team_overrides"] == {"Blue": 5}
    (_, _, detail) = audits(client, "policy.sampling")[-1]
    assert json.loads(detail)["before"] == {"percentage": 30.0, "team_overrides": {"Green": 80.0}}


def test_an_unknown_team_name_is_refused_clearly_and_audited(client: TestClient) -> None:
    h = admin(client)
    assert client.put(
        "/api/admin/sampling", headers=h, json={"percentage": 30, "team_overrides": {}}
    ).is_success
    r = client.put(
        "/api/admin/sampling", headers=h, json={"percentage": 50, "team_overrides": {"Purple": 10}}
    )
    assert r.status_code == 422, r.text
    body: dict[str, Any] = r.json()
    assert body["error"] == "unknown_team"
    assert 'no team named "Purple"' in body["message"] and "Blue, Green" in body["message"], body
    assert client.get("/api/admin/sampling", headers=h).json()["percentage"] == 30  # nothing changed
    assert [(u, o) for u, o, _ in audits(client, "policy.sampling")] == [
        ("admin", "allowed"),
        ("admin", "denied"),
    ]
    assert "Purple" in audits(client, "policy.sampling")[-1][2]


def test_the_cli_sets_and_clears_a_team_override_by_name(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(client.app.state.ctx.settings.data_dir)  # type: ignore[attr-defined]
    assert main(["--data-dir", data, "set-sampling", "--team", "Blue", "--percentage", "65"]) == 0
    assert "team Blue's screen sampling set to 65 %" in capsys.readouterr().out
    assert team_percentages(client)["Blue"] == 65
    assert main(["--data-dir", data, "set-sampling", "--team", "Nope", "--percentage", "65"]) == 1
    assert 'no team named "Nope"' in capsys.readouterr().err
    assert main(["--data-dir", data, "set-sampling", "--team", "Blue", "--clear"]) == 0
    assert team_percentages(client)["Blue"] is None
    assert main(["--data-dir", data, "set-sampling", "--clear"]) == 2  # --clear needs a team
    records = audits(client, "policy.sampling")
    assert [(u, o) for u, o, _ in records] == [("cli", "allowed"), ("cli", "denied"), ("cli", "allowed")]
    last = json.loads(records[-1][2].rsplit(" os_user=", 1)[0])
    assert last["before"]["team_overrides"] == {"Blue": 65.0} and last["after"]["team_overrides"] == {}


# -- the ACW limit -------------------------------------------------------------------------------


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
            w.writeframes(b"\0\0\0\0" * 800)

    def pause(self, at: float) -> None:
        pass

    def resume(self, at: float) -> None:
        pass

    async def stop(self, at: float) -> None:
        pass

    def media_stats(self) -> dict[str, object]:
        return {}


def acw_after_a_call(http: TestClient, tmp_path: Path, call_id: str) -> float:
    """Seconds of ACW the coordinator gives agent1's next call when it ends."""
    coordinator = http.app.state.ctx.coordinator  # type: ignore[attr-defined]
    assert http.portal is not None
    offer = CallOffer(
        call_id=call_id,
        dn="1001",
        caller="+15550100",
        callee="1001",
        source=("127.0.0.1", 5060),
        codec="PCMU",
    )
    accepted = http.portal.call(coordinator.on_call_offered, offer)
    assert isinstance(accepted, CallAccepted), accepted
    call = FakeCall(accepted.interaction_id, tmp_path / f"{call_id}.wav")
    http.portal.call(coordinator.on_call_answered, call)
    ended = time.time()
    http.portal.call(coordinator.on_call_ended, call, ended, "bye")
    deadline = coordinator._calls[accepted.interaction_id].state.acw_deadline
    assert deadline is not None
    return float(deadline - ended)


def test_the_acw_limit_is_set_validated_audited_and_used_at_the_next_call_end(
    client: TestClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = admin(client)
    default = client.app.state.ctx.settings.acw_limit_seconds  # type: ignore[attr-defined]
    assert client.get("/api/admin/acw-limit", headers=h).json() == {"seconds": default}
    r = client.post(
        "/api/auth/login",
        json={"username": "agent1", "password": PASSWORD, "client": "desktop", "dn": "1001"},
    )
    assert r.status_code == 200, r.text
    desktop = {"Authorization": f"Bearer {r.json()['token']}"}
    assert acw_after_a_call(client, tmp_path, "c-1") == pytest.approx(default)

    r = client.put("/api/admin/acw-limit", headers=h, json={"seconds": 45})
    assert r.status_code == 200 and r.json() == {"seconds": 45}, r.text
    assert acw_after_a_call(client, tmp_path, "c-2") == pytest.approx(45)
    assert (
        client.get("/api/agent/codes", headers=desktop).json()["acw_limit_seconds"] == 45
    )  # the desktop's countdown

    r = client.put("/api/admin/acw-limit", headers=h, json={"seconds": 2})
    assert r.status_code == 422 and r.json()["error"] == "invalid_acw_limit", r.text
    assert "from 5 to 14400 seconds" in r.json()["message"]
    data = str(client.app.state.ctx.settings.data_dir)  # type: ignore[attr-defined]
    assert main(["--data-dir", data, "acw-limit", "--seconds", "90"]) == 0
    assert main(["--data-dir", data, "acw-limit", "--seconds", "99999"]) == 1
    assert "the ACW limit must be from 5 to 14400" in capsys.readouterr().err
    assert main(["--data-dir", data, "acw-limit"]) == 0
    assert "ACW limit: 90 s" in capsys.readouterr().out
    assert acw_after_a_call(client, tmp_path, "c-3") == pytest.approx(90)

    records = audits(client, "policy.acw_limit")
    assert [(u, o) for u, o, _ in records] == [
        ("admin", "allowed"),
        ("admin", "denied"),
        ("cli", "allowed"),
        ("cli", "denied"),
    ]
    assert json.loads(records[0][2]) == {"before": default, "after": 45.0}
    assert json.loads(records[2][2].rsplit(" os_user=", 1)[0]) == {"before": 45.0, "after": 90.0}


# -- the pause policy ------------------------------------------------------------------------------


def test_a_team_without_pause_is_refused_by_the_server_and_audited(
    client: TestClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = admin(client)
    r = client.post(
        "/api/auth/login",
        json={"username": "agent1", "password": PASSWORD, "client": "desktop", "dn": "1001"},
    )
    assert r.status_code == 200, r.text
    desktop = {"Authorization": f"Bearer {r.json()['token']}"}
    coordinator = client.app.state.ctx.coordinator  # type: ignore[attr-defined]
    assert client.portal is not None
    offer = CallOffer(
        call_id="c-p", dn="1001", caller="+15550100", callee="1001", source=("127.0.0.1", 5060), codec="PCMU"
    )
    accepted = client.portal.call(coordinator.on_call_offered, offer)
    assert isinstance(accepted, CallAccepted), accepted
    iid = accepted.interaction_id
    client.portal.call(coordinator.on_call_answered, FakeCall(iid, tmp_path / "p.wav"))

    assert client.get("/api/admin/pause-policy", headers=h).json() == {
        "no_pause_teams": [],
        "max_seconds": None,
        "reason_required": False,
        "reason_required_teams": {},
    }
    r = client.put("/api/admin/pause-policy", headers=h, json={"no_pause_teams": ["Purple"]})
    assert r.status_code == 422 and 'no team named "Purple"' in r.json()["message"], r.text
    r = client.put("/api/admin/pause-policy", headers=h, json={"no_pause_teams": ["Blue"]})
    assert (
        r.status_code == 200 and r.json()["no_pause_teams"] == ["Blue"] and r.json()["max_seconds"] is None
    ), r.text

    r = client.post(f"/api/interactions/{iid}/pause", headers=desktop)
    assert r.status_code == 403 and r.json()["error"] == "pause_not_allowed", r.text
    assert coordinator.current_call(r_agent_id(client, "agent1")).paused is False
    refused = audits(client, "call.pause")
    assert [(u, o) for u, o, _ in refused] == [("agent1", "denied")] and "pause_not_allowed" in refused[0][2]

    data = str(client.app.state.ctx.settings.data_dir)  # type: ignore[attr-defined]
    assert main(["--data-dir", data, "pause-policy", "set", "Green", "--max-seconds", "600"]) == 0
    out = capsys.readouterr().out
    assert "no pause for: Green" in out and "maximum pause length: 600 s" in out, out
    r = client.post(f"/api/interactions/{iid}/pause", headers=desktop)
    assert r.status_code == 200, r.text  # Blue may pause again
    assert coordinator.current_call(r_agent_id(client, "agent1")).paused is True
    assert [o for _, o, _ in audits(client, "call.pause")] == ["denied", "allowed"]

    records = audits(client, "policy.pause")
    assert [(u, o) for u, o, _ in records] == [
        ("admin", "denied"),
        ("admin", "allowed"),  # the teams; the maximum stayed "none": no change, no record
        ("cli", "allowed"),
        ("cli", "allowed"),
    ]
    assert json.loads(records[1][2]) == {
        "before": {"no_pause_teams": []},
        "after": {"no_pause_teams": ["Blue"]},
    }


def r_agent_id(http: TestClient, username: str) -> int:
    with session_scope(http.app.state.ctx.sessions) as s:  # type: ignore[attr-defined]
        return int(s.execute(select(models.User.id).where(models.User.username == username)).scalar_one())


def test_a_pause_longer_than_the_maximum_is_resumed_by_the_server(client: TestClient, tmp_path: Path) -> None:
    h = admin(client)
    r = client.put("/api/admin/pause-policy", headers=h, json={"no_pause_teams": ["Green"], "max_seconds": 2})
    assert r.status_code == 422 and r.json()["error"] == "invalid_pause_limit", r.text
    assert "from 5 to 3600 seconds" in r.json()["message"]
    # The refused policy changed nothing, its valid part included.
    assert client.get("/api/admin/pause-policy", headers=h).json() == {
        "no_pause_teams": [],
        "max_seconds": None,
        "reason_required": False,
        "reason_required_teams": {},
    }
    r = client.put("/api/admin/pause-policy", headers=h, json={"no_pause_teams": [], "max_seconds": 5})
    assert r.status_code == 200 and r.json()["no_pause_teams"] == [] and r.json()["max_seconds"] == 5, r.text

    r = client.post(
        "/api/auth/login",
        json={"username": "agent1", "password": PASSWORD, "client": "desktop", "dn": "1001"},
    )
    assert r.status_code == 200, r.text
    desktop = {"Authorization": f"Bearer {r.json()['token']}"}
    coordinator = client.app.state.ctx.coordinator  # type: ignore[attr-defined]
    assert client.portal is not None
    offer = CallOffer(
        call_id="c-m", dn="1001", caller="+15550100", callee="1001", source=("127.0.0.1", 5060), codec="PCMU"
    )
    accepted = client.portal.call(coordinator.on_call_offered, offer)
    assert isinstance(accepted, CallAccepted), accepted
    iid = accepted.interaction_id
    client.portal.call(coordinator.on_call_answered, FakeCall(iid, tmp_path / "m.wav"))
    agent_id = r_agent_id(client, "agent1")

    r = client.post(f"/api/interactions/{iid}/pause", headers=desktop)
    assert r.status_code == 200 and r.json()["paused"] is True, r.text
    paused_at = r.json()["pauses"][-1]["started_at"]
    deadline = time.monotonic() + 30
    while coordinator.current_call(agent_id).paused and time.monotonic() < deadline:
        time.sleep(0.1)
    info = coordinator.current_call(agent_id)
    assert info.paused is False and info.phase == "active"
    (span,) = info.pauses
    assert span.ended_at is not None and span.ended_at - paused_at == pytest.approx(5, abs=1.5)
    records = audits(client, "policy.pause")
    # The refusal, then the saved policy: its teams part and its maximum, each with before/after.
    assert [(u, o) for u, o, _ in records] == [
        ("admin", "denied"),
        ("admin", "allowed"),
        ("admin", "allowed"),
    ]
    assert json.loads(records[2][2]) == {"before": {"max_seconds": None}, "after": {"max_seconds": 5.0}}
