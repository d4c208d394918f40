"""Issue 13's acceptance for the secure pause's failure paths, with every part real: ``tandem-server
run``, a SIPp call streaming speech to agent1's DN, the agent desktop (the real window, pytest-qt)
and the real recorder service capturing an Xvfb display — which is then killed (SIGKILL) or hung
(SIGSTOP) before the agent clicks Pause:

* the pause still silences the voice at once (the stored span starts at the click, the WAV is
  silent inside it);
* the desktop's warning names the screen, and its button offers Resume (it never falls back to a
  Pause that does nothing);
* Resume works without the recorder and the stored WAV has audio again after the resume.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PySide6.QtWidgets import QApplication, QLabel, QPushButton

from tests.e2e.conftest import _hold, _pump, _speech_wav
from tests.e2e.harness import (
    ROOT,
    ServerProcess,
    run_server,
    stop_process,
    wait_until,
    xvfb_with_changing_content,
)
from tests.ports import free_ports

pytestmark = pytest.mark.e2e
AGENT, DN = "agent1", "1001"
CALL_MS = 16000


@contextlib.contextmanager
def recorder(server: ServerProcess, display: str, workdir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The recorder service, enrolled with a one-time code, running on ``display``; yields its process
    (the test kills or stops it). Never left behind, even stopped."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    env.update(
        {"DISPLAY": display, "PYTHONPATH": str(ROOT), "TANDEM_RECORDER_KEYRING_FILE": str(workdir / "kr")}
    )
    cmd = [sys.executable, "-m", "recorder_service.main"]
    with server.client("admin") as admin:
        r = admin.post("/api/admin/recorders/enrolments", json={"username": AGENT})
        r.raise_for_status()
        code = str(r.json()["code"])
    subprocess.run(
        [*cmd, "login", "--server", server.url, "--enroll-code-stdin"],
        env=env,
        input=(code + "\n").encode(),
        check=True,
        capture_output=True,
    )
    with open(workdir / "recorder.log", "wb") as log:
        proc = subprocess.Popen(
            [*cmd, "run", "--server", server.url, "--spool", str(workdir / "spool")],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        stop_process(proc)


def widget_text(window: Any, name: str) -> str:
    widget = window.findChild(QLabel, name) or window.findChild(QPushButton, name)
    assert widget is not None, name
    return str(widget.text())


def connected(server: ServerProcess) -> set[str]:
    with server.client("supervisor") as sup:
        agents = [a for a in sup.get("/api/agents").json() if a["dn"] == DN]
    return set(agents[0]["connected"]) if agents else set()


def stored(server: ServerProcess, iid: str) -> tuple[dict[str, Any], Path]:
    with server.client("supervisor") as sup:

        def voice() -> dict[str, Any] | None:
            r = sup.get(f"/api/interactions/{iid}")
            body: dict[str, Any] = r.json()
            return body if r.status_code == 200 and "voice" in body["media"] else None

        inter = wait_until(voice, 60, "the stored voice", pump=_pump)
    with contextlib.closing(sqlite3.connect(server.data_dir / "tandem.db", timeout=30)) as db:
        (key,) = db.execute(
            "SELECT storage_key FROM media_files WHERE interaction_id = ? AND kind = 'voice'", (iid,)
        ).fetchone()
    return inter, server.data_dir / "storage" / key


def supervisor_pause_marker(server: ServerProcess, iid: str) -> str:
    """The pause marker's text on the supervisor's player page (the web timeline)."""
    from tests.e2e.browser import chromium, log_in, new_page

    with chromium() as browser, new_page(browser) as page:
        log_in(page, server.url, "supervisor", server.creds["supervisor"]["password"])
        page.goto(f"{server.url}/#/recordings/{iid}")
        marker = page.locator('#markers .marker[data-kind="pause-start"]')
        marker.wait_for()
        return str(marker.inner_text())


def samples(path: Path) -> tuple[int, np.ndarray[Any, Any]]:
    with wave.open(str(path), "rb") as wav:
        rate = wav.getframerate()
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, wav.getnchannels())
    return rate, data


@pytest.mark.parametrize("fault", ["killed", "hung"])
def test_pause_with_the_recorder_down_silences_at_once_warns_and_resume_restores_the_voice(
    fault: str, tmp_path: Path, qapp: QApplication
) -> None:
    from agent_app.widgets.main_window import MainWindow

    for tool in ("sipp", "sox", "Xvfb"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            pytest.fail(f"{tool} is required (the test command installs it)")
    _speech_wav(tmp_path / "speech.wav")
    with (
        run_server(tmp_path / "server", TANDEM_SERVER_ACW_LIMIT_SECONDS="120") as server,
        xvfb_with_changing_content() as display,
        recorder(server, display, tmp_path / "recorder") as rec,
    ):
        window = MainWindow()
        window.show()
        try:
            window.login_widget.set_values(server.url, AGENT, DN, server.creds[AGENT]["password"])
            window.login_widget.submit()
            wait_until(
                lambda: {"desktop", "recorder"} <= connected(server), 30, "desktop and recorder", pump=_pump
            )
            sipp = subprocess.Popen(
                [
                    "sipp",
                    f"127.0.0.1:{server.sip_port}",
                    "-sf",
                    str(ROOT / "tests" / "sipp" / "uac_call_duration.xml"),
                    "-s",
                    DN,
                    "-m",
                    "1",
                    "-d",
                    str(CALL_MS),
                    "-i",
                    "127.0.0.1",
                    "-mi",
                    "127.0.0.1",
                    "-mp",
                    str(free_ports(4)),
                    "-timeout",
                    "60",
                    "-nostdin",
                ],
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            try:
                wait_until(
                    lambda: (
                        window.model.state.call is not None and window.model.state.call.screen == "recording"
                    ),
                    20,
                    "the call on the desktop, its screen recording",
                    pump=_pump,
                )
                iid = window.model.state.call.interaction_id if window.model.state.call else ""
                _hold(2.0)
                if fault == "killed":
                    rec.kill()
                    rec.wait(10)
                    wait_until(
                        lambda: "recorder" not in connected(server), 10, "the recorder gone", pump=_pump
                    )
                else:
                    os.kill(rec.pid, signal.SIGSTOP)  # hung: its connection stays open, it answers nothing
                clicked = time.time()
                window.pause_button.click()
                wait_until(
                    lambda: widget_text(window, "pauseButton") == "Resume (pause NOT confirmed)",
                    15,
                    "the unconfirmed pause on the desktop",
                    pump=_pump,
                )
                warning = widget_text(window, "pauseWarningLabel")
                assert warning.startswith("Screen pause NOT confirmed"), warning
                assert widget_text(window, "screenStateLabel") not in ("", "—")
                assert "paused" not in widget_text(window, "voiceStateLabel").lower()  # never "paused"
                _hold(2.5)
                window.pause_button.click()  # Resume, with the recorder still down
                wait_until(
                    lambda: (
                        widget_text(window, "voiceStateLabel") == "Recording"
                        and widget_text(window, "pauseButton") == "Pause"
                    ),
                    10,
                    "the voice recording again",
                    pump=_pump,
                )
                out, _ = sipp.communicate(timeout=60)
                assert sipp.returncode == 0, out.decode(errors="replace")[-3000:]
            finally:
                if sipp.poll() is None:
                    sipp.kill()
                    sipp.wait(5)
            wait_until(lambda: window.done_button.isEnabled(), 15, "ACW on the desktop", pump=_pump)
            window.done_button.click()
            inter, path = stored(server, iid)
            pause_marker = supervisor_pause_marker(server, iid)
        finally:
            window.shutdown()
            window.close()
    [span] = inter["pauses"]
    assert span["warning"].startswith("Screen pause NOT confirmed"), span  # on the supervisor's timeline
    assert "Screen pause NOT confirmed" in pause_marker, pause_marker  # and on the player's marker
    # The voice was silenced at once: the span starts at the click (the request's arrival).
    assert -0.05 <= span["started_at"] - clicked <= 0.5, (span["started_at"], clicked)
    rate, data = samples(path)
    lo = int((span["started_at"] - inter["answered_at"]) * rate) + 160
    hi = int((span["ended_at"] - inter["answered_at"]) * rate) - 160
    assert hi - lo > 2 * rate, "pause span too short to check"
    assert not np.any(data[lo:hi]), "audio inside the paused span"
    after = data[hi + 160 : hi + 160 + 3 * rate].astype(np.float64)
    before = data[max(0, lo - 2 * rate) : lo - 160].astype(np.float64)
    assert len(after) >= 2 * rate, "the recording does not go on after the resume"
    rms_after, rms_before = float(np.sqrt(np.mean(after**2))), float(np.sqrt(np.mean(before**2)))
    assert rms_before > 100 and rms_after > 100, (
        f"RMS before the pause {rms_before:.0f}, after the resume {rms_after:.0f}"
    )


def test_sigkill_mid_pause_the_recovered_span_is_closed_at_the_last_audio_and_nothing_after_it_is_heard(
    tmp_path: Path,
) -> None:
    """A server killed (SIGKILL) while the agent's pause is open: the span is open in the database;
    after the restart it is closed at the recording's end (the last audio) — the pause is never
    lifted by the crash, the voice stays silent from the pause to the end — and the desktop's resync
    finds no call (no stuck Pause/Resume)."""
    from tests.e2e.peers import sipp_call

    data_dir = tmp_path / "server"
    with run_server(data_dir, TANDEM_SERVER_SCREEN_PERCENTAGE="0") as server:
        desk = {"Authorization": f"Bearer {server.token(AGENT, client='desktop', dn=DN)}"}
        with sipp_call(tmp_path, server.sip_port, DN, call_ms=60_000), server.client("admin") as admin:

            def answered() -> dict[str, Any] | None:
                items = admin.get("/api/interactions").json()
                return items[0] if items and items[0]["answered_at"] is not None else None

            inter = wait_until(answered, 15, "the SIPp call answered")
            time.sleep(max(0.0, inter["answered_at"] + 2.5 - time.time()))  # speech before the pause
            r = admin.post(f"/api/interactions/{inter['id']}/pause", headers=desk)
            assert r.status_code == 200 and r.json()["pause"] == "paused", r.text
            with contextlib.closing(sqlite3.connect(data_dir / "tandem.db", timeout=30)) as db:
                assert db.execute(
                    "SELECT ended_at FROM pause_spans WHERE interaction_id = ?", (inter["id"],)
                ).fetchall() == [(None,)]
            time.sleep(2.5)  # the pause goes on; then the server dies under it
            os.kill(server.proc.pid, signal.SIGKILL)
            assert server.proc.wait(5) == -signal.SIGKILL
    with (
        run_server(data_dir, TANDEM_SERVER_SCREEN_PERCENTAGE="0") as server,
        server.client("supervisor") as sup,
    ):

        def recovered() -> dict[str, Any] | None:
            item: dict[str, Any] = sup.get(f"/api/interactions/{inter['id']}").json()
            return item if item["state"] == "interrupted" and "voice" in item["media"] else None

        after = wait_until(recovered, 30, "the interrupted interaction with its voice")
        r = httpx.get(f"{server.url}/api/agent/call", headers=desk, timeout=10)
        assert r.status_code == 200 and r.json() is None  # the desktop's resync: no call, nothing stuck
        _, path = stored(server, inter["id"])
    [span] = after["pauses"]
    assert span["ended_at"] is not None and span["ended_at"] == pytest.approx(after["ended_at"], abs=1e-6)
    rate, data = samples(path)
    lo = int((span["started_at"] - after["answered_at"]) * rate) + 160
    assert len(data) - lo > rate, "less than a second recorded after the pause started"
    assert not np.any(data[lo:]), "audio after the pause's start: the crash lifted the pause"
    assert float(np.sqrt(np.mean(data[: lo - 160].astype(np.float64) ** 2))) > 100, (
        "no speech before the pause"
    )
