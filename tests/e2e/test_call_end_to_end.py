"""One real call through every part: SIPp → server → agent desktop (pytest-qt) → recorder service
(Xvfb) → upload → mux, then checked from the files the server holds."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtWidgets import QApplication, QLabel, QPushButton

from server.media.probe import mp4_streams, video_frame_times
from tests.e2e.harness import ROOT, ServerProcess, run_recorder, run_server, wait_until, xvfb_with_changing_content

pytestmark = pytest.mark.e2e
SCENARIO = ROOT / "tests" / "sipp" / "uac_call_duration.xml"
CALL_MS = 15000


@dataclass
class RecordedCall:
    server: ServerProcess
    interaction: dict[str, Any]
    media: dict[str, tuple[Path, float]]  # kind -> (file in storage, server time of its t=0)
    desktop_texts: dict[str, str]


def _pump() -> None:
    QCoreApplication.processEvents()


def _hold(seconds: float) -> None:
    """Let time pass with the Qt event loop running."""
    end = time.monotonic() + seconds
    wait_until(lambda: time.monotonic() >= end, seconds + 5, f"{seconds} s to pass", step=0.02, pump=_pump)


def _text(window: Any, name: str) -> str:
    widget = window.findChild(QLabel, name) or window.findChild(QPushButton, name)
    assert widget is not None, f"desktop has no widget named {name}"
    return str(widget.text())


def _click(window: Any, name: str) -> None:
    button = window.findChild(QPushButton, name)
    assert button is not None and button.isEnabled(), f"{name} is not clickable; desktop state: {window.model.state}"
    button.click()


def _speech_wav(path: Path) -> None:
    """8 kHz μ-law WAV of the server's speech-like test signal, for SIPp's rtp_stream."""
    from server.sim.speech import speech_like_pcm

    pcm_path = path.with_suffix(".raw")
    speech_like_pcm(6.0).astype("<i2").tofile(pcm_path)
    subprocess.run(["sox", "-t", "raw", "-r", "8000", "-e", "signed", "-b", "16", "-c", "1", str(pcm_path),
                    "-e", "u-law", str(path)], check=True)


def _media_rows(data_dir: Path, interaction_id: str) -> dict[str, tuple[Path, float]]:
    with sqlite3.connect(data_dir / "tandem.db") as db:
        rows = db.execute("SELECT kind, storage_key, started_at FROM media_files WHERE interaction_id = ?",
                          (interaction_id,)).fetchall()
    return {kind: (data_dir / "storage" / key, started) for kind, key, started in rows}


@pytest.fixture(scope="module")
def recorded_call(tmp_path_factory: pytest.TempPathFactory, qapp: QApplication) -> Iterator[RecordedCall]:
    for tool in ("sipp", "sox", "Xvfb"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is required (the test command installs it)")
    from agent_app.widgets.main_window import MainWindow

    work = tmp_path_factory.mktemp("e2e")
    audio = work / "speech.wav"
    _speech_wav(audio)
    with run_server(work / "server", TANDEM_SERVER_ACW_LIMIT_SECONDS="120") as server, \
            xvfb_with_changing_content() as display, \
            run_recorder(server, "agent1", display, work / "recorder") as recorder_log:
        window = MainWindow()
        window.show()
        try:
            window.login_widget.set_values(server.url, "agent1", "1001", server.creds["agent1"]["password"])
            window.login_widget.submit()
            with server.client("supervisor") as sup:
                wait_until(lambda: any(a["dn"] == "1001" and {"desktop", "recorder"} <= set(a["connected"])
                                       for a in sup.get("/api/agents").json()),
                           30, "desktop login and recorder connection", pump=_pump)
            sipp = subprocess.Popen(
                ["sipp", f"127.0.0.1:{server.sip_port}", "-sf", str(SCENARIO), "-s", "1001", "-m", "1",
                 "-d", str(CALL_MS), "-i", "127.0.0.1", "-mi", "127.0.0.1",
                 "-mp", str(40000 + (server.sip_port % 2000) * 2), "-timeout", "60", "-nostdin",
                 "-trace_err", "-error_file", str(work / "sipp_errors.log")],
                cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            wait_until(lambda: window.model.state.call is not None and "Carol" in _text(window, "callerLabel"),
                       15, "the call on the desktop", pump=_pump)
            _hold(3.0)
            _click(window, "pauseButton")
            wait_until(lambda: "paused" in _text(window, "voiceStateLabel").lower()
                       and _text(window, "pauseButton") == "Resume", 10, "confirmed pause", pump=_pump)
            paused_texts = {n: _text(window, n) for n in ("voiceStateLabel", "screenStateLabel", "pauseButton")}
            _hold(2.5)
            _click(window, "pauseButton")
            wait_until(lambda: _text(window, "pauseButton") == "Pause", 10, "confirmed resume", pump=_pump)
            out, _ = sipp.communicate(timeout=60)
            assert sipp.returncode == 0, out.decode(errors="replace")[-3000:]
            wait_until(lambda: window.findChild(QPushButton, "doneButton").isEnabled(), 10, "ACW on the desktop",
                       pump=_pump)
            _hold(3.0)
            _click(window, "doneButton")
            with server.client("admin") as admin:
                def interaction() -> dict[str, Any] | None:
                    items = admin.get("/api/interactions").json()
                    return items[0] if items and "muxed" in items[0]["media"] else None

                try:
                    inter = wait_until(interaction, 30, "voice, screen and muxed media", pump=_pump)
                except AssertionError:
                    raise AssertionError(f"server log:\n{server.log()}\nrecorder log:\n"
                                         f"{recorder_log.read_text()[-4000:]}") from None
            yield RecordedCall(server, inter, _media_rows(server.data_dir, inter["id"]), paused_texts)
        finally:
            window.shutdown()
            window.close()


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
    before = samples[rate: lo - rate].astype(np.float64)
    after = samples[hi + rate: hi + 3 * rate].astype(np.float64)
    assert np.sqrt(np.mean(before**2)) > 100 and np.sqrt(np.mean(after**2)) > 100, "no audio around the pause"
    assert "paused" in recorded_call.desktop_texts["voiceStateLabel"].lower()


def test_screen_covers_call_and_acw_without_frames_in_pause(recorded_call: RecordedCall) -> None:
    inter = recorded_call.interaction
    path, started = recorded_call.media["screen"]
    times = [started + t for t in video_frame_times(path)]
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
    bad = (b"INVITE sip:1001@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKbad\r\n"
           b"From: <sip:x@y>;tag=1\r\nTo: <sip:1001@127.0.0.1>\r\nCall-ID: bad-1\r\nCSeq: notanumber INVITE\r\n"
           b"Content-Length: 0\r\n\r\n")
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
