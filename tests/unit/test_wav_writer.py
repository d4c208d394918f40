"""The crash-safe WAV writer: valid at every moment, exact when closed, ≤ 1 s behind after SIGKILL."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from server.errors import WavSizeLimitError, WavWriterError
from server.voice import wav_writer
from server.voice.wav_writer import WavWriter

REPO = Path(__file__).resolve().parents[2]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def read_wav(path: Path) -> tuple[wave._wave_params, np.ndarray]:
    with wave.open(str(path), "rb") as wav:
        params = wav.getparams()
        return params, np.frombuffer(wav.readframes(params.nframes), dtype="<i2")


def ramp(start: int, count: int) -> np.ndarray:
    return ((np.arange(start, start + count) % 20000) - 10000).astype(np.int16)


def test_new_file_is_a_valid_empty_wav(tmp_path: Path) -> None:
    path = tmp_path / "v.wav"
    writer = WavWriter(path)
    params, data = read_wav(path)
    assert (params.nchannels, params.sampwidth, params.framerate, params.nframes) == (1, 2, 8000, 0)
    assert len(data) == 0
    writer.close()


def test_close_writes_exact_sizes(tmp_path: Path) -> None:
    path = tmp_path / "v.wav"
    with WavWriter(path) as writer:
        for k in range(10):
            writer.write(ramp(k * 333, 333))
        assert writer.samples_written == 3330
    params, data = read_wav(path)
    assert params.nframes == 3330
    assert np.array_equal(data, ramp(0, 3330))
    assert path.stat().st_size == 44 + 2 * 3330


def test_header_follows_data_at_most_every_interval(tmp_path: Path) -> None:
    path = tmp_path / "v.wav"
    clock = FakeClock()
    writer = WavWriter(path, sync_interval=1.0, clock=clock)
    writer.write(ramp(0, 4000))
    assert read_wav(path)[0].nframes == 0  # within the interval the header is not rewritten
    clock.now = 1.0
    writer.write(ramp(4000, 4000))
    assert writer.wait_synced(10)  # fsync and header are the syncer thread's
    assert writer.samples_synced == 8000
    params, data = read_wav(path)
    assert params.nframes == 8000 and np.array_equal(data, ramp(0, 8000))
    writer.write(ramp(8000, 100))
    clock.now = 1.5
    writer.maybe_sync()
    assert writer.wait_synced(10) and read_wav(path)[0].nframes == 8000
    clock.now = 2.0
    writer.maybe_sync()  # a timer keeps the header current even when no samples arrive
    assert writer.wait_synced(10) and read_wav(path)[0].nframes == 8100
    writer.close()


def test_zero_overwrites_written_samples(tmp_path: Path) -> None:
    path = tmp_path / "v.wav"
    with WavWriter(path) as writer:
        writer.write(ramp(0, 1000))
        writer.zero(200, 700)
        writer.zero(900, 5000)  # clipped to what exists
        writer.write(ramp(1000, 10))
    data = read_wav(path)[1]
    expected = ramp(0, 1010)
    expected[200:700] = 0
    expected[900:1000] = 0
    assert np.array_equal(data, expected)


def test_truncate(tmp_path: Path) -> None:
    path = tmp_path / "v.wav"
    with WavWriter(path) as writer:
        writer.write(ramp(0, 1000))
        writer.truncate(2000)  # longer than the file: nothing to do
        writer.truncate(600)
        assert writer.samples_written == 600
        writer.write(ramp(600, 10))
    params, data = read_wav(path)
    assert params.nframes == 610 and np.array_equal(data, ramp(0, 610))


def test_one_writer_for_any_channel_count(tmp_path: Path) -> None:
    """The stereo file is the same writer with two channels: frames in, one channel silenced on
    disk, cut, exact sizes; a broken write stops every later one (positions would be wrong)."""
    path = tmp_path / "v.wav"
    left, right = ramp(0, 1000), ramp(5000, 1000)
    with WavWriter(path, sample_rate=16000, channels=2) as writer:
        writer.write(np.column_stack([left, right]))
        assert writer.frames_written == 1000 and writer.frame_bytes == 4
        writer.zero(200, 400, channel=1)
        writer.truncate(900)
        with pytest.raises(ValueError, match="whole frames"):
            writer.write(np.zeros(3, dtype=np.int16))
    params, data = read_wav(path)
    assert (params.nchannels, params.framerate, params.nframes) == (2, 16000, 900)
    frames = data.reshape(-1, 2)
    assert np.array_equal(frames[:, 0], left[:900])
    assert not frames[200:400, 1].any() and np.array_equal(frames[400:, 1], right[400:900])
    assert np.array_equal(frames[:200, 1], right[:200])


def test_a_failed_write_breaks_the_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wav_writer, "MAX_DATA_BYTES", 100)
    with WavWriter(tmp_path / "v.wav") as writer:
        writer.write(ramp(0, 50))
        with pytest.raises(WavSizeLimitError):
            writer.write(ramp(50, 1))
        monkeypatch.setattr(wav_writer, "MAX_DATA_BYTES", 1000)
        with pytest.raises(WavWriterError, match="failed earlier"):
            writer.write(ramp(50, 1))
    assert read_wav(tmp_path / "v.wav")[0].nframes == 50


def test_never_replaces_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "v.wav"
    path.write_bytes(b"precious")
    with pytest.raises(WavWriterError, match="cannot create"):
        WavWriter(path)
    assert path.read_bytes() == b"precious"


def test_missing_directory_is_a_writer_error(tmp_path: Path) -> None:
    with pytest.raises(WavWriterError):
        WavWriter(tmp_path / "nope" / "v.wav")


def test_close_is_idempotent_and_final(tmp_path: Path) -> None:
    writer = WavWriter(tmp_path / "v.wav")
    writer.close()
    writer.close()
    assert writer.closed
    with pytest.raises(WavWriterError, match="closed"):
        writer.write(ramp(0, 10))


def test_rejects_non_int16(tmp_path: Path) -> None:
    with WavWriter(tmp_path / "v.wav") as writer, pytest.raises(TypeError):
        writer.write(np.zeros(10, dtype=np.float32))


def test_size_limit_guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wav_writer, "MAX_DATA_BYTES", 100)
    with WavWriter(tmp_path / "v.wav") as writer:
        writer.write(ramp(0, 50))
        with pytest.raises(WavSizeLimitError):
            writer.write(ramp(50, 1))
        assert writer.samples_written == 50


_CHILD = """
import sys, time
import numpy as np
from pathlib import Path
from server.voice.syncer import default_syncer
from server.voice.wav_writer import WavWriter
writer = WavWriter(Path(sys.argv[1]), sync_interval=1.0)
start = time.monotonic()
k = 0
while True:  # 20 ms of audio every 20 ms, as a call would
    samples = ((np.arange(k * 160, (k + 1) * 160) % 20000) - 10000).astype(np.int16)
    writer.write(samples)
    k += 1
    print(writer.samples_written, default_syncer().stats.synced, flush=True)
    time.sleep(max(0.0, start + k * 0.02 - time.monotonic()))
"""


def test_sigkill_leaves_a_readable_file_at_most_interval_and_a_tick_short(tmp_path: Path) -> None:
    path = tmp_path / "crash.wav"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert child.stdout is not None
        written = synced = 0
        deadline = time.monotonic() + 20
        while written < int(2.6 * 8000) and time.monotonic() < deadline:
            line = child.stdout.readline()
            assert line, "writer child died"
            written, synced = map(int, line.split())
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    params, data = read_wav(path)
    assert params.framerate == 8000 and params.sampwidth == 2
    assert synced >= 1  # the header was kept up by the background syncer
    # The header lags by at most the interval plus one 20-ms write (and that sync's own fsync).
    assert written - (8000 + 160) <= params.nframes <= written + 160
    assert np.array_equal(data, ramp(0, params.nframes))
    if shutil.which("ffprobe"):
        probe = subprocess.run(
            [
                "ffprobe",
                "-v",
                "error",
                "-show_entries",
                "stream=codec_name,sample_rate:format=duration",
                "-of",
                "default=nw=1",
                str(path),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert "codec_name=pcm_s16le" in probe.stdout and "sample_rate=8000" in probe.stdout
        duration = float(probe.stdout.split("duration=")[1].split()[0])
        assert abs(duration - params.nframes / 8000) < 0.01
