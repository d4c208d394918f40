"""Every SIPREC offer of the shared test data (real SBC/PBX captures), wrapped in an INVITE and
sent to the running server over UDP, becomes a recording: the participants its metadata names
are stored with the interaction, the agent is resolved by AOR → DN, and each leg's audio lands on
its own channel (caller left, agent right). The damaged offers are handled as the test data's
README asks; SIP-side pause (a=inactive), hold, deferred start, consent and stop are checked on
the files the server keeps."""

from __future__ import annotations

import json
import re
import time
import wave
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from server.sip.sdp import parse_sdp
from server.store import models
from server.store.db import session_scope
from tests.integration.siprec_peer import Dialog, SrcPeer, tone
from tests.integration.siprec_world import (
    ADMIN,
    OFFERS,
    PASSWORD,
    AgentDesks,
    blue_agents,
    siprec_server,
)

CALLER_HZ, AGENT_HZ = 440.0, 1000.0

# offer file -> (DN an agent logs in on, that agent's participant AOR or None for Request-URI DN)
CASES: dict[str, tuple[str, str | None]] = {
    "acme-siprec-offer.txt": ("1002", "sip:1002@192.168.50.10"),
    "broadworks-offer-2.txt": ("9878942259", "sip:9878942259@212.188.68.145"),
    "broadworks-offer.txt": ("5001", None),  # damaged metadata, one mixed stream: Request-URI DN
    "cisco-siprec-offer.txt": ("7300", "sip:7300@35.162.237.204"),
    "connectel-offer.txt": ("0760516936", "sip:0760516936@sip-cust1.connectel.io"),
    "connectel-offer2.txt": ("0760516936", "sip:0760516936@sip-cust1.connectel.io"),
    "connectel-offer3.txt": ("0760516936", "sip:0760516936@sip-cust1.connectel.io"),
    "inactive-sdp-offer.txt": ("0733165805", "sip:0733165805@192.168.40.34"),
    "non-siprec-payload.txt": ("5002", None),  # plain SDP: a plain recording of the Request-URI DN
    "procomm-siprec-offer.txt": ("016190200", "sip:016190200@87.252.209.116"),
    "sonus-siprec-offer.txt": ("2249888500", "2249888500@172.16.198.55"),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Any]]:
    users = [ADMIN, *blue_agents(len(CASES) + 4)]
    with siprec_server(tmp_path_factory.mktemp("siprec") / "data", users) as world:
        yield world


login_agent = AgentDesks().login


class Row:
    """The stored interaction's columns (plus the agent's username), read in one session."""

    def __init__(self, row: models.Interaction) -> None:
        self.__dict__.update({c.name: getattr(row, c.name) for c in models.Interaction.__table__.columns})
        self.username = row.agent.username if row.agent is not None else None


def interaction_for(ctx: Any, call_id: str, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(ctx.sessions) as s:
            row = s.execute(
                select(models.Interaction).where(models.Interaction.call_id == call_id)
            ).scalar_one_or_none()
            if row is not None and any(m.kind == "voice" for m in row.media):
                return Row(row)
        time.sleep(0.1)
    raise AssertionError(f"no stored voice for call {call_id}")


def voice_of(ctx: Any, row: Any) -> tuple[np.ndarray, int]:
    with session_scope(ctx.sessions) as s:
        media = s.execute(
            select(models.MediaFile).where(
                models.MediaFile.interaction_id == row.id, models.MediaFile.kind == "voice"
            )
        ).scalar_one()
        path = ctx.storage.local_path(media.storage_key)
    with wave.open(str(path), "rb") as wav:
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, wav.getnchannels())
        return frames, wav.getframerate()


def peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0.0


def agent_index(
    body: bytes,
    dialog: Dialog,
    agent_aor: str | None,
    offer_streams: list[tuple[int, str | None]],
    participants: list[dict[str, Any]],
) -> int | None:
    if agent_aor is None or len(dialog.ports) < 2:
        return None
    agent = next(p for p in participants if p["aor"] == agent_aor)
    return int(agent["sends"][0])


def place_call(peer: SrcPeer, body: bytes, dn: str, siprec: bool) -> Dialog:
    dialog = peer.invite(body, dn=dn, siprec=siprec)
    assert dialog.status == 200, [r.status for r in dialog.responses]
    return dialog


@pytest.mark.parametrize("name", sorted(CASES))
def test_offer_is_recorded_with_its_participants(server: tuple[TestClient, Any], name: str) -> None:
    client, ctx = server
    dn, agent_aor = CASES[name]
    user = login_agent(client, dn)
    body = (OFFERS / name).read_bytes()
    siprec = name != "non-siprec-payload.txt"
    peer = SrcPeer(ctx.sip_port)
    try:
        dialog = place_call(peer, body, dn, siprec)
        assert ("+sip.srs" in dialog.contact_header) is siprec
        answer = parse_sdp(dialog.answer)
        if name == "inactive-sdp-offer.txt":
            # Deferred: answered inactive, nothing recorded until a re-INVITE makes the streams flow.
            assert {m.direction for m in answer.media} == {"inactive"}
            found = re.search(rb"(v=0.*?)\r?\n--", body, re.S)
            assert found is not None
            sdp = found.group(1) + b"\n"
            resp = peer.reinvite(dialog, sdp.replace(b"a=inactive", b"a=sendonly"))
            assert resp.status == 200
            assert {m.direction for m in parse_sdp(resp.body).media} == {"recvonly"}
        else:
            assert {m.direction for m in answer.media if m.port} == {"recvonly"}
        with session_scope(ctx.sessions) as s:
            row = s.execute(
                select(models.Interaction).where(models.Interaction.call_id == dialog.call_id)
            ).scalar_one()
            participants = json.loads(row.participants)
        agent_stream = agent_index(body, dialog, agent_aor, [], participants)
        legs = {}
        for index, (port, pt) in dialog.ports.items():
            freq = AGENT_HZ if index == agent_stream else CALLER_HZ
            legs[port] = (tone(freq, 1.0), pt)
        started = time.monotonic()
        peer.stream(legs)
        time.sleep(max(0.0, 1.2 - (time.monotonic() - started)))
        assert peer.bye(dialog).status == 200
    finally:
        peer.close()
    row = interaction_for(ctx, dialog.call_id)
    assert row.username == user and row.dn == dn
    assert row.kind == ("siprec" if siprec else "plain")
    stored = json.loads(row.participants)
    from tests.unit.test_siprec_offers import EXPECTED

    assert [p["aor"] for p in stored] == [w.aor for w in EXPECTED[name].participants]
    if agent_aor is not None:
        roles = {p["aor"]: p["role"] for p in stored}
        assert roles[agent_aor] == "agent" and list(roles.values()).count("agent") == 1
    frames, rate = voice_of(ctx, row)
    duration = len(frames) / rate
    assert row.ended_at is not None and row.answered_at is not None
    assert abs(duration - (row.ended_at - row.answered_at)) < 0.02
    middle = frames[int(0.3 * rate) : int(0.8 * rate)]
    if len(dialog.ports) == 2:
        assert frames.shape[1] == 2
        left, right = middle[:, 0], middle[:, 1]
        assert abs(peak_hz(left, rate) - CALLER_HZ) < 15 and abs(peak_hz(right, rate) - AGENT_HZ) < 15
    else:
        assert frames.shape[1] == 1
        assert abs(peak_hz(middle[:, 0], rate) - CALLER_HZ) < 15
    if name == "broadworks-offer.txt":
        meta = json.loads(row.recording_meta)
        assert meta["warnings"], "damaged metadata must leave a warning"


def test_no_recording_enabled_party_is_refused_with_404(server: tuple[TestClient, Any]) -> None:
    _, ctx = server
    peer = SrcPeer(ctx.sip_port)
    try:
        dialog = peer.invite((OFFERS / "non-siprec-payload.txt").read_bytes(), dn="9999", siprec=False)
        assert dialog.status == 404
    finally:
        peer.close()
    with session_scope(ctx.sessions) as s:
        assert (
            s.execute(select(models.Interaction).where(models.Interaction.call_id == dialog.call_id)).first()
            is None
        )


# ---- SIP-side control, consent, agent/SIP pause interplay ---------------------------------------
ACME = "acme-siprec-offer.txt"


def acme_sdp(direction: bytes) -> bytes:
    found = re.search(rb"(v=0.*?)\r?\n--", (OFFERS / ACME).read_bytes(), re.S)
    assert found is not None
    return re.sub(rb"a=(sendonly|inactive|sendrecv)", b"a=" + direction, found.group(1)) + b"\n"


def legs_for(dialog: Dialog, seconds: float) -> dict[int, tuple[np.ndarray, int]]:
    # acme: the agent (1002) sends the second stream
    return {
        port: (tone(AGENT_HZ if index == 1 else CALLER_HZ, seconds), pt)
        for index, (port, pt) in dialog.ports.items()
    }


def audit_actions(ctx: Any, target: str) -> list[tuple[str, str]]:
    with session_scope(ctx.sessions) as s:
        rows = s.execute(
            select(models.AuditRecord)
            .where(models.AuditRecord.target_id == target)
            .order_by(models.AuditRecord.id)
        ).scalars()
        return [(r.action, r.username) for r in rows]


def test_consent_declined_by_header_is_not_recorded(server: tuple[TestClient, Any]) -> None:
    client, ctx = server
    login_agent(client, "1002")
    peer = SrcPeer(ctx.sip_port)
    try:
        dialog = peer.invite((OFFERS / ACME).read_bytes(), extra=("X-Recording-Consent: declined",))
    finally:
        peer.close()
    assert dialog.status == 603
    with session_scope(ctx.sessions) as s:
        assert (
            s.execute(select(models.Interaction).where(models.Interaction.call_id == dialog.call_id)).first()
            is None
        )
        declined = s.execute(
            select(models.AuditRecord).where(models.AuditRecord.action == "recording.declined")
        ).scalars()
        assert any(dialog.call_id in r.detail for r in declined)


def test_inactive_reinvite_pauses_both_channels_and_is_attributed_to_sip(
    server: tuple[TestClient, Any],
) -> None:
    client, ctx = server
    login_agent(client, "1002")
    peer = SrcPeer(ctx.sip_port)
    try:
        dialog = peer.invite((OFFERS / ACME).read_bytes())
        assert dialog.status == 200
        peer.stream(legs_for(dialog, 1.0))
        assert peer.reinvite(dialog, acme_sdp(b"inactive")).status == 200
        peer.stream(legs_for(dialog, 1.0), seq0=50, ts0=8000)  # a misbehaving SRC keeps sending
        assert peer.reinvite(dialog, acme_sdp(b"sendonly")).status == 200
        peer.stream(legs_for(dialog, 1.0), seq0=100, ts0=16000)
        assert peer.bye(dialog).status == 200
    finally:
        peer.close()
    row = interaction_for(ctx, dialog.call_id)
    with session_scope(ctx.sessions) as s:
        spans = [
            (p.started_at, p.ended_at, p.by_username, p.reason)
            for p in s.execute(
                select(models.PauseSpan).where(models.PauseSpan.interaction_id == row.id)
            ).scalars()
        ]
    assert len(spans) == 1 and spans[0][2:] == ("sip", "sip")
    start, end = spans[0][0] - row.answered_at, spans[0][1] - row.answered_at
    assert 0.9 < start < 1.3 and 1.9 < end < 2.4
    frames, rate = voice_of(ctx, row)
    paused = frames[int((start + 0.05) * rate) : int((end - 0.05) * rate)]
    assert np.count_nonzero(paused) == 0
    after = frames[int((end + 0.2) * rate) : int((end + 0.7) * rate)]
    assert (
        abs(peak_hz(after[:, 0], rate) - CALLER_HZ) < 15 and abs(peak_hz(after[:, 1], rate) - AGENT_HZ) < 15
    )
    actions = audit_actions(ctx, row.id)
    assert ("recording.pause", "sip") in actions and ("recording.resume", "sip") in actions
    assert actions[0][0] == "recording.start" and actions[-1][0] == "recording.end"


def test_sip_resume_never_lifts_the_agents_secure_pause(server: tuple[TestClient, Any]) -> None:
    client, ctx = server
    user = login_agent(client, "1002")
    token = client.post(
        "/api/auth/login", json={"username": user, "password": PASSWORD, "client": "desktop", "dn": "1002"}
    ).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    peer = SrcPeer(ctx.sip_port)
    try:
        dialog = peer.invite((OFFERS / ACME).read_bytes())
        peer.stream(legs_for(dialog, 0.5))
        with session_scope(ctx.sessions) as s:
            iid = s.execute(
                select(models.Interaction.id).where(models.Interaction.call_id == dialog.call_id)
            ).scalar_one()
        r = client.post(f"/api/interactions/{iid}/pause", headers=auth)
        assert r.status_code == 200 and r.json()["paused"]
        assert peer.reinvite(dialog, acme_sdp(b"inactive")).status == 200
        assert peer.reinvite(dialog, acme_sdp(b"sendonly")).status == 200
        call = client.get("/api/agent/call", headers=auth).json()
        assert call["voice"] == "paused", "an SRC resume must not lift the agent's pause"
        peer.stream(legs_for(dialog, 0.5), seq0=25, ts0=4000)
        r = client.post(f"/api/interactions/{iid}/resume", headers=auth)
        assert r.status_code == 200 and r.json()["voice"] == "recording"
        peer.stream(legs_for(dialog, 0.5), seq0=50, ts0=8000)
        assert peer.bye(dialog).status == 200
    finally:
        peer.close()
    row = interaction_for(ctx, dialog.call_id)
    with session_scope(ctx.sessions) as s:
        spans = list(
            s.execute(select(models.PauseSpan).where(models.PauseSpan.interaction_id == row.id)).scalars()
        )
        assert [(p.by_username, p.reason) for p in spans] == [(user, "agent")]


def test_control_header_stop_ends_the_file_but_not_the_call(server: tuple[TestClient, Any]) -> None:
    client, ctx = server
    login_agent(client, "1002")
    peer = SrcPeer(ctx.sip_port)
    try:
        dialog = peer.invite((OFFERS / ACME).read_bytes())
        peer.stream(legs_for(dialog, 1.0))
        resp = peer.reinvite(dialog, acme_sdp(b"sendonly"), extra=("X-Recording-Control: stop",))
        assert resp.status == 200
        peer.stream(legs_for(dialog, 1.0), seq0=50, ts0=8000)
        assert peer.bye(dialog).status == 200
    finally:
        peer.close()
    row = interaction_for(ctx, dialog.call_id)
    assert row.stopped_at is not None
    frames, rate = voice_of(ctx, row)
    assert abs(len(frames) / rate - (row.stopped_at - row.answered_at)) < 0.02
    assert len(frames) / rate < 1.5 < row.ended_at - row.answered_at
    assert ("recording.stop", "sip") in audit_actions(ctx, row.id)


def test_transfer_away_from_every_recorded_party_stops_recording(server: tuple[TestClient, Any]) -> None:
    client, ctx = server
    login_agent(client, "1002")
    body = (OFFERS / ACME).read_bytes()
    moved = body.replace(b"sip:1002@192.168.50.10", b"sip:7777@192.168.50.10")
    peer = SrcPeer(ctx.sip_port)
    try:
        dialog = peer.invite(body)
        peer.stream(legs_for(dialog, 0.5))
        match = re.search(rb"^--(\S+?)\s*$", moved, re.M)
        assert match is not None
        ctype = f'multipart/mixed;boundary="{match.group(1).decode()}"'
        assert peer.reinvite(dialog, moved, content_type=ctype).status == 200
        peer.stream(legs_for(dialog, 0.5), seq0=25, ts0=4000)
        assert peer.bye(dialog).status == 200
    finally:
        peer.close()
    row = interaction_for(ctx, dialog.call_id)
    assert row.stopped_at is not None
    roster = json.loads(row.participants)
    assert "sip:7777@192.168.50.10" in [p["aor"] for p in roster]
    assert ("recording.update", "sip") in audit_actions(ctx, row.id)


def test_g722_leg_and_g711_leg_make_one_wideband_stereo_file(server: tuple[TestClient, Any]) -> None:
    client, ctx = server
    login_agent(client, "1002")
    body = (OFFERS / ACME).read_bytes()
    # The caller's leg (first m-line) offers G.722 only; the agent's stays PCMU.
    wide = body.replace(b"m=audio 20106 RTP/AVP 0", b"m=audio 20106 RTP/AVP 9", 1)
    assert wide != body, "the acme offer's first m-line changed; adjust the test"
    peer = SrcPeer(ctx.sip_port)
    try:
        dialog = peer.invite(wide)
        assert dialog.status == 200
        assert [pt for _, pt in dialog.ports.values()] == [9, 0]
        (p0, _), (p1, _) = dialog.ports.values()
        peer.stream({p0: (tone(3000.0, 1.0, rate=16000), 9), p1: (tone(AGENT_HZ, 1.0), 0)})
        assert peer.bye(dialog).status == 200
    finally:
        peer.close()
    row = interaction_for(ctx, dialog.call_id)
    frames, rate = voice_of(ctx, row)
    assert rate == 16000 and frames.shape[1] == 2
    assert abs(len(frames) / rate - (row.ended_at - row.answered_at)) < 0.02
    middle = frames[int(0.3 * rate) : int(0.8 * rate)]
    # 3 kHz cannot pass G.711's 8 kHz sampling: only a wideband leg carries it
    assert abs(peak_hz(middle[:, 0], rate) - 3000.0) < 20 and abs(peak_hz(middle[:, 1], rate) - AGENT_HZ) < 20


def test_full_time_dn_is_recorded_without_a_desktop_login(server: tuple[TestClient, Any]) -> None:
    client, ctx = server
    admin = client.post("/api/auth/login", json={"username": "admin", "password": PASSWORD}).json()["token"]
    auth = {"Authorization": f"Bearer {admin}"}
    user = f"agent{len(CASES) + 3}"  # never logged in on a desktop
    assert (
        client.put(
            f"/api/admin/agents/{user}/recording", json={"full_time_dn": "bad dn!"}, headers=auth
        ).status_code
        == 422
    )
    r = client.put(f"/api/admin/agents/{user}/recording", json={"full_time_dn": "6100"}, headers=auth)
    assert r.status_code == 200 and r.json()["full_time_dn"] == "6100"
    assert client.get(f"/api/admin/agents/{user}/recording", headers=auth).json()["full_time_dn"] == "6100"
    peer = SrcPeer(ctx.sip_port)
    try:
        # GIR style: the recorder is invited for the DN, named in a header; parameters ride along.
        dialog = peer.invite(
            (OFFERS / "non-siprec-payload.txt").read_bytes(),
            dn="rec",
            siprec=False,
            extra=("X-Recording-DN: 6100", "X-Recording-Campaign: spring"),
        )
        assert dialog.status == 200
        ((port, pt),) = dialog.ports.values()
        peer.stream({port: (tone(CALLER_HZ, 0.5), pt)})
        assert peer.bye(dialog).status == 200
    finally:
        peer.close()
    row = interaction_for(ctx, dialog.call_id)
    assert row.username == user and row.dn == "6100" and row.kind == "plain"
    meta = json.loads(row.recording_meta)
    assert meta["full_time"] is True and meta["params"]["campaign"] == "spring"
    with session_scope(ctx.sessions) as s:
        changes = s.execute(
            select(models.AuditRecord).where(models.AuditRecord.action == "policy.full_time_dn")
        )
        # the refused "bad dn!" first, then the change
        assert [(r.target_id, r.outcome) for r in changes.scalars()] == [(user, "denied"), (user, "allowed")]


def test_one_stream_inactive_is_hold_and_silenced(server: tuple[TestClient, Any]) -> None:
    client, ctx = server
    login_agent(client, "1002")
    held = re.sub(rb"a=sendonly", b"a=inactive", acme_sdp(b"sendonly"), count=1)  # the caller's leg
    peer = SrcPeer(ctx.sip_port)
    try:
        dialog = peer.invite((OFFERS / ACME).read_bytes())
        peer.stream(legs_for(dialog, 0.6))
        assert peer.reinvite(dialog, held).status == 200
        peer.stream(legs_for(dialog, 0.6), seq0=30, ts0=4800)  # music on hold keeps flowing
        assert peer.reinvite(dialog, acme_sdp(b"sendonly")).status == 200
        peer.stream(legs_for(dialog, 0.6), seq0=60, ts0=9600)
        assert peer.bye(dialog).status == 200
    finally:
        peer.close()
    row = interaction_for(ctx, dialog.call_id)
    with session_scope(ctx.sessions) as s:
        spans = [
            (p.started_at, p.ended_at, p.reason)
            for p in s.execute(
                select(models.PauseSpan).where(models.PauseSpan.interaction_id == row.id)
            ).scalars()
        ]
    assert [reason for _, _, reason in spans] == ["hold"]
    frames, rate = voice_of(ctx, row)
    start, end = spans[0][0] - row.answered_at, spans[0][1] - row.answered_at
    assert np.count_nonzero(frames[int((start + 0.05) * rate) : int((end - 0.05) * rate)]) == 0


PARTIAL = b"""<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns="urn:ietf:params:xml:ns:recording:1">
  <datamode>partial</datamode>
  <participant participant_id="conf-3">
    <nameID aor="sip:5550199@192.168.50.102"><name>Supervisor barge-in</name></nameID>
  </participant>
</recording>
"""


def test_partial_metadata_update_adds_a_conference_party(server: tuple[TestClient, Any]) -> None:
    client, ctx = server
    login_agent(client, "1002")
    peer = SrcPeer(ctx.sip_port)
    try:
        dialog = peer.invite((OFFERS / ACME).read_bytes())
        peer.stream(legs_for(dialog, 0.5))
        resp = peer.update(dialog, PARTIAL, "application/rs-metadata+xml")
        assert resp.status == 200 and not resp.body
        peer.stream(legs_for(dialog, 0.5), seq0=25, ts0=4000)
        assert peer.bye(dialog).status == 200
    finally:
        peer.close()
    row = interaction_for(ctx, dialog.call_id)
    roster = json.loads(row.participants)
    assert [p["aor"] for p in roster][-1] == "sip:5550199@192.168.50.102"
    assert row.stopped_at is None  # the agent is still on the call: recording goes on
    assert ("recording.update", "sip") in audit_actions(ctx, row.id)
