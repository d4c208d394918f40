"""The writers with the background syncer: headers follow in the thread, failures surface, sizes exact."""

from __future__ import annotations

import errno
import os
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from server.errors import WavWriterError
from server.voice import syncer as syncer_module
from server.voice.stereo_writer import Channel, StereoWavWriter
from server.voice.wav_writer import WavWriter
from tests.unit.fsync_gate import FakeClock, FsyncGate

DEFAULT_THREAD = "wav-syncer"  # the process-wide syncer's thread
CALLER, AGENT = Channel.CALLER, Channel.AGENT


@pytest.fixture
def default_gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[FsyncGate]:
    fsync_gate = FsyncGate(DEFAULT_THREAD)
    monkeypatch.setattr(os, "fsync", fsync_gate)
    yield fsync_gate
    fsync_gate.open.set()


def ramp(start: int, count: int) -> np.ndarray:
    return ((np.arange(start, start + count) % 20000) - 10000).astype(np.int16)


def read_frames(path: Path) -> tuple[int, np.ndarray]:
    with wave.open(str(path), "rb") as wav:
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        return wav.getnframes(), frames.reshape(-1, wav.getnchannels())


def handled() -> int:
    stats = syncer_module.default_syncer().stats
    return stats.synced + stats.failed


def finish_background_work(before: int) -> None:
    """Wait (bounded) until the process-wide syncer has handled a request after ``before``."""
    deadline = time.monotonic() + 10
    while handled() <= before:
        assert time.monotonic() < deadline, "the syncer thread never finished its request"
        time.sleep(0.01)


def test_mono_close_waits_for_the_running_request(tmp_path: Path, default_gate: FsyncGate) -> None:
    path = tmp_path / "v.wav"
    clock = FakeClock()
    writer = WavWriter(path, clock=clock)
    writer.write(ramp(0, 4000))
    clock.now = 0.5
    before = handled()
    writer.maybe_sync()
    assert default_gate.entered.wait(10) and writer.samples_synced == 0
    writer.write(ramp(4000, 1000))
    threading.Timer(0.2, default_gate.open.set).start()
    writer.close()
    assert default_gate.open.is_set()  # close waited for the fsync in flight
    finish_background_work(before)
    nframes, frames = read_frames(path)
    assert nframes == 5000 and np.array_equal(frames[:, 0], ramp(0, 5000))


def test_mono_truncate_is_not_undone_by_a_stale_background_sync(
    tmp_path: Path, default_gate: FsyncGate
) -> None:
    path = tmp_path / "v.wav"
    clock = FakeClock()
    writer = WavWriter(path, clock=clock)
    writer.write(ramp(0, 3000))
    clock.now = 0.5
    before = handled()
    writer.maybe_sync()
    assert default_gate.entered.wait(10)
    threading.Timer(0.2, default_gate.open.set).start()
    writer.truncate(1000)
    finish_background_work(before)
    assert writer.samples_synced == 1000 and read_frames(path)[0] == 1000
    writer.close()
    assert read_frames(path)[0] == 1000


def test_mono_write_error_in_the_thread_surfaces_on_the_next_call(
    tmp_path: Path, default_gate: FsyncGate
) -> None:
    path = tmp_path / "v.wav"
    clock = FakeClock()
    writer = WavWriter(path, clock=clock)
    default_gate.error = OSError(errno.ENOSPC, "No space left on device")
    default_gate.open.set()
    writer.write(ramp(0, 800))
    clock.now = 0.5
    writer.maybe_sync()
    assert writer.wait_synced(10) and writer.samples_synced == 0
    with pytest.raises(WavWriterError, match="No space left") as raised:
        writer.write(ramp(800, 10))
    assert isinstance(raised.value.__cause__, OSError) and raised.value.__cause__.errno == errno.ENOSPC
    assert writer.samples_written == 800  # refused before writing: positions stay right
    writer.close()  # synchronous, on this thread: the gate does not apply
    assert read_frames(path)[0] == 800


def test_mono_pending_request_skips_and_is_counted(tmp_path: Path, default_gate: FsyncGate) -> None:
    path = tmp_path / "v.wav"
    clock = FakeClock()
    with WavWriter(path, clock=clock) as writer:
        writer.write(ramp(0, 100))
        clock.now = 0.5
        writer.maybe_sync()
        assert default_gate.entered.wait(10)
        writer.write(ramp(100, 100))
        clock.now = 1.0
        writer.maybe_sync()
        assert writer.syncs_skipped == 1
        default_gate.open.set()
        assert writer.wait_synced(10) and writer.samples_synced == 100
        writer.maybe_sync()
        assert writer.wait_synced(10) and writer.samples_synced == 200
        assert read_frames(path)[0] == 200


def test_stereo_close_cancels_a_queued_request(tmp_path: Path, default_gate: FsyncGate) -> None:
    clock = FakeClock()
    busy = WavWriter(tmp_path / "busy.wav", clock=clock)  # keeps the thread in fsync
    busy.write(ramp(0, 10))
    stereo = StereoWavWriter(tmp_path / "v.wav", clock=clock)
    stereo.write(CALLER, 0, ramp(0, 2000))
    stereo.write(AGENT, 0, ramp(0, 2000))
    clock.now = 0.5
    busy.maybe_sync()
    assert default_gate.entered.wait(10)
    stereo.maybe_sync()
    stereo.write(CALLER, 2000, ramp(2000, 500))
    stereo.close(3000)
    assert not default_gate.open.is_set()  # it did not wait for the thread: the request was dropped
    nframes, frames = read_frames(tmp_path / "v.wav")
    assert nframes == 3000 and np.array_equal(frames[:2500, 0], ramp(0, 2500))
    assert np.array_equal(frames[:2000, 1], ramp(0, 2000)) and not frames[2000:, 1].any()
    assert not frames[2500:, 0].any()
    before = handled()
    default_gate.open.set()
    finish_background_work(before)
    busy.close()
    assert read_frames(tmp_path / "v.wav")[0] == 3000  # nothing stale came after the close


def test_stereo_error_in_the_thread_breaks_the_writer_close_still_exact(
    tmp_path: Path, default_gate: FsyncGate
) -> None:
    path = tmp_path / "v.wav"
    clock = FakeClock()
    writer = StereoWavWriter(path, clock=clock)
    default_gate.error = OSError(errno.EIO, "Input/output error")
    default_gate.open.set()
    writer.write(CALLER, 0, ramp(0, 1000))
    writer.write(AGENT, 0, ramp(0, 1000))
    clock.now = 0.5
    writer.maybe_sync()
    assert writer.wait_synced(10) and writer.frames_synced == 0
    with pytest.raises(WavWriterError, match="cannot sync"):
        writer.maybe_sync()
    with pytest.raises(WavWriterError, match="failed earlier"):
        writer.write(CALLER, 1000, ramp(1000, 10))
    writer.close(5000)  # broken: no padding, but the sizes cover what is on disk
    assert read_frames(path)[0] == 1000


def test_stereo_close_as_the_next_call_raises_after_exact_sizes(
    tmp_path: Path, default_gate: FsyncGate
) -> None:
    path = tmp_path / "v.wav"
    clock = FakeClock()
    writer = StereoWavWriter(path, clock=clock)
    default_gate.error = OSError(errno.ENOSPC, "No space left on device")
    default_gate.open.set()
    writer.write(CALLER, 0, ramp(0, 1000))
    writer.write(AGENT, 0, ramp(0, 1000))
    clock.now = 0.5
    writer.maybe_sync()
    assert writer.wait_synced(10)
    with pytest.raises(WavWriterError, match="No space left"):
        writer.close()
    assert writer.closed and read_frames(path)[0] == 1000
