"""Hot-desking on one enrolled PC (issue 15, item 4): a device enrols with an enrolment token,
agent A's desktop pairs it (pairing ticket → device credential + ticket → a binding), A's sampled
call sends screen.start to the device; A logs out and the device's channel ends; agent B logs in on
the same PC and pairs, B's call reaches the device and is B's interaction, A's binding no longer
opens a channel. Then IT revokes the device: its channel closes, its next connection, upload and
pairing are refused (audited) and the device list says "revoked". A real server (uvicorn with SIP
on loopback), a SIPREC call from a test SRC, WebSocket event channels."""

from __future__ import annotations

import base64
import hashlib
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from websockets.exceptions import InvalidStatus

from recorder_service.tus_client import TusClient
from server.store import models
from server.store.db import session_scope
from tandem_protocol.events import Envelope
from tests.integration.live_server import LiveServer
from tests.integration.siprec_peer import SrcPeer
from tests.integration.siprec_world import ADMIN, PASSWORD, app_with_users, sip_settings
from tests.integration.test_fleet import beat
from tests.integration.test_mux_segments import FPS, make_segment
from tests.integration.test_recorder_missing import LIVE_SETTINGS, OFFER, Channel, channel

DN = "1002"  # the ACME offer's agent DN: whoever is logged in on it takes the call


@pytest.fixture
def server(tmp_path: Path) -> Any:
    settings = sip_settings(tmp_path / "data", **LIVE_SETTINGS)
    app = app_with_users(
        settings, [ADMIN, ("alice", "agent", {"team": "Blue"}), ("bob", "agent", {"team": "Blue"})]
    )
    with LiveServer(app) as url:
        yield url, app.state.ctx


def login(http: httpx.Client, user: str, **extra: object) -> dict[str, str]:
    r = http.post("/api/auth/login", json={"username": user, "password": PASSWORD, **extra})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def pair(http: httpx.Client, credential: str, desktop: dict[str, str]) -> str:
    r = http.post("/api/agent/pairing-ticket", headers=desktop)
    assert r.status_code == 200, r.text
    r = http.post(
        "/api/devices/pair",
        headers={"Authorization": f"Bearer {credential}"},
        json={"ticket": r.json()["ticket"]},
    )
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def upload_segment(url: str, token: str, iid: str, started_at: float, tmp: Path, run: str) -> str:
    """A real recorder-like segment (1 s, H.264 fMP4) uploaded with the device's token (tus)."""
    path = tmp / f"{run}.mp4"
    make_segment(path, list(range(FPS)), first_number=0)
    data = path.read_bytes()
    meta = {
        "run": run,
        "seq": "0",
        "started_at": f"{started_at:.3f}",
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    client = TusClient(url, lambda: token)
    try:
        created = client.create(f"/api/interactions/{iid}/screen/segments", len(data), meta)
        done = client.patch(created.location, created.offset, data)
    finally:
        client.close()
    assert done.server_sha256 == meta["sha256"]
    return meta["sha256"]


def call_with_screen(
    peer: SrcPeer,
    recorder: Channel,
    desktop: dict[str, str],
    http: httpx.Client,
    token: str,
    tmp: Path,
    run: str,
) -> str:
    """One sampled call; the device must get its screen.start and uploads a segment of it while
    the call is on. Returns the interaction id."""
    answered = time.time()
    dialog = peer.invite(OFFER.read_bytes())
    assert dialog.status == 200
    _, start = recorder.wait_for(lambda e: e.type == "screen.start", 15, "screen.start on the device")
    iid = str(start.data["interaction_id"])
    while time.time() < answered + 1.5:  # the segment's second must lie inside the call so far
        time.sleep(0.05)
    upload_segment(str(http.base_url).rstrip("/"), token, iid, answered + 0.3, tmp, run)
    assert peer.bye(dialog).status == 200
    deadline = time.monotonic() + 15
    while http.post(f"/api/interactions/{iid}/done", headers=desktop).status_code != 200:
        assert time.monotonic() < deadline, "the call did not end"
        time.sleep(0.1)
    return iid


def closed(ch: Channel, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ch.ws.close_code is not None:
            return True
        time.sleep(0.02)
    return False


def segment_create(http: httpx.Client, token: str, iid: str) -> int:
    body = b"segment"
    meta = {
        "run": "r1",
        "seq": "0",
        "started_at": f"{time.time():.3f}",
        "sha256": hashlib.sha256(body).hexdigest(),
    }
    header = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in meta.items())
    r = http.post(
        f"/api/interactions/{iid}/screen/segments",
        headers={
            "Authorization": f"Bearer {token}",
            "Tus-Resumable": "1.0.0",
            "Upload-Length": str(len(body)),
            "Upload-Metadata": header,
        },
    )
    return r.status_code


def refused_on_connect(url: str, token: str) -> bool:
    """The handshake is answered 401 (the recorder then retries slowly, as for a bad token)."""
    try:
        channel(url, "recorder", token).close()
    except InvalidStatus as exc:
        return exc.response.status_code == 401
    return False


def test_two_agents_one_after_the_other_on_one_device_then_the_device_revoked(
    server: tuple[str, Any], tmp_path: Path
) -> None:
    url, ctx = server
    with httpx.Client(base_url=url, timeout=30) as http:
        admin = login(http, "admin")
        r = http.post(
            "/api/admin/devices/enrolment-tokens", headers=admin, json={"scope": "site:HQ", "max_uses": 5}
        )
        assert r.status_code == 201, r.text
        r = http.post("/api/devices/enroll", json={"token": r.json()["token"], "hostname": "desk-7"})
        assert r.status_code == 200, r.text
        credential, device_id = r.json()["credential"], r.json()["device_id"]
        peer = SrcPeer(ctx.sip_port)
        try:
            # Agent A on the PC: the device is paired with A's login, A's call reaches it.
            alice = login(http, "alice", client="desktop", dn=DN)
            token_a = pair(http, credential, alice)
            rec_a = channel(url, "recorder", token_a)
            rec_a.wait_for(lambda e: e.type == "state", 10, "the device's state as alice")
            iid_a = call_with_screen(peer, rec_a, alice, http, token_a, tmp_path, "ra")
            # A logs out: the device's channel for A ends with her login.
            assert http.post("/api/auth/logout", headers=alice).status_code == 204
            assert closed(rec_a), "the device kept alice's channel after she logged out"
            assert refused_on_connect(url, token_a), "alice's binding still opens a channel"

            # Agent B on the same PC: B's call is B's and reaches the device.
            bob = login(http, "bob", client="desktop", dn=DN)
            token_b = pair(http, credential, bob)
            rec_b = channel(url, "recorder", token_b)
            rec_b.wait_for(lambda e: e.type == "state", 10, "the device's state as bob")
            iid_b = call_with_screen(peer, rec_b, bob, http, token_b, tmp_path, "rb")
            assert not [
                e for _, e in rec_a.got if e.type == "screen.start" and e.data["interaction_id"] == iid_b
            ]
            r = http.get("/api/admin/devices", headers=admin)
            assert [(d["state"], d["agent"]) for d in r.json()["devices"]] == [("paired", "bob")]
            # Segments go under the right agent's interaction: A's spooled segment still uploads
            # with A's binding token; B's token cannot put anything into A's interaction.
            assert segment_create(http, token_a, iid_a) == 201
            assert segment_create(http, token_b, iid_a) == 403
            assert segment_create(http, token_b, iid_b) == 201

            # The device reports itself as bob's recorder (the fleet row IT sees).
            rec_b.ws.send(
                Envelope("recorder.heartbeat", beat(host="desk-7", state="idle"), at=time.time()).to_json()
            )
            deadline = time.monotonic() + 15
            while not [
                f for f in http.get("/api/admin/fleet", headers=admin).json()["recorders"] if f["host"]
            ]:
                assert time.monotonic() < deadline, "the device's heartbeat never reached the fleet"
                time.sleep(0.05)

            # IT revokes the device: channel closed, connect/upload/pair refused, list says revoked.
            r = http.post(f"/api/admin/devices/{device_id}/revoke", headers=admin)
            assert r.status_code == 204, r.text
            assert closed(rec_b), "the revoked device kept its channel"
            assert refused_on_connect(url, token_b)
            assert segment_create(http, token_b, iid_b) == 401
            r = http.post("/api/agent/pairing-ticket", headers=bob)
            r = http.post(
                "/api/devices/pair",
                headers={"Authorization": f"Bearer {credential}"},
                json={"ticket": r.json()["ticket"]},
            )
            assert r.status_code == 401 and r.json()["error"] == "device_revoked", r.text
            r = http.get("/api/admin/devices", headers=admin)
            assert [(d["state"], d["revoked_by"]) for d in r.json()["devices"]] == [("revoked", "admin")]
            fleet = http.get("/api/admin/fleet", headers=admin).json()["recorders"]
            assert [(f["host"], f["agent"], f["status"]) for f in fleet if f["host"]] == [
                ("desk-7", "bob", "revoked")
            ]
        finally:
            peer.close()
    with session_scope(ctx.sessions) as s:
        agents = {
            i.id: u.username
            for i, u in s.execute(
                select(models.Interaction, models.User).join(
                    models.User, models.User.id == models.Interaction.agent_id
                )
            ).all()
        }
        assert agents == {iid_a: "alice", iid_b: "bob"}
        segments = {
            (seg.interaction_id, seg.run) for seg in s.execute(select(models.ScreenSegment)).scalars()
        }
        assert segments == {(iid_a, "ra"), (iid_b, "rb")}  # each under its own agent's interaction
        denied = [
            (a.action, a.detail)
            for a in s.execute(
                select(models.AuditRecord).where(models.AuditRecord.outcome == "denied")
            ).scalars()
        ]
        assert ("device.pair", denied[-1][1]) == denied[-1] and "revoked" in denied[-1][1]
        assert any("device recorder" in d and a == "auth.rejected" for a, d in denied)
