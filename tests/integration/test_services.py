"""The services behind web, API and CLI (server/services/): DN binding, full-time DNs, sampling,
users and the password policy — each rule checked once, audited the same from every door."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.api.app import create_app
from server.calls.session_records import SessionRecords
from server.errors import Conflict, InvalidInput
from server.services import desktop_dn, full_time_dn, sampling, users
from server.services.actor import Actor
from server.settings import load_settings
from server.store import models
from server.store.db import session_scope
from server.store.users import create_user

PASSWORD = "correct-horse-battery"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(load_settings(None, data_dir=tmp_path / "data", sip_enabled=False))
    with session_scope(app.state.ctx.sessions) as s:
        create_user(s, "admin", PASSWORD, "admin")
        for n in (1, 2, 3):
            create_user(s, f"agent{n}", PASSWORD, "agent", team="Blue")
    with TestClient(app) as c:
        yield c


def factory(client: TestClient) -> sessionmaker[Session]:
    app: Any = client.app  # the FastAPI app; TestClient types it as any ASGI app
    return cast("sessionmaker[Session]", app.state.ctx.sessions)


def login(http: TestClient, user: str, password: str = PASSWORD, **extra: Any) -> Any:  # a Response
    return http.post("/api/auth/login", json={"username": user, "password": password, **extra})


def admin_headers(client: TestClient) -> dict[str, str]:
    r = login(client, "admin")
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def audit_rows(client: TestClient, action: str) -> list[models.AuditRecord]:
    with session_scope(factory(client)) as s:
        query = select(models.AuditRecord).where(models.AuditRecord.action == action)
        return list(s.execute(query.order_by(models.AuditRecord.id)).scalars())


def active_bindings(client: TestClient) -> list[tuple[str, str]]:
    with session_scope(factory(client)) as s:
        rows = s.execute(
            select(models.DnBinding.dn, models.User.username)
            .join(models.User, models.User.id == models.DnBinding.user_id)
            .where(models.DnBinding.released_at.is_(None))
        ).all()
        return sorted((dn, name) for dn, name in rows)


# -- DN binding at the desktop login ------------------------------------------------------------


def test_padded_dn_of_another_agent_is_refused_and_stored_normalised(client: TestClient) -> None:
    assert login(client, "agent1", client="desktop", dn="1001").status_code == 200
    r = login(client, "agent2", client="desktop", dn="1001 ")
    assert r.status_code == 409 and r.json()["error"] == "dn_in_use", r.text
    r = login(client, "agent2", client="desktop", dn=" 10-02 ")
    assert r.status_code == 200 and r.json()["user"]["dn"] == "1002"
    assert active_bindings(client) == [("1001", "agent1"), ("1002", "agent2")]
    r = login(client, "agent3", client="desktop", dn="not a dn!!")
    assert r.status_code == 422 and r.json()["error"] == "invalid_dn"
    assert "digits" in r.json()["message"]
    denied = [a for a in audit_rows(client, "auth.login") if a.outcome == "denied"]
    assert [(a.username, a.detail.split(":")[0]) for a in denied] == [
        ("agent2", "dn_in_use"),
        ("agent3", "invalid_dn"),
    ]


def test_the_database_settles_two_logins_that_both_passed_the_check(client: TestClient) -> None:
    """The race made deterministic: both sessions check before either binds. The partial unique
    index refuses the second insert, answered as the same dn_in_use (and audited)."""
    ids: dict[str, int] = {}
    with session_scope(factory(client)) as s:
        for name in ("agent1", "agent2"):
            ids[name] = s.execute(select(models.User.id).where(models.User.username == name)).scalar_one()
    first, second = factory(client)(), factory(client)()
    try:
        actors = {n: Actor(ids[n], n, "agent", "desktop") for n in ids}
        dn_a = desktop_dn.claim(first, actors["agent1"], ids["agent1"], "2001")
        dn_b = desktop_dn.claim(second, actors["agent2"], ids["agent2"], " 2001")
        assert dn_a == dn_b == "2001"  # neither sees the other yet
        for session, name in ((first, "agent1"), (second, "agent2")):
            tok = models.ApiToken(
                token_hash=name * 4, user_id=ids[name], client="desktop", created_at=0, expires_at=9e9
            )
            session.add(tok)
            session.flush()
            if session is first:
                desktop_dn.bind(first, actors["agent1"], ids["agent1"], dn_a, tok.id, 1.0)
                first.commit()
            else:
                with pytest.raises(Conflict) as refused:
                    desktop_dn.bind(second, actors["agent2"], ids["agent2"], dn_b, tok.id, 2.0)
                assert refused.value.code == "dn_in_use"
    finally:
        first.close()
        second.close()
    assert active_bindings(client) == [("2001", "agent1")]
    assert [a.username for a in audit_rows(client, "auth.login") if a.outcome == "denied"] == ["agent2"]


def test_two_logins_at_once_for_one_dn_exactly_one_wins(client: TestClient) -> None:
    start = threading.Barrier(2)
    answers: dict[str, Any] = {}  # name -> Response

    def go(name: str, dn: str) -> None:
        start.wait(timeout=30)
        answers[name] = login(client, name, client="desktop", dn=dn)

    threads = [threading.Thread(target=go, args=a) for a in (("agent1", "3001"), ("agent2", "30-01"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    statuses = sorted(r.status_code for r in answers.values())
    assert statuses == [200, 409], {n: r.text for n, r in answers.items()}
    loser = next(r for r in answers.values() if r.status_code == 409)
    assert loser.json()["error"] == "dn_in_use"
    winner = next(n for n, r in answers.items() if r.status_code == 200)
    assert active_bindings(client) == [("3001", winner)]


def test_relogin_on_the_same_dn_and_logout_free_it(client: TestClient) -> None:
    assert login(client, "agent1", client="desktop", dn="4001").status_code == 200
    r = login(client, "agent1", client="desktop", dn="40 01")  # the index must not meet the old row
    assert r.status_code == 200, r.text
    client.post("/api/auth/logout", headers={"Authorization": f"Bearer {r.json()['token']}"})
    assert login(client, "agent2", client="desktop", dn="4001").status_code == 200


def test_a_dn_left_bound_by_a_dead_desktop_session_is_released_for_the_next_agent(client: TestClient) -> None:
    assert login(client, "agent1", client="desktop", dn="5001").status_code == 200
    assert login(client, "agent2", client="desktop", dn="5001").status_code == 409  # session still valid
    with session_scope(factory(client)) as s:  # agent1's desktop died; its 12-hour token ran out
        for tok in s.execute(select(models.ApiToken).where(models.ApiToken.client == "desktop")).scalars():
            tok.expires_at = 0.0
    r = login(client, "agent2", client="desktop", dn="5001")
    assert r.status_code == 200, r.text
    assert active_bindings(client) == [("5001", "agent2")]
    (released,) = audit_rows(client, "dn.released")
    assert released.username == "agent2" and released.target_id == "5001" and "agent1" in released.detail


# -- full-time DNs -----------------------------------------------------------------------------


def test_full_time_dn_rules_are_the_same_from_the_api_and_the_cli(client: TestClient) -> None:
    admin = admin_headers(client)
    r = client.put("/api/admin/agents/agent1/recording", json={"full_time_dn": "61-00"}, headers=admin)
    assert r.status_code == 200 and r.json()["full_time_dn"] == "6100"
    cli = Actor.cli()
    with session_scope(factory(client)) as s, pytest.raises(Conflict) as taken:
        full_time_dn.set_dn(s, cli, "agent2", " 6100")
    assert taken.value.code == "dn_taken" and "agent1" in taken.value.message
    with session_scope(factory(client)) as s, pytest.raises(InvalidInput):
        full_time_dn.set_dn(s, cli, "agent2", "not a dn!!")
    r = client.put("/api/admin/agents/agent2/recording", json={"full_time_dn": "6100"}, headers=admin)
    assert r.status_code == 409 and r.json()["error"] == "dn_taken"
    with session_scope(factory(client)) as s:
        assert full_time_dn.set_dn(s, cli, "agent2", "6200") == "6200"
    records = audit_rows(client, "policy.full_time_dn")
    assert [(a.username, a.target_id, a.outcome) for a in records] == [
        ("admin", "agent1", "allowed"),
        ("cli", "agent2", "denied"),
        ("cli", "agent2", "denied"),
        ("admin", "agent2", "denied"),
        ("cli", "agent2", "allowed"),
    ]
    assert "os_user=" in records[-1].detail


def test_the_database_settles_two_admins_giving_one_full_time_dn_at_once(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    with session_scope(factory(client)) as s:
        assert full_time_dn.set_dn(s, Actor.cli(), "agent1", "8100") == "8100"
    # The other admin's check ran before that commit: it saw nothing, so it is skipped here.
    monkeypatch.setattr(full_time_dn, "_check", lambda *_args: None)
    with session_scope(factory(client)) as s, pytest.raises(Conflict) as taken:
        full_time_dn.set_dn(s, Actor.cli(), "agent2", "8100")
    assert taken.value.code == "dn_taken" and "just made" in taken.value.message
    denied = [a for a in audit_rows(client, "policy.full_time_dn") if a.outcome == "denied"]
    assert [a.target_id for a in denied] == ["agent2"]


def test_a_full_time_dn_and_another_agents_live_binding_exclude_each_other(client: TestClient) -> None:
    admin = admin_headers(client)
    assert login(client, "agent2", client="desktop", dn="7100").status_code == 200
    r = client.put("/api/admin/agents/agent1/recording", json={"full_time_dn": "7100"}, headers=admin)
    assert r.status_code == 409 and r.json()["error"] == "dn_taken" and "agent2" in r.json()["message"]
    r = client.put("/api/admin/agents/agent1/recording", json={"full_time_dn": "7200"}, headers=admin)
    assert r.status_code == 200
    r = login(client, "agent3", client="desktop", dn="7200")
    assert r.status_code == 409 and r.json()["error"] == "dn_in_use"
    assert login(client, "agent1", client="desktop", dn="7200").status_code == 200  # his own


def test_the_call_path_finds_an_agent_by_a_dn_written_with_separators(client: TestClient) -> None:
    assert login(client, "agent1", client="desktop", dn="+1 555 0100").status_code == 200
    records = SessionRecords(factory(client))
    party = records.recording_party(["+1 (555) 01-00"])
    assert party is not None and party.agent.username == "agent1" and party.dn == "+15550100"
    assert client.app.state.ctx.repo.agent_on_dn(" +1555.0100") is not None  # type: ignore[attr-defined]


# -- sampling -----------------------------------------------------------------------------------


def test_sampling_out_of_range_is_a_domain_error_and_audited(client: TestClient) -> None:
    with session_scope(factory(client)) as s, pytest.raises(InvalidInput) as refused:
        sampling.set_percentage(s, Actor.cli(), 150, 100.0)
    assert refused.value.code == "invalid_percentage"
    with session_scope(factory(client)) as s:
        sampling.set_percentage(s, Actor.cli(), 10, 100.0)
    r = client.put("/api/admin/sampling", json={"percentage": 101}, headers=admin_headers(client))
    assert r.status_code == 422 and r.json()["error"] == "invalid_percentage"
    with session_scope(factory(client)) as s:
        assert sampling.read_policy(s, 100.0).percentage == 10
    records = audit_rows(client, "policy.sampling")
    assert [(a.username, a.outcome) for a in records] == [
        ("cli", "denied"),
        ("cli", "allowed"),
        ("admin", "denied"),
    ]


# -- users and the password policy -------------------------------------------------------------


def test_password_policy_applies_to_create_user_and_password_change(client: TestClient) -> None:
    admin = admin_headers(client)
    r = client.put(
        "/api/admin/password-policy", json={"min_length": 14, "require_digit": True}, headers=admin
    )
    assert r.status_code == 200 and r.json()["min_length"] == 14
    assert client.get("/api/admin/password-policy", headers=admin).json()["require_digit"] is True
    r = client.put("/api/admin/password-policy", json={"min_length": 4}, headers=admin)
    assert r.status_code == 422 and r.json()["error"] == "invalid_password_policy"

    new = {"username": "eve", "role": "evaluator", "password": "longbutnodigits"}
    r = client.post("/api/admin/users", json=new, headers=admin)
    assert r.status_code == 422 and r.json()["error"] == "weak_password" and "a digit" in r.json()["message"]
    r = client.post("/api/admin/users", json={**new, "password": "long-enough-and-9"}, headers=admin)
    assert r.status_code == 201 and r.json()["role"] == "evaluator"
    r = client.post("/api/admin/users", json={**new, "password": "long-enough-and-9"}, headers=admin)
    assert r.status_code == 409 and r.json()["error"] == "user_exists"
    with session_scope(factory(client)) as s, pytest.raises(InvalidInput) as weak:
        users.create_user(s, Actor.cli(), "cliuser", "short-1", "agent")
    assert weak.value.code == "weak_password"

    eve = {"Authorization": f"Bearer {login(client, 'eve', 'long-enough-and-9').json()['token']}"}
    change = {"current_password": "long-enough-and-9", "new_password": "tooshort9"}
    r = client.post("/api/me/password", json=change, headers=eve)
    assert r.status_code == 422 and r.json()["error"] == "weak_password"
    r = client.post("/api/me/password", json={**change, "current_password": "wrong"}, headers=eve)
    assert r.status_code == 403 and r.json()["error"] == "wrong_password"
    r = client.post("/api/me/password", json={**change, "new_password": "a-new-long-one-42"}, headers=eve)
    assert r.status_code == 204
    assert login(client, "eve", "a-new-long-one-42").status_code == 200

    r = client.post("/api/admin/users", json={**new, "username": "x"}, headers=eve)
    assert r.status_code == 403  # only admins create users
    assert [(a.username, a.outcome) for a in audit_rows(client, "user.create")] == [
        ("admin", "denied"),
        ("admin", "allowed"),
        ("admin", "denied"),
        ("cli", "denied"),
    ]
    assert [a.outcome for a in audit_rows(client, "user.password")] == ["denied", "denied", "allowed"]
    assert [a.outcome for a in audit_rows(client, "policy.password")] == ["allowed", "denied"]


# -- revision 0005 on a database that has the old problems -------------------------------------


def test_revision_0005_normalises_releases_duplicates_and_adds_the_indexes(tmp_path: Path) -> None:
    from alembic import command
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import IntegrityError

    from server.store.db import alembic_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url), "0004")
    engine = create_engine(url)  # no foreign-key pragma: bindings without tokens are enough here
    user = (
        "INSERT INTO users (id, username, full_name, role, password_hash, active, created_at, full_time_dn)"
        " VALUES (:id, :name, '', 'agent', 'x', 1, 0, :ft)"
    )
    binding = (
        "INSERT INTO dn_bindings (id, dn, user_id, token_id, bound_at, released_at)"
        " VALUES (:id, :dn, :u, 1, :at, :rel)"
    )
    with engine.begin() as db:
        agents = ((1, "ann", " 61-00"), (2, "bob", "6100"), (3, "cy", "rec desk"), (4, "di", None))
        for uid, name, ft in agents:
            db.execute(text(user), {"id": uid, "name": name, "ft": ft})
        for bid, dn, uid, at, rel in (
            (1, "1001", 1, 10.0, None),
            (2, "1001 ", 2, 20.0, None),  # the second agent who took 1001 with a trailing space
            (3, "10 02", 3, 5.0, None),
            (4, "1002", 4, 1.0, 2.0),  # released long ago: stays as it was
        ):
            db.execute(text(binding), {"id": bid, "dn": dn, "u": uid, "at": at, "rel": rel})
    command.upgrade(alembic_config(url), "head")
    with engine.begin() as db:
        rows = db.execute(text("SELECT id, dn, released_at IS NULL FROM dn_bindings ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [(1, "1001", 0), (2, "1001", 1), (3, "1002", 1), (4, "1002", 0)]
        owners = db.execute(text("SELECT username, full_time_dn FROM users ORDER BY id")).all()
        # ann (lower id) keeps 6100; "rec desk" is no DN, so only stripped
        assert [tuple(r) for r in owners] == [
            ("ann", "6100"),
            ("bob", None),
            ("cy", "rec desk"),
            ("di", None),
        ]
    with pytest.raises(IntegrityError), engine.begin() as db:
        db.execute(text(binding), {"id": 5, "dn": "1002", "u": 4, "at": 30.0, "rel": None})
    with pytest.raises(IntegrityError), engine.begin() as db:
        db.execute(text("UPDATE users SET full_time_dn = '6100' WHERE id = 4"))
    with engine.begin() as db:  # released bindings and unset full-time DNs are not constrained
        db.execute(text(binding), {"id": 6, "dn": "1002", "u": 4, "at": 30.0, "rel": 31.0})
        db.execute(text("UPDATE users SET full_time_dn = NULL WHERE id = 3"))
    command.downgrade(alembic_config(url), "0004")  # and back, for an operator who must
    engine.dispose()
