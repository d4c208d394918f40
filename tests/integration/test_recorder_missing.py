"""A sampled call whose agent has no recorder connected: its screen is "no_recorder" at once — on the
agent's desktop channel (CallInfo) and on the interaction supervisors read — not "requested" for
ever. When a recorder connects it is asked to start (screen "requested", then "recording" on its
ack); when it goes away mid-call and does not come back within three heartbeats, "no_recorder"
again. The next call's ``screen.start`` carries the admin's recorder policy.

A real server (uvicorn with SIP on loopback), a SIPREC call from a test SRC, the desktop's and the
recorder's event channels as WebSocket clients."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from server.store import models
from server.store.db import session_scope
from tandem_protocol.events import Envelope, parse_envelope
from tests.integration.live_server import LiveServer as LiveServer  # re-exported: tests import it from here
from tests.integration.siprec_peer import SrcPeer
from tests.integration.siprec_world import ADMIN, BLUE_SUPERVISOR, OFFERS, app_with_users, sip_settings
from tests.integration.siprec_world import PASSWORD as PASSWORD  # re-exported, as LiveServer

OFFER = OFFERS / "acme-siprec-offer.txt"
AGENT, DN = "agent0", "1002"  # the ACME offer's agent


class Channel:
    """One event-channel WebSocket, read by a thread; envelopes kept with their arrival time."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._lock = threading.Lock()
        self.got: collections.deque[tuple[float, Envelope]] = collections.deque(maxlen=2000)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for message in self.ws:
                with self._lock:
                    self.got.append((time.monotonic(), parse_envelope(message)))
        except ConnectionClosed:
            pass

    def wait_for(
        self, match: Callable[[Envelope], bool], timeout: float, what: str, after: float = 0.0
    ) -> tuple[float, Envelope]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                found = [(t, e) for t, e in self.got if t >= after and match(e)]
            if found:
                return found[0]
            time.sleep(0.01)
        with self._lock:
            seen = [(e.type, e.data.get("screen")) for _, e in self.got]
        raise AssertionError(f"timed out after {timeout} s waiting for {what}; got {seen}")

    def close(self) -> None:
        self.ws.close()
        self._thread.join(5)


def screen_is(state: str) -> Callable[[Envelope], bool]:
    return lambda e: e.type in ("call.started", "call.updated") and e.data.get("screen") == state


# A live server whose screen is always wanted and whose calls and ACW outlast any test's steps.
LIVE_SETTINGS: dict[str, Any] = {"rtp_timeout_seconds": 60, "acw_limit_seconds": 60, "screen_percentage": 100}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    settings = sip_settings(tmp_path / "data", **LIVE_SETTINGS)
    app = app_with_users(settings, [ADMIN, BLUE_SUPERVISOR, (AGENT, "agent", {"team": "Blue"})])
    with LiveServer(app) as url:
        yield url, app.state.ctx


def token(http: httpx.Client, user: str, **extra: object) -> str:
    r = http.post("/api/auth/login", json={"username": user, "password": PASSWORD, **extra})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def recorder_token(http: httpx.Client) -> str:
    admin = {"Authorization": f"Bearer {token(http, 'admin')}"}
    r = http.post("/api/admin/recorders/enrolments", headers=admin, json={"username": AGENT})
    r = http.post("/api/recorders/enroll", json={"code": r.json()["code"]})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def channel(url: str, client: str, bearer: str) -> Channel:
    ws_url = url.replace("http://", "ws://", 1) + f"/api/events?client={client}"
    conn = connect(ws_url, additional_headers={"Authorization": f"Bearer {bearer}"}, open_timeout=10)
    return Channel(conn.__enter__())  # entered as a context manager; Channel.close ends it


def interaction_screen(http: httpx.Client, sup: dict[str, str], call_id: str) -> str | None:
    found = [i for i in http.get("/api/interactions", headers=sup).json() if i["call_id"] == call_id]
    return found[0]["screen_state"] if found else None


def test_a_sampled_call_without_a_recorder_says_so_at_once_and_recovers_when_one_connects(
    server: tuple[str, Any],
) -> None:
    url, ctx = server
    with httpx.Client(base_url=url, timeout=30) as http:
        desktop_token = token(http, AGENT, client="desktop", dn=DN)
        sup = {"Authorization": f"Bearer {token(http, 'sup')}"}
        admin = {"Authorization": f"Bearer {token(http, 'admin')}"}
        rec_token = recorder_token(http)
        r = http.put("/api/admin/recorder-policy", headers=admin, json={"heartbeat_seconds": 2, "fps": 2})
        assert r.status_code == 200, r.text
        desktop = channel(url, "desktop", desktop_token)
        peer = SrcPeer(ctx.sip_port)
        try:
            desktop.wait_for(lambda e: e.type == "state", 10, "the desktop's state")
            # 1. No recorder: the answer says no_recorder, and the interaction too, within 1 s.
            dialog = peer.invite(OFFER.read_bytes())
            answered = time.monotonic()
            assert dialog.status == 200
            seen_at, started = desktop.wait_for(screen_is("no_recorder"), 10, "no_recorder on the desktop")
            assert seen_at - answered <= 1.0, (
                f"the desktop saw no_recorder {seen_at - answered:.2f} s after the answer"
            )
            deadline = answered + 1.0
            while interaction_screen(http, sup, dialog.call_id) != "no_recorder":
                assert time.monotonic() < deadline, "the interaction did not say no_recorder within 1 s"
                time.sleep(0.02)
            iid = started.data["interaction_id"]
            assert not [e for _, e in desktop.got if e.type == "screen.start"], (
                "screen.start sent with no recorder to take it"
            )

            # 2. The recorder connects: asked to start (its state says requested), then recording.
            before = time.monotonic()
            recorder = channel(url, "recorder", rec_token)
            _, state = recorder.wait_for(lambda e: e.type == "state", 10, "the recorder's state")
            assert state.data["call"]["interaction_id"] == iid and state.data["call"]["screen"] == "requested"
            desktop.wait_for(screen_is("requested"), 10, "requested on the desktop", after=before)
            ack = Envelope("screen.status", {"interaction_id": iid, "state": "recording", "at": time.time()})
            recorder.ws.send(ack.to_json())
            desktop.wait_for(screen_is("recording"), 10, "recording on the desktop", after=before)
            deadline = time.monotonic() + 10
            while interaction_screen(http, sup, dialog.call_id) != "recording":
                assert time.monotonic() < deadline, "the interaction did not say recording"
                time.sleep(0.05)

            # 3. The recorder goes away mid-call and stays away: no_recorder after 3 × 2 s.
            gone = time.monotonic()
            recorder.close()
            seen_at, _ = desktop.wait_for(
                screen_is("no_recorder"), 30, "no_recorder after the timeout", after=gone
            )
            assert seen_at - gone >= 5.5, (
                f"marked missing after {seen_at - gone:.2f} s, before the 6 s timeout"
            )
            assert peer.bye(dialog).status == 200
            desktop.wait_for(lambda e: e.type == "call.ended", 10, "call.ended")
            r = http.post(
                f"/api/interactions/{iid}/done", headers={"Authorization": f"Bearer {desktop_token}"}
            )
            assert r.status_code == 200 and r.json()["phase"] == "done"
            assert not [e for _, e in desktop.got if e.type == "screen.stop"]  # nobody to stop

            # 4. The next call, recorder connected: screen.start with the admin's policy.
            recorder = channel(url, "recorder", rec_token)
            recorder.wait_for(lambda e: e.type == "state", 10, "the recorder's state")
            second = peer.invite(OFFER.read_bytes())
            assert second.status == 200
            _, start = recorder.wait_for(lambda e: e.type == "screen.start", 10, "screen.start")
            assert start.data["fps"] == 2.0 and start.data["policy"]["heartbeat_seconds"] == 2.0
            assert peer.bye(second).status == 200
            recorder.close()
        finally:
            peer.close()
            desktop.close()
    with session_scope(ctx.sessions) as s:
        missing = (
            s.execute(
                select(models.AuditRecord).where(models.AuditRecord.action == "recording.screen_missing")
            )
            .scalars()
            .all()
        )
        assert [(m.target_id, m.outcome) for m in missing] == [(iid, "failed"), (iid, "failed")]
        assert "recorder not connected" in missing[0].detail and "gone for more than 6 s" in missing[1].detail
