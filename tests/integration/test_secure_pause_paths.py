"""The secure pause's paths against a real server (uvicorn on loopback, SIP and RTP real), a SIPREC
call from a test SRC streaming a tone on both legs, the desktop's event channel and a fake recorder
connection that acks screen commands like the real recorder (``screen.status``) — or not at all:

* the recorder confirms: "paused" on the answer; Resume answers at once;
* the recorder is hung (never answers): the voice is silenced at once, the answer is 504 after the
  1-s confirmation timeout, the call says "unconfirmed" with a warning naming the screen, the
  supervisor's pause span carries it; Resume answers 200 without the recorder and the stored WAV
  has the tone again after the resume;
* the recorder disconnects mid-pause: after its grace the screen leg is safe (nothing captures it)
  and the pause becomes "paused"; Resume works; a new pause with no recorder is paused at once;
* the agent PC's network is cut mid-pause: unconfirmed; back, both clients resync to the pause and
  the recorder's ack completes it;
* the server restarts mid-pause: the pause span is closed at the call's end (never left open),
  the voice stayed silent to the end, and a desktop that reconnects resyncs (no stuck pause).
"""

from __future__ import annotations

import threading
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from agent_app.model import DesktopState, EventReceived, LoginStarted, LoginSucceeded, reduce
from agent_app.recording_view import PAUSE, RESUME, RESUME_UNCONFIRMED
from agent_app.view import build_view
from server.api.app import create_app
from server.settings import load_settings
from server.store import models
from server.store.db import session_scope
from server.store.users import create_user
from tandem_protocol import LoginResponse, UserInfo
from tandem_protocol.events import Envelope
from tests.integration.siprec_peer import Dialog, SrcPeer, tone
from tests.integration.tcp_cut_proxy import CutProxy
from tests.integration.test_recorder_missing import (
    OFFER,
    PASSWORD,
    LiveServer,
    channel,
    recorder_token,
    token,
)
from tests.ports import rtp_range

AGENT, DN = "agent0", "1002"  # the ACME offer's agent
CONFIRM = 1.0  # pause_confirm_timeout_seconds


class FakeRecorder:
    """The recorder's event channel: acks every screen command as the real one does (the state it
    reached, at the command's ``at``) while ``hung`` is False; a hung one reads and says nothing."""

    ACKS = {"screen.start": "recording", "screen.pause": "paused", "screen.resume": "recording"}

    def __init__(self, url: str, bearer: str, hung: bool = False) -> None:
        self.hung = hung
        self.channel = channel(url, "recorder", bearer)
        self.seen: list[str] = []
        self._stop = threading.Event()
        self._done = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            envelopes = list(self.channel.got)
            for _, env in envelopes[self._done :]:
                self.seen.append(env.type)
                state = self.ACKS.get(env.type)
                if state is not None and not self.hung:
                    ack = {"interaction_id": env.data["interaction_id"], "state": state, "at": env.data["at"]}
                    self.channel.ws.send(Envelope("screen.status", ack).to_json())
            self._done = len(envelopes)
            time.sleep(0.005)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.channel.close()


def make_app(data: Path) -> Any:
    rtp = rtp_range()
    settings = load_settings(
        None,
        data_dir=data,
        sip_port=0,
        rtp_port_min=rtp[0],
        rtp_port_max=rtp[1],
        rtp_timeout_seconds=60,
        acw_limit_seconds=60,
        screen_percentage=100,
        pause_confirm_timeout_seconds=CONFIRM,
        media_encoder_process=False,
    )
    return create_app(settings)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    app = make_app(data)
    with session_scope(app.state.ctx.sessions) as s:
        create_user(s, "admin", PASSWORD, "admin")
        create_user(s, "sup", PASSWORD, "supervisor", supervises=["Blue"])
        create_user(s, AGENT, PASSWORD, "agent", team="Blue")
    app.state.ctx.sessions.kw["bind"].dispose()  # never started, so its stop would not close the pool
    return data


@pytest.fixture
def server(data: Path) -> Iterator[tuple[str, Any]]:
    app = make_app(data)
    with LiveServer(app) as url:
        yield url, app.state.ctx


class Call:
    """A SIPREC call streaming a tone on both legs from a thread, for ``seconds``."""

    def __init__(self, sip_port: int, seconds: float) -> None:
        self.peer = SrcPeer(sip_port)
        self.dialog: Dialog = self.peer.invite(OFFER.read_bytes())
        assert self.dialog.status == 200
        legs = {
            port: (tone(1000.0 if index == 1 else 440.0, seconds), pt)
            for index, (port, pt) in self.dialog.ports.items()
        }
        self._sender = threading.Thread(target=self.peer.stream, args=(legs,), daemon=True)
        self._sender.start()

    def end(self) -> None:
        self._sender.join(60)
        assert self.peer.bye(self.dialog).status == 200
        self.peer.close()


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def current(http: httpx.Client, desk: dict[str, str]) -> dict[str, Any] | None:
    r = http.get("/api/agent/call", headers=desk)
    assert r.status_code == 200, r.text
    body: dict[str, Any] | None = r.json()
    return body


def stored_voice(ctx: Any, iid: str) -> tuple[float, list[tuple[float, float | None]], Path]:
    def find() -> tuple[float, list[tuple[float, float | None]], Path] | None:
        with session_scope(ctx.sessions) as s:
            row = s.get(models.Interaction, iid)
            voice = [m for m in row.media if m.kind == "voice"] if row is not None else []
            if row is None or not voice or row.answered_at is None:
                return None
            spans = [(p.started_at, p.ended_at) for p in row.pauses]
            return row.answered_at, spans, ctx.storage.local_path(voice[0].storage_key)

    found: tuple[float, list[tuple[float, float | None]], Path] = wait_for(find, 30, "the stored voice")
    return found


def rms(path: Path, start: float, end: float) -> list[float]:
    """RMS of each channel between ``start`` and ``end`` seconds of the WAV."""
    with wave.open(str(path), "rb") as wav:
        rate = wav.getframerate()
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, wav.getnchannels())
    part = frames[int(start * rate) : int(end * rate)].astype(np.float64)
    assert len(part) > 0, f"the WAV has no audio between {start:.2f} and {end:.2f} s"
    return [float(np.sqrt(np.mean(part[:, ch] ** 2))) for ch in range(part.shape[1])]


def setup(http: httpx.Client) -> tuple[dict[str, str], dict[str, str], str]:
    desk = {"Authorization": f"Bearer {token(http, AGENT, client='desktop', dn=DN)}"}
    sup = {"Authorization": f"Bearer {token(http, 'sup')}"}
    admin = {"Authorization": f"Bearer {token(http, 'admin')}"}
    r = http.put("/api/admin/recorder-policy", headers=admin, json={"heartbeat_seconds": 2})
    assert r.status_code == 200, r.text
    return desk, sup, recorder_token(http)


def answered(http: httpx.Client, desk: dict[str, str], screen: str) -> str:
    call = wait_for(
        lambda: (
            (c := current(http, desk)) is not None and c["phase"] == "active" and c["screen"] == screen and c
        ),
        10,
        f"the active call with screen {screen}",
    )
    return str(call["interaction_id"])


def test_the_recorder_confirms_the_pause_and_resume_answers_at_once(server: tuple[str, Any]) -> None:
    url, ctx = server
    with httpx.Client(base_url=url, timeout=30) as http:
        desk, _, rec = setup(http)
        recorder = FakeRecorder(url, rec)
        call = Call(ctx.sip_port, 3.0)
        try:
            iid = answered(http, desk, "recording")
            r = http.post(f"/api/interactions/{iid}/pause", headers=desk)
            assert r.status_code == 200, r.text
            body = r.json()
            assert (body["paused"], body["pause"], body["voice"], body["screen"]) == (
                True,
                "paused",
                "paused",
                "paused",
            )
            r = http.post(f"/api/interactions/{iid}/resume", headers=desk)
            assert r.status_code == 200, r.text
            assert (r.json()["voice"], r.json()["pause"]) == ("recording", "recording")
            wait_for(lambda: "screen.resume" in recorder.seen, 10, "screen.resume at the recorder")
        finally:
            call.end()
            recorder.close()


def test_a_hung_recorder_warns_about_the_screen_and_resume_restores_the_voice(
    server: tuple[str, Any],
) -> None:
    url, ctx = server
    with httpx.Client(base_url=url, timeout=30) as http:
        desk, sup, rec = setup(http)
        desktop = channel(url, "desktop", desk["Authorization"].split()[1])
        recorder = FakeRecorder(url, rec)  # acks the start, then hangs (as after SIGSTOP)
        # The tone must outlast the last resume + 0.4 s however slow the requests are: with 8 s, a
        # loaded CI machine reached the second resume after the tone had ended (RMS 0 "after").
        call = Call(ctx.sip_port, 20.0)
        try:
            iid = answered(http, desk, "recording")
            time.sleep(1.0)  # a second of tone before the pause (what is checked comes after)
            # 1. Hung before the pause: the voice is silenced, the screen leg is unconfirmed.
            recorder.hung = True
            begun = time.monotonic()
            r = http.post(f"/api/interactions/{iid}/pause", headers=desk)
            took = time.monotonic() - begun
            assert r.status_code == 504 and r.json()["error"] == "screen_not_confirmed", r.text
            assert took >= CONFIRM * 0.9, f"answered after {took:.2f} s: it did not wait for the screen"
            body = current(http, desk)
            assert body is not None
            assert (body["voice"], body["paused"], body["pause"]) == ("paused", False, "unconfirmed")
            assert body["pause_warning"].startswith("Screen pause NOT confirmed")
            desktop.wait_for(
                lambda e: e.type == "call.updated" and e.data.get("pause") == "unconfirmed",
                10,
                "the unconfirmed pause on the desktop",
            )
            time.sleep(0.5)  # held voice
            r = http.post(f"/api/interactions/{iid}/resume", headers=desk)
            assert r.status_code == 200, r.text
            assert (r.json()["voice"], r.json()["pause"], r.json()["pause_warning"]) == (
                "recording",
                "recording",
                "",
            )
            time.sleep(0.5)
            # 2. Hung after confirming a pause: Resume is answered at once without its ack.
            recorder.hung = False
            r = http.post(f"/api/interactions/{iid}/pause", headers=desk)
            assert r.status_code == 200 and r.json()["pause"] == "paused", r.text
            recorder.hung = True
            time.sleep(0.5)  # held voice
            r = http.post(f"/api/interactions/{iid}/resume", headers=desk)
            assert r.status_code == 200, r.text
            assert (r.json()["voice"], r.json()["pause"]) == ("recording", "recording")
        finally:
            call.end()
            recorder.close()
            desktop.close()
        r = http.post(f"/api/interactions/{iid}/done", headers=desk)
        assert r.status_code == 200, r.text
        # The supervisor's timeline: the first pause span names the unconfirmed screen.
        r = http.get(f"/api/interactions/{iid}", headers=sup)
        assert r.status_code == 200, r.text
        first, second = r.json()["pauses"]
        assert first["ended_at"] is not None and "Screen pause NOT confirmed" in first["warning"]
        assert second["ended_at"] is not None and second["warning"] == ""
    answered_at, spans, path = stored_voice(ctx, iid)
    before = rms(path, max(0.0, spans[0][0] - answered_at - 0.8), spans[0][0] - answered_at - 0.1)
    for start, end in spans:
        assert end is not None
        pause_from, pause_to = start - answered_at, end - answered_at
        held = rms(path, pause_from + 0.1, pause_to - 0.1)
        after = rms(path, pause_to + 0.1, pause_to + 0.4)
        assert max(held) < 1.0, f"the held voice is not silent: RMS {held}"
        assert min(after) > 0.3 * min(before), f"no voice after the resume: RMS {after} (before {before})"
    with session_scope(ctx.sessions) as s:
        audited = s.execute(
            select(models.AuditRecord).where(models.AuditRecord.action == "recording.pause_unconfirmed")
        ).scalars()
        assert [(a.target_id, a.outcome) for a in audited] == [(iid, "failed")]


def test_a_recorder_that_disconnects_mid_pause_leaves_the_screen_safe_and_resume_works(
    server: tuple[str, Any],
) -> None:
    url, ctx = server
    with httpx.Client(base_url=url, timeout=30) as http:
        desk, _, rec = setup(http)
        desktop = channel(url, "desktop", desk["Authorization"].split()[1])
        recorder = FakeRecorder(url, rec)
        call = Call(ctx.sip_port, 20.0)
        try:
            iid = answered(http, desk, "recording")
            # 1. The recorder's connection drops (killed, network cut); within its grace it may
            # still be capturing offline: the pause cannot be confirmed — said at once, no wait.
            recorder.close()
            wait_for(
                lambda: not ctx.coordinator.recorders.connected(current_agent(ctx)), 10, "the recorder gone"
            )
            r = http.post(f"/api/interactions/{iid}/pause", headers=desk)
            assert r.status_code == 200, r.text
            body = r.json()
            assert (body["voice"], body["paused"], body["pause"]) == ("paused", False, "unconfirmed")
            assert "screen recorder is not connected" in body["pause_warning"]
            span_start = body["pauses"][-1]["started_at"]
            # 2. It connects again: told to pause from the pause's start; its ack completes the pause.
            back = time.monotonic()
            recorder = FakeRecorder(url, rec)
            _, env = recorder.channel.wait_for(lambda e: e.type == "screen.pause", 10, "the pause again")
            assert env.data["at"] == span_start
            desktop.wait_for(
                lambda e: e.type == "call.updated" and e.data.get("pause") == "paused",
                10,
                "the pause confirmed by the returning recorder",
                after=back,
            )
            r = http.post(f"/api/interactions/{iid}/resume", headers=desk)
            assert r.status_code == 200 and r.json()["voice"] == "recording", r.text
            # 3. Hung during a pause, then gone for good: after its grace (3 heartbeats of 2 s)
            # nothing captures the screen, so that leg is safe and the pause complete.
            recorder.hung = True
            r = http.post(f"/api/interactions/{iid}/pause", headers=desk)
            assert r.status_code == 504, r.text
            gone = time.monotonic()
            recorder.close()
            _, env = desktop.wait_for(
                lambda e: e.type == "call.updated" and e.data.get("screen") == "no_recorder",
                30,
                "the screen leg safe after the recorder's grace",
                after=gone,
            )
            assert (env.data["pause"], env.data["paused"], env.data["pause_warning"]) == ("paused", True, "")
            r = http.post(f"/api/interactions/{iid}/resume", headers=desk)
            assert r.status_code == 200 and r.json()["voice"] == "recording", r.text
            # 4. No recorder for the call now: a new pause has nothing to wait for, paused at once.
            r = http.post(f"/api/interactions/{iid}/pause", headers=desk)
            assert r.status_code == 200, r.text
            assert (r.json()["paused"], r.json()["pause"]) == (True, "paused")
            r = http.post(f"/api/interactions/{iid}/resume", headers=desk)
            assert r.status_code == 200, r.text
        finally:
            call.end()
            desktop.close()


def current_agent(ctx: Any) -> int:
    with session_scope(ctx.sessions) as s:
        user = s.execute(select(models.User).where(models.User.username == AGENT)).scalar_one()
        return int(user.id)


def test_a_server_restart_mid_pause_never_leaves_the_pause_open_and_the_desktop_resyncs(
    data: Path,
) -> None:
    app = make_app(data)
    ctx = app.state.ctx
    with LiveServer(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        desk, _, rec = setup(http)
        recorder = FakeRecorder(url, rec)
        call = Call(ctx.sip_port, 4.0)
        iid = answered(http, desk, "recording")
        r = http.post(f"/api/interactions/{iid}/pause", headers=desk)
        assert r.status_code == 200 and r.json()["pause"] == "paused", r.text
        recorder.close()
    # The server stopped mid-pause (its SIP dialogs with it); the peer's BYE finds no dialog.
    call._sender.join(60)
    call.peer.close()
    app2 = make_app(data)
    with LiveServer(app2) as url, httpx.Client(base_url=url, timeout=30) as http:
        desk2 = {"Authorization": f"Bearer {token(http, AGENT, client='desktop', dn=DN)}"}
        desktop = channel(url, "desktop", desk2["Authorization"].split()[1])
        try:
            _, state_env = desktop.wait_for(lambda e: e.type == "state", 10, "the desktop's state")
        finally:
            desktop.close()
        assert current(http, desk2) is None
    with session_scope(app2.state.ctx.sessions) as s:
        row = s.get(models.Interaction, iid)
        assert row is not None and row.state in ("interrupted", "done", "acw")
        [span] = row.pauses
        # A pause never outlives the call's recording: closed, at the recording's end at the latest.
        assert span.ended_at is not None and row.ended_at is not None
        assert span.started_at <= span.ended_at <= row.ended_at + 1e-6
    # The desktop that showed the pause resyncs from the state message: no call, no stuck button.
    user = UserInfo(id=0, username=AGENT, role="agent", dn=DN)
    desktop_state = reduce(
        reduce(DesktopState(), LoginStarted()), LoginSucceeded(LoginResponse("t", 0.0, user))
    )
    paused_call = {
        "interaction_id": iid,
        "call_id": "c",
        "dn": DN,
        "caller": "x",
        "callee": DN,
        "phase": "active",
        "voice": "paused",
        "screen": "paused",
        "paused": True,
        "pause": "paused",
        "started_at": 1.0,
    }
    desktop_state = reduce(desktop_state, EventReceived(Envelope("call.updated", paused_call, 1, 1.0), 1.0))
    desktop_state = reduce(desktop_state, EventReceived(state_env, 2.0))
    view = build_view(desktop_state, 2.0)
    assert desktop_state.call is None and view.pause_label == PAUSE and view.agent_state_text == "Ready"


def test_a_network_cut_mid_pause_then_both_clients_reconnect_and_resync_to_the_pause(
    server: tuple[str, Any],
) -> None:
    """The agent PC's network (desktop and recorder both behind one TCP proxy) is cut while the
    pause waits for the recorder: the pause is unconfirmed; when the network is back the desktop's
    resync shows it (Resume with the warning), the recorder is told the pause again, its ack
    completes the pause, and Resume works."""
    url, ctx = server
    with (
        httpx.Client(base_url=url, timeout=30) as http,
        CutProxy("127.0.0.1", int(url.rsplit(":", 1)[1])) as net,
    ):
        desk, _, rec = setup(http)
        desk_token = desk["Authorization"].split()[1]
        desktop = channel(net.url, "desktop", desk_token)
        recorder = FakeRecorder(net.url, rec)
        call = Call(ctx.sip_port, 12.0)
        try:
            iid = answered(http, desk, "recording")
            recorder.hung = True  # the ack never leaves: the line is cut first
            results: list[httpx.Response] = []
            pause = threading.Thread(
                target=lambda: results.append(http.post(f"/api/interactions/{iid}/pause", headers=desk))
            )
            pause.start()
            recorder.channel.wait_for(lambda e: e.type == "screen.pause", 10, "screen.pause at the recorder")
            net.down()  # the network goes: both channels reset
            pause.join(30)
            assert results and results[0].status_code == 504, results
            recorder.close()
            desktop.close()
            net.up()
            # The network is back: the desktop resyncs to the unconfirmed pause...
            desktop = channel(net.url, "desktop", desk_token)
            _, state = desktop.wait_for(lambda e: e.type == "state", 10, "the desktop's state")
            assert state.data["call"]["pause"] == "unconfirmed"
            model = reduce(
                reduce(DesktopState(), LoginStarted()),
                LoginSucceeded(LoginResponse("t", 0.0, UserInfo(id=0, username=AGENT, role="agent", dn=DN))),
            )
            model = reduce(model, EventReceived(state, 1.0))
            assert build_view(model, 1.0).pause_label == RESUME_UNCONFIRMED
            # ...and the recorder, told the pause again, confirms it.
            back = time.monotonic()
            recorder = FakeRecorder(net.url, rec)
            _, confirmed = desktop.wait_for(
                lambda e: e.type == "call.updated" and e.data.get("pause") == "paused",
                10,
                "the pause confirmed after the cut",
                after=back,
            )
            model = reduce(model, EventReceived(confirmed, 2.0))
            assert build_view(model, 2.0).pause_label == RESUME
            r = http.post(f"/api/interactions/{iid}/resume", headers=desk)
            assert r.status_code == 200 and r.json()["voice"] == "recording", r.text
        finally:
            call.end()
            recorder.close()
            desktop.close()
