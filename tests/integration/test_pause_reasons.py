"""Pause reasons (issue 13 item 2, issue 14 item 2): the admin's rule (a default and per-team
exceptions) set from the API and the CLI, validated and audited with before/after; codes of kind
"pause"; the agent's reason stored on his pause span with its label at the time, given with the
pause or afterwards; a missing or wrong reason never holds the pause up (the reason request is
what is refused, and audited); the supervisor's timeline shows who paused and why."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from server.cli import main
from server.sip.listener import CallAccepted, CallOffer
from server.store import models
from server.store.db import session_scope
from tests.integration.test_admin_policies import PASSWORD, FakeCall, admin, audits, client, r_agent_id

__all__ = ["client"]  # the fixture, used by name


def desktop_login(http: TestClient, username: str = "agent1", dn: str = "1001") -> dict[str, str]:
    r = http.post(
        "/api/auth/login", json={"username": username, "password": PASSWORD, "client": "desktop", "dn": dn}
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def live_call(http: TestClient, tmp_path: Path, call_id: str) -> str:
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
    http.portal.call(
        coordinator.on_call_answered, FakeCall(accepted.interaction_id, tmp_path / f"{call_id}.wav")
    )
    return accepted.interaction_id


def spans(http: TestClient, iid: str) -> list[tuple[str, str | None, str, str]]:
    with session_scope(http.app.state.ctx.sessions) as s:  # type: ignore[attr-defined]
        rows = s.execute(
            select(models.PauseSpan)
            .where(models.PauseSpan.interaction_id == iid)
            .order_by(models.PauseSpan.started_at)
        ).scalars()
        return [(r.reason, r.reason_code, r.reason_label, r.by_username) for r in rows]


def test_the_reason_rule_is_set_by_team_from_api_and_cli_validated_and_audited(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    h = admin(client)
    r = client.put(
        "/api/admin/pause-policy",
        headers=h,
        json={"no_pause_teams": [], "reason_required": True, "reason_required_teams": {"Purple": False}},
    )
    assert r.status_code == 422 and 'no team named "Purple"' in r.json()["message"], r.text
    assert client.get("/api/admin/pause-policy", headers=h).json()["reason_required"] is False
    r = client.put(
        "/api/admin/pause-policy",
        headers=h,
        json={"no_pause_teams": [], "reason_required": True, "reason_required_teams": {"Green": False}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["reason_required"] is True and r.json()["reason_required_teams"] == {"Green": False}
    # A PUT without the reason fields (the older page) leaves the rule as it is.
    r = client.put("/api/admin/pause-policy", headers=h, json={"no_pause_teams": []})
    assert r.json()["reason_required"] is True and r.json()["reason_required_teams"] == {"Green": False}

    # Each agent's desktop learns its own team's rule, and the pause codes.
    r = client.put("/api/admin/codes/pause/CARD", headers=h, json={"label": "Card payment"})
    assert r.status_code == 200, r.text
    blue = client.get("/api/agent/codes", headers=desktop_login(client)).json()
    green = client.get("/api/agent/codes", headers=desktop_login(client, "agent2", "1002")).json()
    assert blue["pause_reason_required"] is True and green["pause_reason_required"] is False
    assert blue["pause_codes"] == [{"kind": "pause", "code": "CARD", "label": "Card payment", "active": True}]

    data = str(client.app.state.ctx.settings.data_dir)  # type: ignore[attr-defined]
    assert main(["--data-dir", data, "pause-policy", "reason", "--required", "off", "--team", "Blue=on"]) == 0
    out = capsys.readouterr().out
    assert "pause reason required: no (Blue: yes, Green: no)" in out, out

    records = [
        (u, o, d) for u, o, d in audits(client, "policy.pause") if "reason_required" in d or "Purple" in d
    ]
    assert [(u, o) for u, o, _ in records] == [("admin", "denied"), ("admin", "allowed"), ("cli", "allowed")]
    assert json.loads(records[2][2].split(" os_user=")[0]) == {  # the CLI names the OS account
        "before": {"reason_required": True, "reason_required_teams": {"Green": False}},
        "after": {"reason_required": False, "reason_required_teams": {"Blue": True, "Green": False}},
    }


def test_a_reason_given_with_the_pause_or_after_it_is_stored_and_shown_on_the_timeline(
    client: TestClient, tmp_path: Path
) -> None:
    h = admin(client)
    for code, label in (("CARD", "Card payment"), ("HEALTH", "Health data")):
        assert (
            client.put(f"/api/admin/codes/pause/{code}", headers=h, json={"label": label}).status_code == 200
        )
    assert client.put(
        "/api/admin/pause-policy", headers=h, json={"no_pause_teams": [], "reason_required": True}
    )
    desktop = desktop_login(client)
    iid = live_call(client, tmp_path, "c-r")
    coordinator = client.app.state.ctx.coordinator  # type: ignore[attr-defined]
    agent_id = r_agent_id(client, "agent1")

    # With the pause: stored on the span, with its label as it was.
    r = client.post(f"/api/interactions/{iid}/pause", headers=desktop, json={"reason": "CARD"})
    assert r.status_code == 200 and r.json()["paused"] is True, r.text
    assert r.json()["pause_reason"]["code"] == "CARD" and r.json()["pause_reason"]["label"] == "Card payment"
    assert client.post(f"/api/interactions/{iid}/resume", headers=desktop).status_code == 200

    # Required, yet none given (the hotkey's pause): the pause happens at once all the same.
    r = client.post(f"/api/interactions/{iid}/pause", headers=desktop)
    assert r.status_code == 200 and r.json()["paused"] is True, r.text
    assert coordinator.current_call(agent_id).paused is True
    # A wrong reason with the pause: paused, and told why the reason was not taken.
    assert client.post(f"/api/interactions/{iid}/resume", headers=desktop).status_code == 200
    r = client.post(f"/api/interactions/{iid}/pause", headers=desktop, json={"reason": "NOPE"})
    assert r.status_code == 200 and r.json()["paused"] is True, r.text
    assert r.json()["pause_reason_error"]["code"] == "unknown_pause_reason", r.json()
    # A malformed body cannot hold the pause up either (it is read after the pause).
    assert client.post(f"/api/interactions/{iid}/resume", headers=desktop).status_code == 200
    r = client.post(f"/api/interactions/{iid}/pause", headers=desktop, content=b"{not json")
    assert r.status_code == 200 and r.json()["paused"] is True, r.text

    # Afterwards: the reason request is what is refused (clearly, audited) when empty or unknown.
    r = client.post(f"/api/interactions/{iid}/pause-reason", headers=desktop, json={"reason": ""})
    assert r.status_code == 422 and r.json()["error"] == "pause_reason_required", r.text
    assert "the admin requires a reason" in r.json()["message"]
    r = client.post(f"/api/interactions/{iid}/pause-reason", headers=desktop, json={"reason": "NOPE"})
    assert r.status_code == 422 and "'NOPE' is not a pause reason in use" in r.json()["message"], r.text
    r = client.post(f"/api/interactions/{iid}/pause-reason", headers=desktop, json={"reason": "HEALTH"})
    assert r.status_code == 200 and r.json()["label"] == "Health data", r.text
    # Another agent cannot name a reason for this call.
    r = client.post(
        f"/api/interactions/{iid}/pause-reason",
        headers=desktop_login(client, "agent2", "1002"),
        json={"reason": "CARD"},
    )
    assert r.status_code == 403, r.text

    # A later relabel does not rewrite what was given then.
    client.put("/api/admin/codes/pause/CARD", headers=h, json={"label": "Payment (renamed)"})
    assert spans(client, iid) == [
        ("agent", "CARD", "Card payment", "agent1"),
        ("agent", None, "", "agent1"),
        ("agent", None, "", "agent1"),
        ("agent", "HEALTH", "Health data", "agent1"),
    ]
    outcomes = [(u, o, d) for u, o, d in audits(client, "call.pause_reason")]
    assert [(u, o) for u, o, _ in outcomes] == [
        ("agent1", "allowed"),
        ("agent1", "denied"),  # the wrong reason sent with the pause
        ("agent1", "denied"),
        ("agent1", "denied"),
        ("agent1", "allowed"),
        ("agent2", "denied"),
    ]
    assert json.loads(outcomes[4][2])["after"] == {"code": "HEALTH", "label": "Health data"}

    # The supervisor's timeline: who paused and why.
    timeline = client.get(f"/api/interactions/{iid}/timeline", headers=h).json()
    pauses = [s for s in timeline["spans"] if s["kind"] == "pause"]
    assert [(s["who"], s["reason"], s["why"]) for s in pauses] == [
        ("agent1", "Card payment", "paused by the agent: Card payment"),
        ("agent1", "", "paused by the agent"),
        ("agent1", "", "paused by the agent"),
        ("agent1", "Health data", "paused by the agent: Health data"),
    ]


def test_the_desktop_client_pauses_then_sends_the_reason(client: TestClient, tmp_path: Path) -> None:
    """agent_app's own REST client against the real routes: the pause, then its reason, in the
    order the desktop's single worker sends them; the codes it reads for the chooser."""
    from agent_app.api_client import ApiClient
    from agent_app.errors import ApiError
    from agent_app.model import CodeOption, parse_codes

    h = admin(client)
    assert (
        client.put("/api/admin/codes/pause/CARD", headers=h, json={"label": "Card payment"}).status_code
        == 200
    )

    def forward(request: httpx.Request) -> httpx.Response:  # the desktop's httpx onto the app
        answer = client.request(
            request.method,
            request.url.raw_path.decode(),
            headers=dict(request.headers),
            content=request.content,
        )
        return httpx.Response(answer.status_code, headers=dict(answer.headers), content=answer.content)

    desktop = ApiClient("http://testserver", transport=httpx.MockTransport(forward))
    desktop.login("agent1", PASSWORD, "1001")
    iid = live_call(client, tmp_path, "c-d")
    codes = parse_codes(desktop.agent_codes())
    assert codes.pause_reasons == (CodeOption("CARD", "Card payment"),) and not codes.pause_reason_required
    assert desktop.pause(iid).paused
    assert desktop.pause_reason(iid, "CARD")["label"] == "Card payment"
    with pytest.raises(ApiError, match="is not a pause reason in use"):
        desktop.pause_reason(iid, "LUNCH")
    assert spans(client, iid) == [("agent", "CARD", "Card payment", "agent1")]
