"""Users and teams managed by an admin through the API and the CLI, in process (SIP off): every
change validated and audited with before/after, every refusal audited and changing nothing, the
same refusal with the same sentence from both doors; deactivation ends the user's sessions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from server.api.app import create_app
from server.cli import main
from server.services.user_admin import admin_guard
from server.settings import load_settings
from server.store import models
from server.store.db import session_scope
from server.store.users import create_user, ensure_team

PASSWORD = "correct-horse-battery"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[TestClient]:
    settings = load_settings(None, data_dir=tmp_path / "data", sip_enabled=False)
    app = create_app(settings)
    with TestClient(app) as c, session_scope(app.state.ctx.sessions) as s:
        create_user(s, "admin", PASSWORD, "admin", full_name="Ada Admin")
        create_user(s, "sup", PASSWORD, "supervisor", full_name="Sam Sup", supervises=["Blue"])
        create_user(s, "ann", PASSWORD, "agent", full_name="Ann Agent", team="Blue")
        create_user(s, "rex", PASSWORD, "agent", full_name="Rex Red", team="Red")
        ensure_team(s, "Green")
        s.commit()
        yield c


def login(http: TestClient, user: str, **extra: object) -> dict[str, str]:
    r = http.post("/api/auth/login", json={"username": user, "password": PASSWORD, **extra})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def audits(http: TestClient, action: str) -> list[tuple[str, str, str, str]]:
    with session_scope(http.app.state.ctx.sessions) as s:  # type: ignore[attr-defined]
        rows = s.query(models.AuditRecord).filter_by(action=action).order_by(models.AuditRecord.seq).all()
        return [(r.username, r.target_id, r.outcome, r.detail) for r in rows]


def user_row(http: TestClient, admin: dict[str, str], username: str) -> dict[str, object]:
    rows = http.get("/api/admin/users", params={"q": username}, headers=admin).json()
    return next(u for u in rows if u["username"] == username)


def test_admin_changes_role_team_supervision_and_dn_audited_with_before_and_after(env: TestClient) -> None:
    admin = login(env, "admin")
    r = env.patch(
        "/api/admin/users/ann",
        json={"team": "Green", "full_time_dn": " 2001 ", "full_name": "Ann B."},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "username": "ann",
        "full_name": "Ann B.",
        "role": "agent",
        "team": "Green",
        "supervises": [],
        "active": True,
        "full_time_dn": "2001",
    }
    # Promoted to supervisor: the full-time DN (agents only) goes, shown in the audit record.
    r = env.patch(
        "/api/admin/users/ann", json={"role": "supervisor", "supervises": ["Red", "Blue"]}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert r.json()["supervises"] == ["Blue", "Red"] and r.json()["full_time_dn"] is None
    # Back to agent without naming supervised teams: they go too.
    r = env.patch("/api/admin/users/ann", json={"role": "agent"}, headers=admin)
    assert r.json()["supervises"] == [] and r.json()["role"] == "agent"
    records = audits(env, "user.update")
    assert [(u, t, o) for u, t, o, _ in records] == [("admin", "ann", "allowed")] * 3
    details = [json.loads(d) for *_, d in records]
    assert details[0] == {
        "before": {"full_name": "Ann Agent", "full_time_dn": None, "team": "Blue"},
        "after": {"full_name": "Ann B.", "full_time_dn": "2001", "team": "Green"},
    }
    assert details[1] == {
        "before": {"full_time_dn": "2001", "role": "agent", "supervises": []},
        "after": {"full_time_dn": None, "role": "supervisor", "supervises": ["Blue", "Red"]},
    }
    assert details[2]["after"] == {"role": "agent", "supervises": []}
    # The supervisor now sees the teams he was given (his scope follows the table).
    assert env.get("/api/admin/teams", headers=admin).json()[0] == {
        "name": "Blue",
        "members": 0,
        "supervisors": ["sup"],
    }


@pytest.mark.parametrize(
    ("username", "body", "status", "code", "message"),
    [
        (
            "ann",
            {"team": "Purple"},
            422,
            "unknown_team",
            'there is no team named "Purple" (teams: Blue, Green, Red)',
        ),
        (
            "ann",
            {"supervises": ["Red"]},
            422,
            "cannot_supervise",
            "only a supervisor, evaluator or compliance officer",
        ),
        (
            "sup",
            {"full_time_dn": "2001"},
            422,
            "not_an_agent",
            "only an agent has a full-time DN, not a supervisor",
        ),
        ("ann", {"full_time_dn": "12 34!"}, 422, "invalid_dn", ""),
        ("ann", {"role": "boss"}, 422, "invalid_role", "role must be one of agent, supervisor"),
        ("ann", {"full_name": "x" * 201}, 422, "invalid_full_name", "a full name is at most 200 characters"),
        ("admin", {"active": False}, 409, "own_admin", "you cannot deactivate yourself"),
        ("admin", {"role": "supervisor"}, 409, "own_admin", "you cannot deactivate yourself"),
        ("nobody", {"role": "agent"}, 404, "unknown_user", "no user named 'nobody'"),
    ],
)
def test_refusals_are_clear_audited_and_change_nothing(
    env: TestClient, username: str, body: dict[str, object], status: int, code: str, message: str
) -> None:
    admin = login(env, "admin")
    before = env.get("/api/admin/users", headers=admin).json()
    r = env.patch(f"/api/admin/users/{username}", json={"full_name": "Changed?", **body}, headers=admin)
    assert r.status_code == status, r.text
    assert r.json()["error"] == code and r.json()["message"].startswith(message)
    assert env.get("/api/admin/users", headers=admin).json() == before
    assert [(u, t, o) for u, t, o, _ in audits(env, "user.update")] == [("admin", username, "denied")]
    assert audits(env, "user.update")[0][3].startswith(f"{code}: ")


def test_a_full_time_dn_taken_or_in_use_is_refused(env: TestClient) -> None:
    admin = login(env, "admin")
    assert env.patch("/api/admin/users/rex", json={"full_time_dn": "3001"}, headers=admin).status_code == 200
    r = env.patch("/api/admin/users/ann", json={"full_time_dn": "3001"}, headers=admin)
    assert (r.status_code, r.json()["message"]) == (409, "DN 3001 is already recorded full-time for rex")
    login(env, "rex", client="desktop", dn="4001")
    r = env.patch("/api/admin/users/ann", json={"full_time_dn": "4001"}, headers=admin)
    assert (r.status_code, r.json()["message"]) == (409, "DN 4001 is in use: agent rex is logged in on it")


def test_the_last_admin_cannot_be_demoted_by_another_and_two_admins_can(env: TestClient) -> None:
    admin = login(env, "admin")
    r = env.patch("/api/admin/users/sup", json={"role": "admin", "supervises": []}, headers=admin)
    assert r.status_code == 200, r.text
    sup = login(env, "sup")
    assert env.patch("/api/admin/users/admin", json={"role": "compliance"}, headers=sup).status_code == 200
    # Now "sup" is the only admin; "admin" (no longer one) is refused by role, not by this rule.
    assert env.patch("/api/admin/users/sup", json={"active": False}, headers=admin).status_code == 403
    assert (
        admin_guard(
            is_self=False,
            was_admin=True,
            stays_admin=False,
            was_active=True,
            stays_active=True,
            active_admins=1,
        )
        == "this is the last active admin: make another user an admin first"
    )
    assert (
        admin_guard(
            is_self=False,
            was_admin=True,
            stays_admin=True,
            was_active=True,
            stays_active=False,
            active_admins=2,
        )
        is None
    )
    assert (
        admin_guard(
            is_self=False,
            was_admin=True,
            stays_admin=False,
            was_active=False,
            stays_active=False,
            active_admins=1,
        )
        is None
    )  # an inactive admin does not count and locks nobody out


def test_deactivation_ends_logins_tokens_and_the_live_dn(env: TestClient) -> None:
    admin = login(env, "admin")
    desktop = login(env, "ann", client="desktop", dn="2002")
    assert env.get("/api/me", headers=desktop).status_code == 200
    r = env.patch("/api/admin/users/ann", json={"active": False}, headers=admin)
    assert r.status_code == 200 and r.json()["active"] is False
    assert env.get("/api/me", headers=desktop).status_code == 401  # token revoked
    r = env.post("/api/auth/login", json={"username": "ann", "password": PASSWORD})
    assert r.status_code == 401
    with session_scope(env.app.state.ctx.sessions) as s:  # type: ignore[attr-defined]
        live = s.query(models.DnBinding).filter(models.DnBinding.released_at.is_(None)).all()
        assert live == []
        ann_id = s.query(models.User.id).filter_by(username="ann").scalar()
        tokens = s.query(models.ApiToken).filter_by(user_id=ann_id).all()
        assert tokens and all(t.revoked_at is not None for t in tokens)
    assert [
        u["username"] for u in env.get("/api/admin/users", params={"active": "false"}, headers=admin).json()
    ] == ["ann"]
    # Another agent may log in on the released DN at once.
    login(env, "rex", client="desktop", dn="2002")


def test_listing_filters_by_role_team_and_text(env: TestClient) -> None:
    admin = login(env, "admin")

    def names(**params: str) -> list[str]:
        r = env.get("/api/admin/users", params=params, headers=admin)
        assert r.status_code == 200, r.text
        return [u["username"] for u in r.json()]

    assert names() == ["admin", "ann", "rex", "sup"]
    assert names(role="agent") == ["ann", "rex"]
    assert names(team="blue") == ["ann"]
    assert names(q="RED") == ["rex"]
    assert names(role="agent", q="ann") == ["ann"]
    r = env.get("/api/admin/users", params={"role": "boss"}, headers=admin)
    assert (r.status_code, r.json()["error"]) == (422, "invalid_role")


def test_teams_created_and_renamed_unique_regardless_of_case(env: TestClient) -> None:
    admin = login(env, "admin")
    with session_scope(env.app.state.ctx.sessions) as s:  # type: ignore[attr-defined]
        s.add(
            models.EnrolmentToken(
                token_hash="x" * 64,
                scope="team:Blue",
                created_by="admin",
                created_at=0.0,
                expires_at=1e12,
                max_uses=1,
            )
        )
    r = env.post("/api/admin/teams", json={"name": " Yellow "}, headers=admin)
    assert (r.status_code, r.json()) == (201, {"name": "Yellow"})
    r = env.post("/api/admin/teams", json={"name": "blue"}, headers=admin)
    assert (r.status_code, r.json()["message"]) == (409, 'there is already a team named "Blue"')
    r = env.post("/api/admin/teams", json={"name": "a,b"}, headers=admin)
    assert (r.status_code, r.json()["error"]) == (422, "invalid_team_name")
    r = env.patch("/api/admin/teams/Blue", json={"name": "RED"}, headers=admin)
    assert (r.status_code, r.json()["message"]) == (409, 'there is already a team named "Red"')
    r = env.patch("/api/admin/teams/blue", json={"name": "Navy"}, headers=admin)
    assert (r.status_code, r.json()) == (200, {"name": "Navy"})
    assert user_row(env, admin, "ann")["team"] == "Navy"
    assert user_row(env, admin, "sup")["supervises"] == ["Navy"]
    with session_scope(env.app.state.ctx.sessions) as s:  # type: ignore[attr-defined]
        assert s.query(models.EnrolmentToken).one().scope == "team:Navy"
    assert [(o, json.loads(d)) for _, _, o, d in audits(env, "team.rename") if o == "allowed"] == [
        ("allowed", {"before": "Blue", "after": "Navy", "recorder_scopes_renamed": 1})
    ]
    assert [o for _, _, o, _ in audits(env, "team.create")] == ["allowed", "denied", "denied"]
    assert [t["name"] for t in env.get("/api/admin/teams", headers=admin).json()] == [
        "Green",
        "Navy",
        "Red",
        "Yellow",
    ]


def test_cli_and_api_refuse_the_same_change_with_the_same_sentence(
    env: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = login(env, "admin")
    data_dir = str(env.app.state.ctx.settings.data_dir)  # type: ignore[attr-defined]
    r = env.patch("/api/admin/users/ann", json={"supervises": ["Red"]}, headers=admin)
    api_message = r.json()["message"]
    capsys.readouterr()
    assert main(["--data-dir", data_dir, "user-update", "ann", "--supervises", "Red"]) == 1
    assert capsys.readouterr().err.strip() == f"error: {api_message}"
    r = env.post("/api/admin/teams", json={"name": "GREEN"}, headers=admin)
    assert main(["--data-dir", data_dir, "team-create", "GREEN"]) == 1
    assert capsys.readouterr().err.strip() == f"error: {r.json()['message']}"
    # The CLI is no user of its own: it is the one door that can meet the last-admin rule.
    assert main(["--data-dir", data_dir, "user-update", "admin", "--role", "agent"]) == 1
    assert (
        capsys.readouterr().err.strip()
        == "error: this is the last active admin: make another user an admin first"
    )
    # And the same change succeeds from the CLI, audited as "cli" with before/after.
    args = ["--data-dir", data_dir, "user-update", "ann", "--team", "Red", "--full-time-dn", "2005"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["team"] == "Red"
    assert main(["--data-dir", data_dir, "team-rename", "Green", "Olive"]) == 0
    assert main(["--data-dir", data_dir, "user-list", "--team", "red"]) == 0
    assert [u["username"] for u in json.loads(capsys.readouterr().out.splitlines()[-1])] == ["ann", "rex"]
    records = audits(env, "user.update")
    assert [(u, o) for u, _, o, _ in records] == [
        ("admin", "denied"),
        ("cli", "denied"),
        ("cli", "denied"),
        ("cli", "allowed"),
    ]
    assert json.loads(records[3][3].split(" os_user=")[0])["after"] == {"full_time_dn": "2005", "team": "Red"}
