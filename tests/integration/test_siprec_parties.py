"""Who a SIPREC (or plain) call belongs to, end to end over UDP against the running server:

- every AOR form real SRCs write finds the agent's DN (a bare number, a host-less URI, tel:,
  user=phone with separators, a telephone-subscriber with parameters), and the admin's matching
  rule (prefixes to strip, last N digits) matches E.164 to national forms;
- a call naming no known party is refused and stored as a missed recording, or — when the admin
  says so — recorded "unassigned" (no agent; admins see it, a supervisor does not);
- one call per agent, atomically: two INVITEs for one DN at once give the desktop one call and
  link the other to it; a second call while the first is active is recorded voice-only and
  linked (was 486); an INVITE right after the BYE is the agent's next call (was sometimes 486).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from server.store import models
from server.store.db import session_scope
from tests.integration.siprec_peer import Dialog, SrcPeer, tone
from tests.integration.siprec_world import (
    ADMIN,
    BLUE_SUPERVISOR,
    OFFERS,
    PASSWORD,
    AgentDesks,
    blue_agents,
    siprec_server,
)

ACME = (OFFERS / "acme-siprec-offer.txt").read_bytes()
AGENT_AOR = b'aor="sip:1002@192.168.50.10"'  # the called party of the acme offer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Any]]:
    users = [ADMIN, BLUE_SUPERVISOR, *blue_agents(20)]
    with siprec_server(tmp_path_factory.mktemp("parties") / "data", users) as world:
        yield world


login_agent = AgentDesks().login


def bearer(client: TestClient, username: str) -> dict[str, str]:
    r = client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def with_agent_aor(aor: str) -> bytes:
    return ACME.replace(AGENT_AOR, b'aor="' + aor.encode() + b'"')


def stored(ctx: Any, call_id: str, timeout: float = 20.0, dn: str | None = None) -> dict[str, Any]:
    """The interaction of ``call_id`` (on ``dn``, else the first: not a copy) once its voice is
    stored (columns + agent's username + the voice's SHA-256 and path)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(ctx.sessions) as s:
            query = select(models.Interaction).where(models.Interaction.call_id == call_id)
            if dn is not None:
                query = query.where(models.Interaction.dn == dn)
            rows = list(s.execute(query).scalars())
            row = next((r for r in rows if dn is not None or r.parent_interaction_id is None), None)
            if row is None and rows:
                row = rows[0]
            if row is not None and any(m.kind == "voice" for m in row.media):
                out = {c.name: getattr(row, c.name) for c in models.Interaction.__table__.columns}
                out["username"] = row.agent.username if row.agent is not None else None
                voice = next(m for m in row.media if m.kind == "voice")
                out["voice_sha256"] = voice.sha256
                out["voice_path"] = ctx.storage.local_path(voice.storage_key)
                out["spans"] = [(p.started_at, p.ended_at, p.by_username) for p in row.pauses]
                return out
        time.sleep(0.1)
    raise AssertionError(f"no stored voice for call {call_id}")


def short_call(peer: SrcPeer, body: bytes, seconds: float = 0.3, **kwargs: Any) -> Dialog:
    dialog = peer.invite(body, **kwargs)
    if dialog.status == 200:
        peer.stream({port: (tone(440.0, seconds), pt) for port, pt in dialog.ports.values()})
        assert peer.bye(dialog).status == 200
    return dialog


def set_policy(client: TestClient, **policy: Any) -> Any:
    body = {"strip_prefixes": [], "last_digits": 0, "record_unassigned": False, **policy}
    return client.put("/api/admin/dn-matching", json=body, headers=bearer(client, "admin"))


# -- every AOR form ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("aor", "dn"),
    [
        ("7602922410", "7602922410"),  # Metaswitch: <nameID aor="7602922410">
        ("sip:8638254725", "8638254725"),  # BroadWorks: a host-less URI
        ("tel:+1-555-010-2001", "+15550102001"),  # tel: with visual separators
        ("sip:+1-555-010-2002@gw.example.com;user=phone", "15550102002"),
        ("sip:1003;phone-context=example.com@pbx;user=phone", "1003"),
        ("&quot;Agent&quot; &lt;sip:1004@pbx&gt;", "1004"),  # a name-addr where an AOR belongs
    ],
)
def test_every_aor_form_finds_the_agent(server: tuple[TestClient, Any], aor: str, dn: str) -> None:
    client, ctx = server
    user = login_agent(client, dn)
    peer = SrcPeer(ctx.sip_port)
    try:
        dialog = short_call(peer, with_agent_aor(aor))
    finally:
        peer.close()
    assert dialog.status == 200, f"{aor}: {dialog.status}"
    row = stored(ctx, dialog.call_id)
    assert row["username"] == user and row["dn"] == dn
    roster = json.loads(row["participants"])
    assert [
        p["role"]
        for p in roster
        if p["aor"] == aor.replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
    ] == ["agent"]


def test_admin_matching_rule_matches_e164_to_the_national_dn(server: tuple[TestClient, Any]) -> None:
    client, ctx = server
    user = login_agent(client, "5550103000")
    body = with_agent_aor("sip:+15550103000@gw.example.com;user=phone")
    peer = SrcPeer(ctx.sip_port)
    try:
        refused = peer.invite(body)
        assert refused.status == 404  # exact matching only: "+15550103000" is not "5550103000"
        r = set_policy(client, strip_prefixes=["+1", "1", "9"])
        assert r.status_code == 200 and r.json()["strip_prefixes"] == ["+1", "1", "9"], r.text
        dialog = short_call(peer, body)
    finally:
        peer.close()
        set_policy(client)
    assert dialog.status == 200
    row = stored(ctx, dialog.call_id)
    assert row["username"] == user and row["dn"] == "5550103000"


def test_a_bad_matching_rule_is_refused_and_audited(server: tuple[TestClient, Any]) -> None:
    client, ctx = server
    r = set_policy(client, last_digits=2)
    assert r.status_code == 422 and "3-32" in r.text, r.text
    assert client.get("/api/admin/dn-matching", headers=bearer(client, "sup")).status_code == 403
    with session_scope(ctx.sessions) as s:
        outcomes = [
            r.outcome
            for r in s.execute(
                select(models.AuditRecord).where(models.AuditRecord.action == "policy.dn_matching")
            ).scalars()
        ]
    assert "denied" in outcomes


# -- no known party ----------------------------------------------------------------------------
def test_no_known_party_is_refused_and_stored_as_missed_when_off(server: tuple[TestClient, Any]) -> None:
    client, ctx = server
    peer = SrcPeer(ctx.sip_port)
    sent_at = time.time()
    try:
        dialog = peer.invite(with_agent_aor("sip:4440001@pbx"))
    finally:
        peer.close()
    assert dialog.status == 404
    # Its own row, or — when an earlier test's refusal from this SRC (same host, reason, status
    # and Request-URI user) came less than a second before — counted in that row (coalesced).
    deadline = time.monotonic() + 10
    rows: list[Any] = []
    while time.monotonic() < deadline and not rows:
        with session_scope(ctx.sessions) as s:
            rows = [
                r
                for r in s.execute(select(models.MissedCall)).scalars()
                if r.call_id == dialog.call_id
                or (r.count > 1 and r.status == 404 and r.at <= sent_at <= r.last_at + 1)
            ]
        time.sleep(0.1)
    assert rows and rows[0].status == 404
    seen = client.get("/api/admin/dn-matching", headers=bearer(client, "admin")).json()
    assert seen["unknown_party_calls"].get("refused", 0) >= 1


def test_no_known_party_is_recorded_unassigned_when_on(server: tuple[TestClient, Any]) -> None:
    client, ctx = server
    assert set_policy(client, record_unassigned=True).status_code == 200
    peer = SrcPeer(ctx.sip_port)
    try:
        dialog = short_call(peer, with_agent_aor("sip:4440002@pbx"))
    finally:
        peer.close()
        set_policy(client)
    assert dialog.status == 200
    row = stored(ctx, dialog.call_id)
    assert row["agent_id"] is None and row["dn"] == "4440002"
    assert json.loads(row["recording_meta"])["unassigned"] is True
    listed = client.get("/api/interactions", headers=bearer(client, "admin")).json()
    mine = [i for i in listed if i["call_id"] == dialog.call_id]
    assert mine and mine[0]["unassigned"] is True and mine[0]["agent"] == ""
    supervised = client.get("/api/interactions", headers=bearer(client, "sup")).json()
    assert not [i for i in supervised if i["call_id"] == dialog.call_id]
    assert client.get(f"/api/interactions/{row['id']}", headers=bearer(client, "sup")).status_code in (
        403,
        404,
    )


# -- one call per agent, atomically; overlapping calls ---------------------------------------
def test_two_invites_for_one_dn_at_once_give_one_call_and_one_linked(server: tuple[TestClient, Any]) -> None:
    client, ctx = server
    user = login_agent(client, "1010")
    body = with_agent_aor("sip:1010@pbx")
    peers = [SrcPeer(ctx.sip_port), SrcPeer(ctx.sip_port)]
    dialogs: dict[int, Dialog] = {}
    start = threading.Barrier(2)

    def call(index: int) -> None:
        start.wait()
        dialogs[index] = peers[index].invite(body)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
        assert [dialogs[i].status for i in range(2)] == [200, 200]
        for i, peer in enumerate(peers):
            peer.stream({port: (tone(440.0, 0.3), pt) for port, pt in dialogs[i].ports.values()})
            assert peer.bye(dialogs[i]).status == 200
    finally:
        for peer in peers:
            peer.close()
    rows = [stored(ctx, d.call_id) for d in dialogs.values()]
    assert all(r["username"] == user for r in rows)
    first = [r for r in rows if r["parent_interaction_id"] is None]
    second = [r for r in rows if r["parent_interaction_id"] is not None]
    assert len(first) == 1 and len(second) == 1, [r["parent_interaction_id"] for r in rows]
    assert second[0]["parent_interaction_id"] == first[0]["id"]


def test_second_call_while_the_first_is_active_is_linked_and_voice_only(
    server: tuple[TestClient, Any],
) -> None:
    client, ctx = server
    login_agent(client, "1011")
    body = with_agent_aor("sip:1011@pbx")
    first_peer, second_peer = SrcPeer(ctx.sip_port), SrcPeer(ctx.sip_port)
    try:
        first = first_peer.invite(body)
        assert first.status == 200
        first_peer.stream({port: (tone(440.0, 0.3), pt) for port, pt in first.ports.values()})
        second = second_peer.invite(body)  # call waiting / consultation: the same agent again
        assert second.status == 200, f"the second call was refused {second.status}"
        second_peer.stream({port: (tone(1000.0, 0.3), pt) for port, pt in second.ports.values()})
        assert second_peer.bye(second).status == 200
        assert first_peer.bye(first).status == 200
    finally:
        first_peer.close()
        second_peer.close()
    one, two = stored(ctx, first.call_id), stored(ctx, second.call_id)
    assert one["parent_interaction_id"] is None and two["parent_interaction_id"] == one["id"]
    assert two["screen_decision"] is False
    assert "voice only" in json.loads(two["recording_meta"])["screen"]
    listed = client.get("/api/interactions", headers=bearer(client, "admin")).json()
    summary = next(i for i in listed if i["id"] == two["id"])
    assert summary["linked_to"] == one["id"]


def test_an_invite_right_after_the_bye_is_the_agents_next_call(server: tuple[TestClient, Any]) -> None:
    client, ctx = server
    user = login_agent(client, "1012")
    body = with_agent_aor("sip:1012@pbx")
    peer = SrcPeer(ctx.sip_port)
    call_ids = []
    try:
        dialog = peer.invite(body)
        for _ in range(4):
            assert dialog.status == 200
            peer.stream({port: (tone(440.0, 0.2), pt) for port, pt in dialog.ports.values()})
            assert peer.bye(dialog).status == 200
            call_ids.append(dialog.call_id)
            dialog = peer.invite(body)  # at once: the last call's file may still be closing
            assert dialog.status == 200, f"refused {dialog.status} right after the previous BYE"
        assert peer.bye(dialog).status == 200
        call_ids.append(dialog.call_id)
    finally:
        peer.close()
    for call_id in call_ids:
        row = stored(ctx, call_id)
        assert row["username"] == user and row["parent_interaction_id"] is None


# -- the SRC says who is recorded ----------------------------------------------------------------
def test_the_party_the_src_marks_as_recorded_gets_the_call(server: tuple[TestClient, Any]) -> None:
    """Both parties are agents' DNs; the metadata marks the calling party as the recorded one
    (Metaswitch ``recordedParty``): that agent gets the call, not the called-party-first guess."""
    client, ctx = server
    caller = login_agent(client, "1030")
    login_agent(client, "1031")
    body = with_agent_aor("sip:1031@192.168.50.10").replace(
        b'aor="sip:9000@192.168.50.102"', b'aor="sip:1030@192.168.50.102"'
    )
    body = body.replace(
        b"<apkt:callingParty>true</apkt:callingParty>",
        b"<apkt:callingParty>true</apkt:callingParty><apkt:recordedParty>true</apkt:recordedParty>",
        1,
    )
    peer = SrcPeer(ctx.sip_port)
    try:
        dialog = short_call(peer, body)
    finally:
        peer.close()
    assert dialog.status == 200
    row = stored(ctx, dialog.call_id)
    assert row["username"] == caller and row["dn"] == "1030"
    roster = {p["aor"]: p["role"] for p in json.loads(row["participants"])}
    assert roster["sip:1030@192.168.50.102"] == "agent"


def _sdp(direction: bytes) -> bytes:
    found = re.search(rb"(v=0.*?)\r?\n--", ACME, re.S)
    assert found is not None
    return re.sub(rb"a=(sendonly|inactive|sendrecv)", b"a=" + direction, found.group(1)) + b"\n"


def test_when_both_parties_are_agents_each_gets_the_recording(server: tuple[TestClient, Any]) -> None:
    """One SIPREC session names two agents' DNs: the called agent's interaction is recorded and
    the calling agent gets their own, linked, with a byte-identical copy of the voice (same
    SHA-256) and the same pause spans."""
    client, ctx = server
    caller = login_agent(client, "1040")
    called = login_agent(client, "1041")
    body = with_agent_aor("sip:1041@192.168.50.10").replace(
        b'aor="sip:9000@192.168.50.102"', b'aor="sip:1040@192.168.50.102"'
    )
    peer = SrcPeer(ctx.sip_port)
    try:
        dialog = peer.invite(body)
        assert dialog.status == 200
        legs = {port: (tone(440.0, 0.4), pt) for port, pt in dialog.ports.values()}
        peer.stream(legs)
        assert peer.reinvite(dialog, _sdp(b"inactive")).status == 200
        peer.stream(legs, seq0=20, ts0=3200)
        assert peer.reinvite(dialog, _sdp(b"sendonly")).status == 200
        peer.stream(legs, seq0=40, ts0=6400)
        assert peer.bye(dialog).status == 200
    finally:
        peer.close()
    first = stored(ctx, dialog.call_id, dn="1041")
    copy = stored(ctx, dialog.call_id, dn="1040")
    assert first["username"] == called and first["parent_interaction_id"] is None
    assert copy["username"] == caller and copy["parent_interaction_id"] == first["id"]
    assert copy["voice_sha256"] == first["voice_sha256"]
    assert copy["voice_path"] != first["voice_path"]
    assert copy["voice_path"].read_bytes() == first["voice_path"].read_bytes()
    assert len(first["spans"]) == 1 and copy["spans"] == first["spans"]
    assert json.loads(copy["recording_meta"])["copy_of"] == first["id"]
    with session_scope(ctx.sessions) as s:
        actions = [
            r.action
            for r in s.execute(
                select(models.AuditRecord).where(models.AuditRecord.target_id == copy["id"])
            ).scalars()
        ]
    assert "recording.start" in actions and "recording.end" in actions


def test_an_unassigned_call_is_not_stopped_by_a_metadata_update_naming_nobody_known(
    server: tuple[TestClient, Any],
) -> None:
    client, ctx = server
    assert set_policy(client, record_unassigned=True).status_code == 200
    body = with_agent_aor("sip:4440003@pbx")
    moved = body.replace(b"sip:4440003@pbx", b"sip:4440004@pbx")
    peer = SrcPeer(ctx.sip_port)
    try:
        dialog = peer.invite(body)
        assert dialog.status == 200
        legs = {port: (tone(440.0, 0.3), pt) for port, pt in dialog.ports.values()}
        peer.stream(legs)
        ctype = 'multipart/mixed;boundary="unique-boundary-1"'
        assert peer.reinvite(dialog, moved, content_type=ctype).status == 200
        peer.stream(legs, seq0=15, ts0=2400)
        assert peer.bye(dialog).status == 200
    finally:
        peer.close()
        set_policy(client)
    row = stored(ctx, dialog.call_id)
    assert row["agent_id"] is None and row["stopped_at"] is None
    assert "sip:4440004@pbx" in [p["aor"] for p in json.loads(row["participants"])]


def test_the_agents_secure_pause_covers_the_second_call_until_the_first_ends(
    server: tuple[TestClient, Any],
) -> None:
    client, ctx = server
    user = login_agent(client, "1013")
    token = client.post(
        "/api/auth/login", json={"username": user, "password": PASSWORD, "client": "desktop", "dn": "1013"}
    ).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    body = with_agent_aor("sip:1013@pbx")
    first_peer, second_peer = SrcPeer(ctx.sip_port), SrcPeer(ctx.sip_port)
    try:
        first = first_peer.invite(body)
        second = second_peer.invite(body)
        assert first.status == 200 and second.status == 200
        legs2 = {port: (tone(1000.0, 0.3), pt) for port, pt in second.ports.values()}
        second_peer.stream(legs2)
        shown = client.get("/api/agent/call", headers=auth).json()
        assert shown["call_id"] == first.call_id  # the desktop shows the first call
        r = client.post(f"/api/interactions/{shown['interaction_id']}/pause", headers=auth)
        assert r.status_code == 200, r.text
        second_peer.stream(legs2, seq0=15, ts0=2400)
        assert first_peer.bye(first).status == 200  # ends the first call, paused
        second_peer.stream(legs2, seq0=30, ts0=4800)
        assert second_peer.bye(second).status == 200
    finally:
        first_peer.close()
        second_peer.close()
    two = stored(ctx, second.call_id)
    assert two["parent_interaction_id"] is not None
    (span,) = two["spans"]
    assert span[2] == user, span  # paused by the agent, through the first call
    assert span[1] is not None and span[1] < two["ended_at"] - 0.2, (span, two["ended_at"])
