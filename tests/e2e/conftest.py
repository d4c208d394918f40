"""End-to-end fixtures: one real call through every part — SIPp → server → agent desktop
(pytest-qt) → recorder service (Xvfb) → upload → mux — recorded once per session and shared."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication
from PySide6.QtWidgets import QApplication, QLabel, QPushButton

from tests.e2e.harness import (
    ROOT,
    ServerProcess,
    run_recorder,
    run_server,
    wait_until,
    xvfb_with_changing_content,
)
from tests.ports import free_ports

SCENARIO = ROOT / "tests" / "sipp" / "uac_call_duration.xml"
CALL_MS = 15000


@dataclass
class RecordedCall:
    server: ServerProcess
    interaction: dict[str, Any]
    media: dict[str, tuple[Path, float]]  # kind -> (file in storage, server time of its t=0)
    desktop_texts: dict[str, str]
    screen_segments: list[tuple[Path, float]]  # (file in storage, server time of its pts 0), in time order


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


def _enabled(window: Any, name: str) -> bool:
    button = window.findChild(QPushButton, name)
    return button is not None and bool(button.isEnabled())


def _click(window: Any, name: str) -> None:
    button = window.findChild(QPushButton, name)
    assert button is not None and button.isEnabled(), (
        f"{name} is not clickable; desktop state: {window.model.state}"
    )
    button.click()


def _speech_wav(path: Path) -> None:
    """8 kHz μ-law WAV of the server's speech-like test signal, for SIPp's rtp_stream."""
    from server.sim.speech import speech_like_pcm

    pcm_path = path.with_suffix(".raw")
    speech_like_pcm(6.0).astype("<i2").tofile(pcm_path)
    subprocess.run(
        [
            "sox",
            "-t",
            "raw",
            "-r",
            "8000",
            "-e",
            "signed",
            "-b",
            "16",
            "-c",
            "1",
            str(pcm_path),
            "-e",
            "u-law",
            str(path),
        ],
        check=True,
    )


def _media_rows(data_dir: Path, interaction_id: str) -> dict[str, tuple[Path, float]]:
    with sqlite3.connect(data_dir / "tandem.db") as db:
        rows = db.execute(
            "SELECT kind, storage_key, started_at FROM media_files WHERE interaction_id = ?",
            (interaction_id,),
        ).fetchall()
    return {kind: (data_dir / "storage" / key, started) for kind, key, started in rows}


def _segment_rows(data_dir: Path, interaction_id: str) -> list[tuple[Path, float]]:
    with sqlite3.connect(data_dir / "tandem.db") as db:
        rows = db.execute(
            "SELECT storage_key, started_at FROM screen_segments WHERE interaction_id = ?"
            " ORDER BY started_at, run, seq",
            (interaction_id,),
        ).fetchall()
    return [(data_dir / "storage" / key, started) for key, started in rows]


@pytest.fixture(scope="session")
def recorded_call(tmp_path_factory: pytest.TempPathFactory, qapp: QApplication) -> Iterator[RecordedCall]:
    for tool in ("sipp", "sox", "Xvfb"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is required (the test command installs it)")
    from agent_app.widgets.main_window import MainWindow

    work = tmp_path_factory.mktemp("e2e")
    audio = work / "speech.wav"
    _speech_wav(audio)
    with (
        run_server(work / "server", TANDEM_SERVER_ACW_LIMIT_SECONDS="120") as server,
        xvfb_with_changing_content() as display,
        run_recorder(server, "agent1", display, work / "recorder") as recorder_log,
    ):
        window = MainWindow()
        window.show()
        try:
            window.login_widget.set_values(server.url, "agent1", "1001", server.creds["agent1"]["password"])
            window.login_widget.submit()
            with server.client("supervisor") as sup:
                wait_until(
                    lambda: any(
                        a["dn"] == "1001" and {"desktop", "recorder"} <= set(a["connected"])
                        for a in sup.get("/api/agents").json()
                    ),
                    30,
                    "desktop login and recorder connection",
                    pump=_pump,
                )
            sipp = subprocess.Popen(
                [
                    "sipp",
                    f"127.0.0.1:{server.sip_port}",
                    "-sf",
                    str(SCENARIO),
                    "-s",
                    "1001",
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
                    "-trace_err",
                    "-error_file",
                    str(work / "sipp_errors.log"),
                ],
                cwd=work,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            wait_until(
                lambda: (
                    window.model.state.call is not None
                    and "Carol Customer <+15550123>" in _text(window, "callerLabel")
                ),
                15,
                "the call on the desktop",
                pump=_pump,
            )
            _hold(3.0)
            _click(window, "pauseButton")
            wait_until(
                lambda: (
                    "paused" in _text(window, "voiceStateLabel").lower()
                    and _text(window, "pauseButton") == "Resume"
                ),
                10,
                "confirmed pause",
                pump=_pump,
            )
            paused_texts = {
                n: _text(window, n) for n in ("voiceStateLabel", "screenStateLabel", "pauseButton")
            }
            _hold(2.5)
            _click(window, "pauseButton")
            wait_until(lambda: _text(window, "pauseButton") == "Pause", 10, "confirmed resume", pump=_pump)
            out, _ = sipp.communicate(timeout=60)
            assert sipp.returncode == 0, out.decode(errors="replace")[-3000:]
            wait_until(
                lambda: _enabled(window, "doneButton"),
                10,
                "ACW on the desktop",
                pump=_pump,
            )
            _hold(3.0)
            _click(window, "doneButton")
            with server.client("admin") as admin:

                def interaction() -> dict[str, Any] | None:
                    items = admin.get("/api/interactions").json()
                    return items[0] if items and "muxed" in items[0]["media"] else None

                try:
                    inter = wait_until(interaction, 30, "voice, screen and muxed media", pump=_pump)
                except AssertionError:
                    raise AssertionError(
                        f"server log:\n{server.log()}\nrecorder log:\n{recorder_log.read_text()[-4000:]}"
                    ) from None
            yield RecordedCall(
                server,
                inter,
                _media_rows(server.data_dir, inter["id"]),
                paused_texts,
                _segment_rows(server.data_dir, inter["id"]),
            )
        finally:
            window.shutdown()
            window.close()
