"""Device enrolment and pairing rules (server/services/devices.py) on a real migrated SQLite
database: enrolment-token scope and limits, enrolment refused (and audited) when the token is
unknown, revoked, expired or used up, pairing only with a live agent login, hot-desking ending the
earlier binding, and revocation revoking every token the device was given."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.api.routes_devices import PairBody
from server.errors import EnrolmentError
from server.security.tickets import TicketBook
from server.services import device_listing, devices
from server.store import models
from server.store.db import make_engine, make_session_factory, migrate, session_scope
from server.store.users import create_user

ADMIN = devices.Who(1, "root", "10.0.0.1")
NOW = 1_800_000_000.0


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'tandem.db'}"
    migrate(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with session_scope(factory) as s:
        create_user(s, "alice", "correct-horse-battery", "agent", team="Blue")
        create_user(s, "bob", "correct-horse-battery", "agent", team="Blue")
    yield factory
    engine.dispose()


def denied(sessions: sessionmaker[Session], action: str) -> list[str]:
    with session_scope(sessions) as s:
        query = select(models.AuditRecord).where(
            models.AuditRecord.action == action, models.AuditRecord.outcome == "denied"
        )
        return [a.detail for a in s.execute(query.order_by(models.AuditRecord.id)).scalars()]


def new_token(sessions: sessionmaker[Session], **kw: object) -> devices.NewEnrolmentToken:
    args: dict[str, object] = {"scope": "site:HQ", "ttl_seconds": 3600.0, "max_uses": 1, "now": NOW} | kw
    with session_scope(sessions) as s:
        return devices.create_enrolment_token(s, ADMIN, **args)  # type: ignore[arg-type]


def enrol_error(sessions: sessionmaker[Session], token: str, now: float = NOW) -> str:
    with session_scope(sessions) as s, pytest.raises(EnrolmentError) as info:
        devices.enrol(s, token, "desk-1", now=now)
    return info.value.code


def agent_login(sessions: sessionmaker[Session], username: str, *, expires_at: float = NOW + 3600) -> int:
    with session_scope(sessions) as s:
        user = s.execute(select(models.User).where(models.User.username == username)).scalar_one()
        tok = models.ApiToken(
            token_hash=f"{username}{expires_at}".ljust(64, "0")[:64],
            user_id=user.id,
            client="desktop",
            created_at=NOW,
            expires_at=expires_at,
        )
        s.add(tok)
        s.flush()
        return tok.id


def test_scope_names_an_existing_team_or_a_site_label(sessions: sessionmaker[Session]) -> None:
    assert new_token(sessions, scope="team:Blue").scope == "team:Blue"
    for scope, why in (("team:Nope", "no team named"), ("site:", "site label"), ("hq", "team:NAME or site:")):
        with pytest.raises(EnrolmentError) as info:
            new_token(sessions, scope=scope)
        assert info.value.status == 422 and why in info.value.message
    with pytest.raises(EnrolmentError, match="max_uses"):
        new_token(sessions, max_uses=0)
    assert len(denied(sessions, "device.enrolment_token.create")) == 4


def test_enrolment_refused_when_unknown_revoked_expired_or_used_up(sessions: sessionmaker[Session]) -> None:
    assert enrol_error(sessions, "tet_nonsense") == "invalid_enrolment_token"
    expiring = new_token(sessions, ttl_seconds=600.0)
    assert enrol_error(sessions, expiring.token, now=NOW + 601) == "enrolment_token_expired"
    revoked = new_token(sessions, max_uses=3)
    with session_scope(sessions) as s:
        devices.revoke_enrolment_token(s, ADMIN, revoked.id, now=NOW)
    assert enrol_error(sessions, revoked.token) == "enrolment_token_revoked"
    twice = new_token(sessions, max_uses=2)
    with session_scope(sessions) as s:
        first = devices.enrol(s, twice.token, "desk-1", now=NOW)
        second = devices.enrol(s, twice.token, "desk-2", now=NOW)
    assert first.credential != second.credential and first.scope == "site:HQ"
    assert enrol_error(sessions, twice.token) == "enrolment_token_used_up"
    assert denied(sessions, "device.enroll") == [
        "unknown enrolment token: check it, or ask IT for a new one",
        "this enrolment token has expired; ask IT for a new one",
        "this enrolment token was revoked by IT; ask for a new one",
        "this enrolment token was used 2 time(s) already",
    ]
    with session_scope(sessions) as s:
        states = {t["id"]: t["state"] for t in device_listing.list_enrolment_tokens(s, now=NOW + 601)}
    assert states == {expiring.id: "expired", revoked.id: "revoked", twice.id: "used_up"}


def test_hot_desking_ends_the_earlier_binding_and_revocation_revokes_every_token(
    sessions: sessionmaker[Session],
) -> None:
    token = new_token(sessions)
    with session_scope(sessions) as s:
        enrolled = devices.enrol(s, token.token, "desk-7", now=NOW)
    alice, bob = agent_login(sessions, "alice"), agent_login(sessions, "bob")
    with session_scope(sessions) as s:
        device = devices.device_for(s, enrolled.credential, "device.pair")
        paired_a, ended = devices.pair(s, device, alice, now=NOW)
        assert ended == []
    with session_scope(sessions) as s:
        rec_a = s.execute(select(models.DevicePairing.recorder_token_id)).scalar_one()
        assert devices.channel_refusal(s, rec_a) == (alice, None)
        device = devices.device_for(s, enrolled.credential, "device.pair")
        paired_b, ended = devices.pair(s, device, bob, now=NOW + 10)
        assert ended == [rec_a] and paired_b.agent_username == "bob" and paired_a.agent_username == "alice"
    with session_scope(sessions) as s:
        assert (
            devices.channel_refusal(s, rec_a)[1] == "this device is no longer paired with this agent's login"
        )
        rec_b = s.execute(
            select(models.DevicePairing.recorder_token_id).where(models.DevicePairing.ended_at.is_(None))
        ).scalar_one()
        assert devices.channel_refusal(s, rec_b) == (bob, None)
        assert [(d["state"], d["agent"]) for d in device_listing.list_devices(s)] == [("paired", "bob")]
        revoked = devices.revoke_device(s, ADMIN, enrolled.device_id, now=NOW + 20)
    assert sorted(revoked) == sorted([rec_a, rec_b])
    with session_scope(sessions) as s:
        assert all(s.get(models.ApiToken, t).revoked_at == NOW + 20 for t in revoked)  # type: ignore[union-attr]
        assert devices.channel_refusal(s, rec_b)[1] == "this device was revoked by IT"
        assert device_listing.list_devices(s)[0]["state"] == "revoked"
    with session_scope(sessions) as s, pytest.raises(EnrolmentError) as info:
        devices.device_for(s, enrolled.credential, "device.pair")
    assert info.value.code == "device_revoked"
    assert denied(sessions, "device.pair")[-1].startswith("this device's credential was revoked")


def test_a_pairing_names_its_os_user_in_the_listing_and_the_audit_record(
    sessions: sessionmaker[Session],
) -> None:
    token = new_token(sessions)
    with session_scope(sessions) as s:
        enrolled = devices.enrol(s, token.token, "desk-7", now=NOW)
    with session_scope(sessions) as s:
        devices.pair(
            s,
            devices.device_for(s, enrolled.credential, "device.pair"),
            agent_login(sessions, "alice"),
            os_user="jdoe",
        )
    with session_scope(sessions) as s:
        assert [(d["agent"], d["os_user"]) for d in device_listing.list_devices(s)] == [("alice", "jdoe")]
        detail = s.execute(
            select(models.AuditRecord.detail).where(models.AuditRecord.action == "device.pair")
        ).scalar_one()
    assert detail == "desk-7 now records alice (OS user jdoe)"


def test_the_pair_body_takes_an_os_user_limited_like_the_enrol_route() -> None:
    assert PairBody(ticket="tkt_a").os_user == ""
    assert PairBody(ticket="tkt_a", os_user=" jdoe ").os_user == "jdoe"
    for bad in ("j" * 101, "jdoe\n", "a\x1bb"):
        with pytest.raises(ValidationError):
            PairBody(ticket="tkt_a", os_user=bad)


def test_pairing_needs_a_live_agent_login_and_the_ticket_expires(sessions: sessionmaker[Session]) -> None:
    token = new_token(sessions)
    with session_scope(sessions) as s:
        enrolled = devices.enrol(s, token.token, "desk-7", now=NOW)
    ended_login = agent_login(sessions, "alice", expires_at=NOW - 1)
    with session_scope(sessions) as s, pytest.raises(EnrolmentError) as info:
        devices.pair(s, devices.device_for(s, enrolled.credential, "device.pair"), ended_login, now=NOW)
    assert info.value.code == "session_ended"
    live = agent_login(sessions, "alice")
    with session_scope(sessions) as s:
        s.get(models.ApiToken, live).revoked_at = NOW  # type: ignore[union-attr]  # logged out
    with session_scope(sessions) as s, pytest.raises(EnrolmentError):
        devices.pair(s, devices.device_for(s, enrolled.credential, "device.pair"), live, now=NOW + 1)
    clock = [0.0]
    book = TicketBook(ttl=120.0, clock=lambda: clock[0])
    kept, stale = book.issue(live), book.issue(live)
    clock[0] = 119.0
    assert book.redeem(kept) == live and book.redeem(kept) is None  # once
    clock[0] = 121.0
    assert book.redeem(stale) is None


def test_revision_0014_adds_and_removes_the_device_tables(tmp_path: Path) -> None:
    import sqlite3

    from alembic import command

    from server.store.db import alembic_config

    path = tmp_path / "r.db"
    url = f"sqlite:///{path}"
    ours = {"enrolment_tokens", "devices", "device_pairings"}

    def tables() -> set[str]:
        with sqlite3.connect(path) as db:
            return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    command.upgrade(alembic_config(url), "0014")
    assert ours <= tables()
    command.downgrade(alembic_config(url), "0013")
    assert not ours & tables() and "agent_codes" in tables()
    command.upgrade(alembic_config(url), "0014")
    assert ours <= tables()
