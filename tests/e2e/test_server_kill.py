"""Acceptance: SIGKILL of the server mid-call leaves a voice file playable up to at most 1 s before
the kill, and after a restart on the same data the interaction is marked ``interrupted`` with that
recording stored — not lost.

A real SIPp call streams speech to agent1's DN; after about 5 s of media the server process
itself (no wrapper shell: ``run_server`` starts the interpreter directly) gets SIGKILL.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
import wave
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest

from tests.e2e.harness import run_server, wait_until
from tests.e2e.peers import sipp_call

pytestmark = pytest.mark.e2e

AGENT, DN = "agent1", "1001"
MEDIA_BEFORE_KILL = 5.0
MAX_LOSS = 1.0  # the acceptance bound: playable up to at most this long before the kill
SPEECH_SECONDS = 6.0  # the loop SIPp streams (peers.sipp_call)


def _read_wav(data: bytes) -> tuple[int, np.ndarray[Any, np.dtype[np.int16]]]:
    with wave.open(io.BytesIO(data), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getcomptype()) == (1, 2, "NONE")
        return wav.getframerate(), np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")


def _pyav_samples(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(frame.samples for frame in container.decode(audio=0))


def _ffprobe(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,sample_rate,channels,duration",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        check=True,
    )
    streams: list[dict[str, Any]] = json.loads(out.stdout)["streams"]
    assert len(streams) == 1, streams
    return streams[0]


def _best_match(segment: np.ndarray[Any, Any], source: np.ndarray[Any, Any]) -> float:
    """Highest normalised correlation of ``segment`` with any cyclic shift of the looped ``source``."""
    seg = segment.astype(np.float64)
    looped = np.concatenate([source, source[: len(seg)]]).astype(np.float64)
    n = len(looped) + len(seg)
    corr = np.fft.irfft(np.fft.rfft(looped, n) * np.conj(np.fft.rfft(seg, n)), n)[: len(source)]
    energy = np.convolve(looped**2, np.ones(len(seg)), "valid")[: len(source)]
    return float(np.max(corr / np.sqrt(energy * np.sum(seg**2) + 1e-9)))


def _cmdline(pid: int) -> list[bytes]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")


def _rtp_workers_of(pid: int) -> list[int]:
    """The server's children, which must all be its RTP worker processes (no wrapper shell)."""
    children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    assert children, "the server runs no RTP worker"
    assert all(b"server.rtp.workers.worker" in _cmdline(c) for c in children), children
    return children


def _process_is_server(pid: int) -> bool:
    cmdline = _cmdline(pid)
    return b"server.cli" in cmdline and b"run" in cmdline


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")  # a zombie is dead, just not reaped


def _udp_port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_best_match_tells_the_signal_from_silence_and_noise() -> None:
    from server.sim.speech import speech_like_pcm

    source = speech_like_pcm(SPEECH_SECONDS)
    assert _best_match(np.roll(source, -12345)[:8000], source) > 0.99
    assert _best_match(np.zeros(8000), source) < 0.1
    noise = np.random.default_rng(2).normal(0, 3000, 8000)
    assert _best_match(noise, source) < 0.3


def test_sigkill_mid_call_keeps_the_recording_and_marks_it_interrupted(tmp_path: Path) -> None:
    from server.sim.speech import speech_like_pcm

    data_dir = tmp_path / "server"
    snapshot = tmp_path / "voice-at-kill.wav"
    with run_server(data_dir, TANDEM_SERVER_SCREEN_PERCENTAGE="0") as server:
        agent_token = server.token(AGENT, client="desktop", dn=DN)
        with (
            sipp_call(tmp_path, server.sip_port, DN, call_ms=60_000) as sipp,
            server.client("admin") as admin,
        ):

            def answered() -> dict[str, Any] | None:
                items = admin.get("/api/interactions").json()
                return items[0] if items and items[0]["answered_at"] is not None else None

            inter = wait_until(answered, 15, "the SIPp call answered")
            assert inter["state"] == "active", inter
            live_wav = data_dir / "live" / inter["id"] / "voice.wav"
            assert live_wav.exists(), f"no live voice file at {live_wav}"
            # Header syncs are paced from the answer, so a kill a whole number of seconds after it
            # lands just before a sync: the worst case for how much audio the header covers.
            time.sleep(max(0.0, inter["answered_at"] + MEDIA_BEFORE_KILL - time.time()))
            assert sipp.poll() is None, "SIPp ended before the kill"
            assert _process_is_server(server.proc.pid)
            workers = _rtp_workers_of(server.proc.pid)
            killed_at = time.time()
            os.kill(server.proc.pid, signal.SIGKILL)
            assert server.proc.wait(5) == -signal.SIGKILL
            wait_until(lambda: not any(map(_running, workers)), 5, "the RTP workers to end with the server")
            # Recovery moves the file into storage; keep what the kill left for the checks below.
            shutil.copyfile(live_wav, snapshot)
        assert _udp_port_free(server.sip_port), "something still holds the SIP port after the kill"
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{server.url}/healthz", timeout=2)
        shutil.copyfile(server.log_path, tmp_path / "server-before-kill.log")

    # What the kill left on disk: a valid WAV covering the call up to ≤ 1 s before the kill.
    raw = snapshot.read_bytes()
    assert raw[:4] == b"RIFF" and raw[8:16] == b"WAVEfmt ", raw[:16]
    assert int.from_bytes(raw[4:8], "little") == 36 + int.from_bytes(raw[40:44], "little")
    rate, at_kill = _read_wav(raw)
    assert rate == 8000
    duration = len(at_kill) / rate
    since_answer = killed_at - inter["answered_at"]
    assert duration >= since_answer - MAX_LOSS, (
        f"recording ends {since_answer - duration:.3f} s before the kill (bound {MAX_LOSS} s)"
    )
    assert duration <= since_answer + 0.1, f"{duration:.3f} s of audio for {since_answer:.3f} s of call"
    assert _pyav_samples(snapshot) == len(at_kill)
    probe = _ffprobe(snapshot)
    assert (probe["codec_name"], probe["sample_rate"], probe["channels"]) == ("pcm_s16le", "8000", 1)
    assert float(probe["duration"]) == pytest.approx(duration, abs=0.01)
    source = speech_like_pcm(SPEECH_SECONDS)
    tail = at_kill[-2 * rate :]
    assert _best_match(tail, source) > 0.8, "the last 2 s before the kill are not the streamed speech"

    # Restart on the same data: interrupted, its voice stored and served, nothing live left over.
    with run_server(data_dir, TANDEM_SERVER_SCREEN_PERCENTAGE="0") as server:
        with server.client("supervisor") as sup:

            def recovered() -> dict[str, Any] | None:
                item = sup.get(f"/api/interactions/{inter['id']}").json()
                return item if item["state"] == "interrupted" and "voice" in item["media"] else None

            try:
                after = wait_until(recovered, 20, "the interrupted interaction with its voice")
            except AssertionError:
                raise AssertionError(f"server log after restart:\n{server.log()}") from None
            r = sup.get(f"/api/interactions/{inter['id']}/media/voice")
            assert r.status_code == 200 and r.headers["content-type"].startswith("audio/wav")
            assert len(sup.get("/api/interactions").json()) == 1
        with server.client("admin") as admin:
            audit = admin.get("/api/audit", params={"target_id": inter["id"]}).json()
        agent_call = httpx.get(
            f"{server.url}/api/agent/call", headers={"Authorization": f"Bearer {agent_token}"}, timeout=10
        )
        log_text = server.log_path.read_text(errors="replace")

    assert (after["caller"], after["dn"], after["agent"]) == ("Carol Customer <+15550123>", DN, AGENT)
    assert after["answered_at"] == pytest.approx(inter["answered_at"])
    assert after["ended_at"] is not None and after["ended_at"] >= after["answered_at"]
    assert after["media"] == ["voice"] and after["pauses"] == []
    stored_rate, stored = _read_wav(r.content)
    assert stored_rate == rate and len(stored) >= len(at_kill)
    assert np.array_equal(stored[: len(at_kill)], at_kill), "recovery changed the recorded audio"
    with sqlite3.connect(data_dir / "tandem.db") as db:
        started, stored_duration = db.execute(
            "SELECT started_at, duration FROM media_files WHERE interaction_id = ? AND kind = 'voice'",
            (inter["id"],),
        ).fetchone()
    assert started == pytest.approx(inter["answered_at"], abs=1e-6), "voice not aligned to the answer"
    assert stored_duration == pytest.approx(len(stored) / rate, abs=1e-3)
    assert not (data_dir / "live" / inter["id"] / "voice.wav").exists(), "live file left behind"
    reads = [a for a in audit if a["action"] == "recording.read"]
    assert reads and all(a["username"] == "supervisor" and a["outcome"] == "allowed" for a in reads), audit
    assert agent_call.status_code == 200 and agent_call.json() is None, agent_call.text
    assert f"interaction {inter['id']} was interrupted" in log_text
    assert "media job" not in log_text and "Traceback" not in log_text, log_text[-3000:]
