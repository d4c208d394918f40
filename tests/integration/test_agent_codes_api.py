"""Agent states, reason/disposition codes and the ACW wrap-up through the API and the CLI, in
process (SIP off): role checks, validation with clear codes, audit with before/after, the
supervisors' list scoped to their teams."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from server.api.app import create_app
from server.cli import main
from server.services.agent_states import Choice, effective
from server.settings import load_settings
from server.store import models
from server.store.db import session_scope
from server.store.users import create_user
from tandem_protocol.events import CallInfo, Phase, ScreenState, VoiceState

PASSWORD = "correct-horse-battery"
T0 = 1_780_000_000.0


@pytest.fixture
def env(tmp_path: Path) -> Iterator[TestClient]:
    settings = load_settings(None, data_dir=tmp_path / "data", sip_enabled=False)
    app = create_app(settings)
    with TestClient(app) as c, session_scope(app.state.ctx.sessions) as s:
        create_user(s, "admin", PASSWORD, "admin")
        create_user(s, "sup", PASSWORD, "supervisor", supervises=["Blue"])
        create_user(s, "ann", PASSWORD, "agent", team="Blue")
        create_user(s, "rex", PASSWORD, "agent", team="Red")
        s.flush()
        ann = s.query(models.User).filter_by(username="ann").one()
        rex = s.query(models.User).filter_by(username="rex").one()
        for iid, agent in (("call-ann", ann.id), ("call-rex", rex.id)):
            s.add(
                models.Interaction(
                    id=iid,
                    call_id=iid,
                    dn="2001",
                    agent_id=agent,
                    caller="+15550100",
                    callee="2001",
                    state="done",
                    started_at=T0,
                    screen_decision=False,
                    screen_percentage=0.0,
                    voice_state="stopped",
                    screen_state="off",
                )
            )
        s.commit()
        yield c


def login(http: TestClient, user: str, **extra: object) -> dict[str, str]:
    r = http.post("/api/auth/login", json={"username": user, "password": PASSWORD, **extra})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def audits(http: TestClient, action: str) -> list[models.AuditRecord]:
    with session_scope(http.app.state.ctx.sessions) as s:  # type: ignore[attr-defined]
        rows = s.query(models.AuditRecord).filter_by(action=action).order_by(models.AuditRecord.seq).all()
        s.expunge_all()
        return rows


def test_admin_manages_codes_validated_and_audited_with_before_and_after(env: TestClient) -> None:
    admin = login(env, "admin")
    r = env.put("/api/admin/codes/reason/LUNCH", json={"label": "Lunch"}, headers=admin)
    assert r.status_code == 200, r.text
    r = env.put("/api/admin/codes/reason/LUNCH", json={"label": "Lunch break", "active": True}, headers=admin)
    assert r.json() == {"kind": "reason", "code": "LUNCH", "label": "Lunch break", "active": True}
    for path, body, code in (
        ("/api/admin/codes/reason/has space", {"label": "x"}, "invalid_code"),
        ("/api/admin/codes/mood/HAPPY", {"label": "x"}, "invalid_kind"),
        ("/api/admin/codes/disposition/SALE", {"label": "  "}, "invalid_label"),
        ("/api/admin/codes/disposition/SALE", {"label": "x" * 81}, "invalid_label"),
    ):
        r = env.put(path, json=body, headers=admin)
        assert r.status_code == 422 and r.json()["error"] == code, (path, r.text)
    changes = audits(env, "policy.agent_codes")
    assert [c.outcome for c in changes] == ["allowed", "allowed", "denied", "denied", "denied", "denied"]
    detail = json.loads(changes[1].detail)
    assert detail["before"]["label"] == "Lunch" and detail["after"]["label"] == "Lunch break"
    # Only an admin: a supervisor and an agent are refused, and the refusal is audited.
    for user in ("sup", "ann"):
        assert (
            env.put("/api/admin/codes/reason/X", json={"label": "x"}, headers=login(env, user)).status_code
            == 403
        )
        assert env.get("/api/admin/codes", headers=login(env, user)).status_code == 403
    listed = env.get("/api/admin/codes", headers=admin).json()
    assert listed == {
        "codes": [{"kind": "reason", "code": "LUNCH", "label": "Lunch break", "active": True}],
        "disposition_required": False,
    }


def test_agent_chooses_ready_or_not_ready_with_an_active_reason(env: TestClient) -> None:
    admin = login(env, "admin")
    env.put("/api/admin/codes/reason/LUNCH", json={"label": "Lunch"}, headers=admin)
    env.put("/api/admin/codes/reason/OLD", json={"label": "Old", "active": False}, headers=admin)
    ann = login(env, "ann", client="desktop", dn="2001")
    assert env.get("/api/agent/state", headers=ann).json()["state"] == "ready"
    codes = env.get("/api/agent/codes", headers=ann).json()
    assert [c["code"] for c in codes["reason_codes"]] == ["LUNCH"]  # the inactive one not offered
    assert codes["acw_limit_seconds"] > 0 and codes["may_play_own_recordings"] is False
    env.put("/api/admin/agent-playback", json={"teams": ["Blue"]}, headers=admin)
    assert env.get("/api/agent/codes", headers=ann).json()["may_play_own_recordings"] is True
    for body, code in (
        ({"state": "not_ready"}, "reason_required"),
        ({"state": "not_ready", "reason_code": "OLD"}, "unknown_reason"),
        ({"state": "not_ready", "reason_code": "NOPE"}, "unknown_reason"),
        ({"state": "ready", "reason_code": "LUNCH"}, "reason_not_allowed"),
        ({"state": "on_call"}, "invalid_state"),
    ):
        r = env.put("/api/agent/state", json=body, headers=ann)
        assert r.status_code == 422 and r.json()["error"] == code, r.text
    r = env.put("/api/agent/state", json={"state": "not_ready", "reason_code": "LUNCH"}, headers=ann)
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["reason_code"], r.json()["reason_label"]) == (
        "not_ready",
        "LUNCH",
        "Lunch",
    )
    # A supervisor may not set an agent state.
    assert env.put("/api/agent/state", json={"state": "ready"}, headers=login(env, "sup")).status_code == 403
    changes = audits(env, "agent.state")
    assert [c.outcome for c in changes] == ["denied"] * 5 + ["allowed"]
    assert json.loads(changes[-1].detail)["after"] == {"state": "not_ready", "reason": "LUNCH"}


def test_supervisors_see_their_teams_agents_with_state_since_and_reason(env: TestClient) -> None:
    env.put("/api/admin/codes/reason/BREAK", json={"label": "Break"}, headers=login(env, "admin"))
    ann = login(env, "ann", client="desktop", dn="2001")
    before = time.time()
    env.put("/api/agent/state", json={"state": "not_ready", "reason_code": "BREAK"}, headers=ann)
    rows = env.get("/api/agent-states", headers=login(env, "sup")).json()
    assert [(r["username"], r["state"], r["reason_label"], r["dn"]) for r in rows] == [
        ("ann", "not_ready", "Break", "2001")
    ]  # rex is in Red: not this supervisor's
    assert rows[0]["since"] >= before - 1
    everyone = env.get("/api/agent-states", headers=login(env, "admin")).json()
    assert [(r["username"], r["state"]) for r in everyone] == [("ann", "not_ready"), ("rex", "logged_out")]
    assert env.get("/api/agent-states", headers=login(env, "rex")).status_code == 403
    # Logging out ends the state; the next login starts Ready (the old choice is forgotten).
    assert env.post("/api/auth/logout", headers=ann).status_code in (200, 204)
    assert env.get("/api/agent-states", headers=login(env, "sup")).json()[0]["state"] == "logged_out"
    ann = login(env, "ann", client="desktop", dn="2001")
    assert env.get("/api/agent/state", headers=ann).json()["state"] == "ready"


def test_wrapup_stores_disposition_and_notes_on_the_interaction(env: TestClient) -> None:
    admin = login(env, "admin")
    env.put("/api/admin/codes/disposition/SALE", json={"label": "Sale"}, headers=admin)
    r = env.put("/api/admin/codes/disposition-required", json={"required": True}, headers=admin)
    assert r.json() == {"disposition_required": True}
    ann = login(env, "ann", client="desktop", dn="2001")
    r = env.post("/api/interactions/call-ann/wrapup", json={"notes": "called back"}, headers=ann)
    assert r.status_code == 422 and r.json()["error"] == "disposition_required"
    r = env.post("/api/interactions/call-ann/wrapup", json={"disposition": "NOPE"}, headers=ann)
    assert r.status_code == 422 and r.json()["error"] == "unknown_disposition"
    r = env.post("/api/interactions/call-rex/wrapup", json={"disposition": "SALE"}, headers=ann)
    assert r.status_code == 403
    r = env.post(
        "/api/interactions/call-ann/wrapup", json={"disposition": "SALE", "notes": "x" * 4001}, headers=ann
    )
    assert r.status_code == 422 and r.json()["error"] == "notes_too_long"
    r = env.post(
        "/api/interactions/call-ann/wrapup",
        json={"disposition": "SALE", "notes": "wants a callback"},
        headers=ann,
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "wrapup": {"interaction_id": "call-ann", "disposition_code": "SALE", "notes": "wants a callback"},
        "call": None,  # no live call any more: stored all the same
    }
    with session_scope(env.app.state.ctx.sessions) as s:  # type: ignore[attr-defined]
        row = s.get(models.Interaction, "call-ann")
        assert row is not None and (row.disposition_code, row.notes) == ("SALE", "wants a callback")
    changes = audits(env, "interaction.wrapup")
    assert [c.outcome for c in changes] == ["denied", "denied", "denied", "denied", "allowed"]
    assert json.loads(changes[-1].detail)["before"] == {"disposition": None, "notes": ""}


def test_codes_from_the_cli_same_rules_audited_as_cli(
    env: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = str(env.app.state.ctx.settings.data_dir)  # type: ignore[attr-defined]
    assert main(["--data-dir", data_dir, "codes", "set", "disposition", "SALE", "Sale"]) == 0
    assert main(["--data-dir", data_dir, "codes", "set", "reason", "bad code", "x"]) == 1
    assert main(["--data-dir", data_dir, "codes", "require-disposition", "on"]) == 0
    assert main(["--data-dir", data_dir, "codes", "show"]) == 0
    shown = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert shown["disposition_required"] is True and [c["code"] for c in shown["codes"]] == ["SALE"]
    assert [(c.username, c.outcome) for c in audits(env, "policy.agent_codes")] == [
        ("cli", "allowed"),
        ("cli", "denied"),
        ("cli", "allowed"),
    ]


def _call(phase: Phase) -> CallInfo:
    return CallInfo(
        "i",
        "c",
        "2001",
        "+1555",
        "2001",
        phase,
        VoiceState.RECORDING,
        ScreenState.OFF,
        False,
        T0,
        answered_at=T0 + 2,
        ended_at=T0 + 60 if phase is Phase.ACW else None,
    )


@pytest.mark.parametrize(
    ("login_at", "choice", "phase", "expected"),
    [
        (None, Choice("not_ready", "LUNCH", T0), None, ("logged_out", None, None)),
        (T0, None, None, ("ready", T0, None)),
        (T0, Choice("not_ready", "LUNCH", T0 - 5), None, ("ready", T0, None)),  # before this login
        (T0, Choice("not_ready", "LUNCH", T0 + 5), None, ("not_ready", T0 + 5, "LUNCH")),
        (T0, Choice("not_ready", "LUNCH", T0 + 5), Phase.ACTIVE, ("on_call", T0 + 2, None)),
        (T0, Choice("ready", None, T0 + 5), Phase.ACW, ("acw", T0 + 60, None)),
        (T0, Choice("ready", None, T0 + 5), Phase.DONE, ("ready", T0 + 5, None)),
    ],
)
def test_effective_state_from_login_choice_and_call(
    login_at: float | None, choice: Choice | None, phase: Phase | None, expected: tuple[object, ...]
) -> None:
    assert effective(login_at, choice, None if phase is None else _call(phase)) == expected
