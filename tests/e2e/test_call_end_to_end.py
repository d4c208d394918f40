"""One real call through every part: SIPp → server → agent desktop (pytest-qt) → recorder service
(Xvfb) → upload → mux, then checked from the files the server holds."""

from __future__ import annotations

import wave

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLabel

from server.media.probe import mp4_streams, video_frame_times
from tests.e2e.conftest import RecordedCall

pytestmark = pytest.mark.e2e


def test_voice_matches_call_length_and_pause_is_silent(recorded_call: RecordedCall) -> None:
    inter = recorded_call.interaction
    path, started = recorded_call.media["voice"]
    assert started == pytest.approx(inter["answered_at"], abs=1e-6)
    with wave.open(str(path), "rb") as wav:
        rate = wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    call_length = inter["ended_at"] - inter["answered_at"]
    assert abs(len(samples) / rate - call_length) <= 0.2, (len(samples) / rate, call_length)
    assert len(inter["pauses"]) == 1
    pause = inter["pauses"][0]
    assert pause["ended_at"] - pause["started_at"] >= 2.0
    lo = int((pause["started_at"] - inter["answered_at"]) * rate) + 160
    hi = int((pause["ended_at"] - inter["answered_at"]) * rate) - 160
    assert hi - lo > rate, "pause span too short to check"
    assert not np.any(samples[lo:hi]), "audio inside the paused span"
    before = samples[rate : lo - rate].astype(np.float64)
    after = samples[hi + rate : hi + 3 * rate].astype(np.float64)
    assert np.sqrt(np.mean(before**2)) > 100 and np.sqrt(np.mean(after**2)) > 100, "no audio around the pause"
    assert "paused" in recorded_call.desktop_texts["voiceStateLabel"].lower()


def test_screen_covers_call_and_acw_without_frames_in_pause(recorded_call: RecordedCall) -> None:
    inter = recorded_call.interaction
    # The recorder uploads the screen as segments (docs/screen-segments.md), each on the server clock.
    segments = recorded_call.screen_segments
    assert segments, "no screen segment stored"
    times = [started + t for path, started in segments for t in video_frame_times(path)]
    assert len(times) > 20
    assert times == sorted(times)
    assert times[0] <= inter["answered_at"] + 1.5, "screen started late"
    assert times[-1] >= inter["acw_ended_at"] - 1.0, "screen does not reach the end of ACW"
    assert inter["acw_ended_at"] - inter["ended_at"] >= 2.5
    pause = inter["pauses"][0]
    inside = [t for t in times if pause["started_at"] + 0.002 <= t < pause["ended_at"] - 0.002]
    assert inside == [], f"{len(inside)} frames captured inside the pause"


def test_muxed_file_has_both_streams_and_download_is_audited(recorded_call: RecordedCall) -> None:
    server, inter = recorded_call.server, recorded_call.interaction
    path, _ = recorded_call.media["muxed"]
    kinds = {(s.kind, s.codec) for s in mp4_streams(path)}
    assert ("video", "h264") in kinds and ("audio", "aac") in kinds
    with server.client("supervisor") as sup:
        r = sup.get(f"/api/interactions/{inter['id']}/media/muxed")
        assert r.status_code == 200 and r.content == path.read_bytes()
        r = sup.get(f"/api/interactions/{inter['id']}/media/muxed", headers={"Range": "bytes=100-199"})
        assert r.status_code == 206 and len(r.content) == 100
    with server.client("admin") as admin:
        records = admin.get("/api/audit", params={"target_id": inter["id"]}).json()
    reads = [a for a in records if a["action"] == "recording.read" and a["username"] == "supervisor"]
    assert len(reads) >= 2 and all(a["outcome"] == "allowed" for a in reads)


def test_bad_sip_request_gets_400_and_server_stays_up(recorded_call: RecordedCall) -> None:
    import socket

    server = recorded_call.server
    bad = (
        b"INVITE sip:1001@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKbad\r\n"
        b"From: <sip:x@y>;tag=1\r\nTo: <sip:1001@127.0.0.1>\r\nCall-ID: bad-1\r\nCSeq: notanumber INVITE\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(b"\x00\xffgarbage", ("127.0.0.1", server.sip_port))
        sock.sendto(bad, ("127.0.0.1", server.sip_port))
        reply, _ = sock.recvfrom(65535)
    assert reply.startswith(b"SIP/2.0 400"), reply[:80]
    with server.client("admin") as admin:
        assert admin.get("/healthz").status_code == 200
        assert all(i["call_id"] != "bad-1" for i in admin.get("/api/interactions").json())
    assert server.proc.poll() is None


def test_desktop_alignment(qapp: QApplication) -> None:
    """The window's labels are plain text (no rich text injection from caller names)."""
    from agent_app.widgets.main_window import MainWindow

    window = MainWindow()
    try:
        for label in window.findChildren(QLabel):
            assert label.textFormat() in (Qt.TextFormat.PlainText, Qt.TextFormat.AutoText)
    finally:
        window.shutdown()
        window.close()


def test_a_fresh_token_works_at_once(recorded_call: RecordedCall) -> None:
    """The login's transaction is committed before its response leaves (no 401 race)."""
    import httpx

    server = recorded_call.server
    password = server.creds["supervisor"]["password"]
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for _ in range(100):
            token = http.post("/api/auth/login", json={"username": "supervisor", "password": password}).json()
            r = http.get("/api/me", headers={"Authorization": f"Bearer {token['token']}"})
            assert r.status_code == 200, r.text
