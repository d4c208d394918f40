"""Acceptance (issue 12, item 6): endpoint audio on a PulseAudio null sink.

A private PulseAudio server (temp runtime dir) with two null sinks: ``agent_out`` is the default
sink (what the agent hears: its monitor is the recorder's right channel) and ``mic_in``, whose
monitor is the default source (the agent's "microphone": left channel). The test plays 1 kHz
tone bursts into each at known server times with sounddevice (the start of each burst is taken
from PortAudio's DAC time of its first sample) while a real capture session records with
endpoint audio on; a pause covers a burst on each. The segments' audio decoded on the server
clock: each burst's onset within ±40 ms of when it was played (the error is printed), and the
bursts inside the pause are absent (no audio packet at all in the pause: the server's check).
The derived M4A the server makes has the same onsets.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recorder_service.encoder import AudioFormat, ScreenEncoder
from recorder_service.endpoint_audio import EndpointAudio
from recorder_service.session import CaptureSession
from recorder_service.spool import Spool
from server.media.endpoint_audio_track import build_endpoint_audio
from server.media.segment_validation import (
    InteractionWindow,
    Span,
    check_segment_times,
    validate_segment_file,
)
from tests.unit.test_endpoint_audio import onsets
from tests.unit.test_recorder_session import ScriptedGrabber, wait_for

RATE = 48000
OFFSET = 1234.5  # the server clock is not this PC's: everything is stamped in server time
TOLERANCE = 0.040


def server_now() -> float:
    return time.time() + OFFSET


@pytest.fixture
def pulse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    if shutil.which("pulseaudio") is None or shutil.which("pactl") is None:
        pytest.fail("pulseaudio and pactl are needed (scripts/system-packages test installs them)")
    runtime = tmp_path / "pulse-run"
    home = tmp_path / "pulse-home"
    runtime.mkdir(mode=0o700)
    home.mkdir()
    socket = runtime / "native"
    env = {
        **os.environ,
        "XDG_RUNTIME_DIR": str(runtime),
        "HOME": str(home),
        "PULSE_SERVER": f"unix:{socket}",
    }
    log = (tmp_path / "pulseaudio.log").open("w")
    server = subprocess.Popen(
        [
            "pulseaudio",
            "-n",  # no default.pa: only what is loaded here (no real hardware, no X11, no D-Bus)
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--use-pid-file=no",
            "--disallow-module-loading=no",
            f"--load=module-native-protocol-unix socket={socket} auth-anonymous=1",
            "--load=module-null-sink sink_name=agent_out rate=48000",
            "--load=module-null-sink sink_name=mic_in rate=48000",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:

        def up() -> bool:
            assert server.poll() is None, f"pulseaudio exited: {(tmp_path / 'pulseaudio.log').read_text()}"
            return subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode == 0

        wait_for(up, 30.0, "PulseAudio to answer")
        for args in (["set-default-sink", "agent_out"], ["set-default-source", "mic_in.monitor"]):
            subprocess.run(["pactl", *args], env=env, check=True, capture_output=True)
        for key in ("XDG_RUNTIME_DIR", "PULSE_SERVER"):
            monkeypatch.setenv(key, env[key])
        import sounddevice

        # PortAudio lists devices once: list them again now that the server is up.
        sounddevice._terminate()  # sounddevice's documented way to re-scan devices
        sounddevice._initialize()
        yield env
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
        log.close()


class TonePlayer:
    """Plays 1 kHz bursts into one sink at requested server times; ``started`` records when each
    burst's first sample actually reached the sink (server time of its DAC time)."""

    def __init__(self, sink: str, bursts: list[float], length: float = 0.3) -> None:
        import sounddevice

        self._bursts = bursts
        self._length = round(length * RATE)
        self.started: list[float] = []
        self.latencies: list[float] = []
        self._current: tuple[int, int] | None = None  # (burst index, samples played)
        previous = os.environ.get("PULSE_SINK")
        os.environ["PULSE_SINK"] = sink
        try:
            self._stream = sounddevice.OutputStream(
                samplerate=RATE,
                channels=1,
                dtype="float32",
                blocksize=480,
                latency="low",
                device="pulse",
                callback=self._callback,
            )
        finally:
            if previous is None:
                os.environ.pop("PULSE_SINK", None)
            else:
                os.environ["PULSE_SINK"] = previous
        self._stream.start()

    def _callback(self, out: np.ndarray, frames: int, info: Any, _status: Any) -> None:
        now = server_now()
        latency = info.outputBufferDacTime - info.currentTime
        self.latencies.append(latency)
        dac = now + latency  # server time the first sample of this buffer is heard
        out.fill(0.0)
        pos = 0
        while pos < frames:
            if self._current is None:
                index = len(self.started)
                if index >= len(self._bursts):
                    return
                k = max(pos, round((self._bursts[index] - dac) * RATE))
                if k >= frames:
                    return
                self.started.append(dac + k / RATE)
                self._current, pos = (index, 0), k
            _, done = self._current
            n = min(frames - pos, self._length - done)
            t = (done + np.arange(n)) / RATE
            out[pos : pos + n, 0] = 0.5 * np.sin(2 * np.pi * 1000 * t)
            pos += n
            done += n
            self._current = None if done >= self._length else (self._current[0], done)

    def close(self) -> None:
        self._stream.stop()
        self._stream.close()


def channel_grid(refs: list[tuple[Path, float]], origin: float, seconds: float) -> np.ndarray:
    """Every segment's decoded audio placed at its server time, from ``origin``."""
    from server.media.endpoint_audio_track import segment_audio

    grid = np.zeros((round(seconds * RATE), 2), np.float32)
    for path, started_at in refs:
        for at, samples in segment_audio(path):
            i = round((started_at + at - origin) * RATE)
            if 0 <= i < len(grid):
                grid[i : i + len(samples)] = samples[: len(grid) - i]
    return grid


def test_tone_on_the_server_clock_and_absent_in_the_pause(pulse: dict[str, str], tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    audio = EndpointAudio(server_now)
    session = CaptureSession(
        "i1",
        spool=spool,
        server_now=server_now,
        grabber=ScriptedGrabber(),
        encoder_factory=lambda path: ScreenEncoder(path, fps=5, audio=AudioFormat()),
        run="r1",
        fps=5.0,
        hold=0.0,
        audio=audio,
    )
    t0 = server_now()
    session.start()
    assert audio.sources == ["microphone", "what the agent hears"], audio.error
    # Bursts relative to t0: heard at +3.0 and +7.0 (in the pause), microphone at +3.8 and +7.4.
    pause_at, resume_at = t0 + 6.0, t0 + 9.0
    heard = TonePlayer("agent_out", [t0 + 3.0, t0 + 7.0])
    mic = TonePlayer("mic_in", [t0 + 3.8, t0 + 7.4])
    try:
        wait_for(lambda: server_now() >= pause_at, 30.0, "the pause time")
        session.pause(pause_at)
        wait_for(lambda: server_now() >= resume_at, 30.0, "the resume time")
        session.resume(resume_at)
        wait_for(lambda: len(heard.started) == 2 and len(mic.started) == 2, 30.0, "the bursts to play")
        wait_for(lambda: server_now() >= resume_at + 2.0, 30.0, "audio after the resume")
    finally:
        heard.close()
        mic.close()
    end = server_now()
    assert session.stop(end) == ""
    print(f"\nDAC latency reported by PortAudio: {np.median(heard.latencies) * 1000:.1f} ms (median)")
    print(f"audio blocks dropped: {audio.drops}")
    refs = [(r.path, r.started_at) for r in sorted(spool.ready(), key=lambda r: r.started_at)]
    assert len(refs) == 2, "one segment before the pause, one after"
    # The server accepts every segment: no audio packet (nor frame) inside the pause.
    window = InteractionWindow(t0 - 1, end + 1, (Span(pause_at, resume_at),))
    for path, started_at in refs:
        media = validate_segment_file(path)
        assert media.has_audio
        check_segment_times(started_at, media, window, start_slack=2, end_slack=5)
    grid = channel_grid(refs, t0, end - t0 + 1)
    found = {ch: [t0 + s for s in onsets(grid[:, ch], threshold=0.05, min_gap=0.2)] for ch in (0, 1)}
    _check("recorded", found, heard, mic, t0, (pause_at, resume_at))
    # The server's derived track (offered beside the SIP voice) says the same.
    out = tmp_path / "endpoint.m4a"
    track = build_endpoint_audio(refs, out, started_at=t0, ended_at=end, pauses=[(pause_at, resume_at)])
    assert track is not None
    derived = channel_grid([(out, t0)], t0, end - t0 + 1)
    found = {ch: [t0 + s for s in onsets(derived[:, ch], threshold=0.05, min_gap=0.2)] for ch in (0, 1)}
    _check("derived track", found, heard, mic, t0, (pause_at, resume_at))


def _check(
    what: str,
    found: dict[int, list[float]],
    heard: TonePlayer,
    mic: TonePlayer,
    t0: float,
    pause: tuple[float, float],
) -> None:
    pause_at, resume_at = pause
    for channel, player, name in ((0, mic, "microphone"), (1, heard, "what the agent hears")):
        expected = [t for t in player.started if not pause_at <= t < resume_at]
        inside = [t for t in player.started if pause_at <= t < resume_at]
        assert len(inside) == 1, "the second burst was played inside the pause"
        errors = [f - e for f, e in zip(found[channel], expected, strict=False)]
        print(
            f"{what}, {name}: played at +{[round(t - t0, 3) for t in player.started]}, "
            f"found {len(found[channel])} onset(s), error {[f'{e * 1000:+.1f} ms' for e in errors]}"
        )
        assert len(found[channel]) == len(expected), f"{name}: onsets {found[channel]}, expected {expected}"
        assert all(abs(e) <= TOLERANCE for e in errors), f"{name}: onset errors {errors}"
        assert not any(pause_at <= f < resume_at for f in found[channel])
