"""The background WAV syncer: fsync + header sizes off the caller's thread, one request per writer."""

from __future__ import annotations

import errno
import os
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from server.errors import WavWriterError
from server.voice import syncer as syncer_module
from server.voice.header_sync import HeaderSync
from server.voice.syncer import Syncer, SyncSlot, write_sizes
from server.voice.wav_writer import wav_header
from tests.unit.fsync_gate import FakeClock, FsyncGate

THREAD = "test-syncer"


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[FsyncGate]:
    fsync_gate = FsyncGate(THREAD)
    monkeypatch.setattr(os, "fsync", fsync_gate)
    yield fsync_gate
    fsync_gate.open.set()  # never leave a test thread blocked


@pytest.fixture
def syncer() -> Iterator[Syncer]:
    instance = Syncer(name=THREAD)
    yield instance
    instance.shutdown(timeout=10)


def new_wav(path: Path, frames: int) -> tuple[int, bytes]:
    """A mono WAV whose header says 0 samples, with ``frames`` samples after it; returns (fd, data)."""
    data = (np.arange(frames, dtype=np.int16) - 100).astype("<i2").tobytes()
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, wav_header(8000, 0) + data)
    return fd, data


def header_frames(path: Path) -> int:
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes()


def test_write_sizes_patches_both_fields_without_moving_the_offset(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    fd, data = new_wav(path, 300)
    try:
        offset = os.lseek(fd, 0, os.SEEK_CUR)
        write_sizes(fd, len(data))
        assert os.lseek(fd, 0, os.SEEK_CUR) == offset
    finally:
        os.close(fd)
    assert path.read_bytes()[:44] == wav_header(8000, 600)


def test_request_fsyncs_then_covers_and_publishes(tmp_path: Path, syncer: Syncer, gate: FsyncGate) -> None:
    path = tmp_path / "a.wav"
    fd, data = new_wav(path, 500)
    slot = SyncSlot()
    try:
        assert syncer.submit(slot, os.dup(fd), len(data))
        assert gate.entered.wait(10)
        assert slot.pending and slot.synced_bytes == 0 and header_frames(path) == 0  # not before fsync
        gate.open.set()
        assert slot.wait(10)
    finally:
        os.close(fd)
    assert not slot.pending and slot.synced_bytes == 1000 and slot.error is None
    assert header_frames(path) == 500
    assert gate.calls == [THREAD]
    assert syncer.stats.queued == 1 and syncer.stats.synced == 1


def test_fsync_failure_is_kept_and_no_sizes_written(tmp_path: Path, syncer: Syncer, gate: FsyncGate) -> None:
    path = tmp_path / "a.wav"
    fd, data = new_wav(path, 100)
    slot = SyncSlot()
    gate.error = OSError(errno.ENOSPC, "No space left on device")
    gate.open.set()
    try:
        assert syncer.submit(slot, os.dup(fd), len(data))
        assert slot.wait(10)
    finally:
        os.close(fd)
    assert isinstance(slot.error, OSError) and slot.error.errno == errno.ENOSPC
    assert slot.synced_bytes == 0 and header_frames(path) == 0
    assert syncer.stats.failed == 1


def test_queued_request_is_cancelled_by_settle(tmp_path: Path, syncer: Syncer, gate: FsyncGate) -> None:
    fd_a, data_a = new_wav(tmp_path / "a.wav", 100)
    fd_b, data_b = new_wav(tmp_path / "b.wav", 200)
    slot_a, slot_b = SyncSlot(), SyncSlot()
    try:
        assert syncer.submit(slot_a, os.dup(fd_a), len(data_a))
        assert gate.entered.wait(10)  # the thread is busy with a
        dup_b = os.dup(fd_b)
        assert syncer.submit(slot_b, dup_b, len(data_b))
        assert slot_b.settle(timeout=10)  # b was only queued: cancelled at once
        assert not slot_b.pending
        with pytest.raises(OSError):
            os.fstat(dup_b)  # its dup is closed by the cancel
        gate.open.set()
        syncer.shutdown(timeout=10)  # the thread has handled everything queued
    finally:
        os.close(fd_a)
        os.close(fd_b)
    assert header_frames(tmp_path / "a.wav") == 100
    assert header_frames(tmp_path / "b.wav") == 0 and slot_b.synced_bytes == 0
    assert syncer.stats.synced == 1


def test_running_request_outliving_settle_never_writes_its_stale_sizes(
    tmp_path: Path, syncer: Syncer, gate: FsyncGate
) -> None:
    path = tmp_path / "a.wav"
    fd, data = new_wav(path, 100)
    slot = SyncSlot()
    try:
        assert syncer.submit(slot, os.dup(fd), len(data))
        assert gate.entered.wait(10)
        assert not slot.settle(timeout=0.05)  # still in fsync: barred from writing sizes
        assert not slot.pending
        os.write(fd, bytes(100))  # the writer moves on: 50 more samples, synced by itself
        slot.write_sizes(fd, len(data) + 100)
        gate.open.set()
        syncer.shutdown(timeout=10)
    finally:
        os.close(fd)
    assert header_frames(path) == 150 and slot.synced_bytes == 300


def test_full_queue_refuses_and_closes_the_dup(tmp_path: Path, gate: FsyncGate) -> None:
    small = Syncer(capacity=1, name=THREAD)
    fds = [new_wav(tmp_path / f"{k}.wav", 10)[0] for k in range(3)]
    slots = [SyncSlot() for _ in fds]
    try:
        assert small.submit(slots[0], os.dup(fds[0]), 20)
        assert gate.entered.wait(10)  # taken off the queue, running
        assert small.submit(slots[1], os.dup(fds[1]), 20)  # fills the queue
        dup = os.dup(fds[2])
        assert not small.submit(slots[2], dup, 20)
        assert not slots[2].pending and small.stats.skipped_full == 1
        with pytest.raises(OSError):
            os.fstat(dup)
    finally:
        gate.open.set()
        small.shutdown(timeout=10)
        for fd in fds:
            os.close(fd)
    assert [header_frames(tmp_path / f"{k}.wav") for k in range(3)] == [10, 10, 0]


def test_shutdown_drains_then_refuses(tmp_path: Path, syncer: Syncer) -> None:
    fds = [new_wav(tmp_path / f"{k}.wav", 10 * (k + 1))[0] for k in range(20)]
    slots = [SyncSlot() for _ in fds]
    for k, (fd, slot) in enumerate(zip(fds, slots, strict=True)):
        assert syncer.submit(slot, os.dup(fd), 20 * (k + 1))
    syncer.shutdown(timeout=10)
    assert [slot.synced_bytes for slot in slots] == [20 * (k + 1) for k in range(20)]
    assert not syncer.submit(slots[0], os.dup(fds[0]), 20)
    for fd in fds:
        os.close(fd)


# --- HeaderSync: the writers' side -------------------------------------------------------------


def test_maybe_sync_is_due_once_per_interval_and_covers_buffered_data(tmp_path: Path, syncer: Syncer) -> None:
    path = tmp_path / "a.wav"
    clock = FakeClock()
    sync = HeaderSync(path, 0.5, clock, syncer)
    with open(path, "xb") as handle:
        handle.write(wav_header(8000, 0) + bytes(800))
        sync.maybe_sync(handle, 800)
        assert not sync.pending and syncer.stats.queued == 0  # not due yet
        clock.now = 0.5
        sync.maybe_sync(handle, 800)
        assert sync.wait(10) and sync.synced_bytes == 800
        assert header_frames(path) == 400
        handle.write(bytes(200))
        clock.now = 0.9
        sync.maybe_sync(handle, 1000)
        assert syncer.stats.queued == 1  # 0.4 s since the last one
        clock.now = 1.0
        sync.maybe_sync(handle, 1000)
        assert sync.wait(10) and sync.synced_bytes == 1000
        assert handle.tell() == 44 + 1000  # appends continue at the end
    assert header_frames(path) == 500


def test_pending_request_skips_the_round_counted_once(
    tmp_path: Path, syncer: Syncer, gate: FsyncGate
) -> None:
    path = tmp_path / "a.wav"
    clock = FakeClock()
    sync = HeaderSync(path, 0.5, clock, syncer)
    with open(path, "xb") as handle:
        handle.write(wav_header(8000, 0) + bytes(100))
        clock.now = 0.5
        sync.maybe_sync(handle, 100)
        assert gate.entered.wait(10) and sync.pending
        handle.write(bytes(100))
        clock.now = 1.0
        sync.maybe_sync(handle, 200)
        sync.maybe_sync(handle, 200)  # still the same round: retried, not counted again
        assert sync.skipped == 1 and syncer.stats.skipped_pending == 1 and syncer.stats.queued == 1
        gate.open.set()
        assert sync.wait(10) and sync.synced_bytes == 100
        sync.maybe_sync(handle, 200)  # overdue: goes out at once
        assert sync.wait(10) and sync.synced_bytes == 200
        assert sync.skipped == 1 and syncer.stats.queued == 2
    assert header_frames(path) == 100


def test_background_failure_raised_once_by_the_next_call(
    tmp_path: Path, syncer: Syncer, gate: FsyncGate
) -> None:
    path = tmp_path / "a.wav"
    clock = FakeClock()
    sync = HeaderSync(path, 0.5, clock, syncer)
    gate.error = OSError(errno.EIO, "Input/output error")
    gate.open.set()
    with open(path, "xb") as handle:
        handle.write(wav_header(8000, 0) + bytes(100))
        clock.now = 0.5
        sync.maybe_sync(handle, 100)
        assert sync.wait(10)
        with pytest.raises(WavWriterError, match="cannot sync") as raised:
            sync.maybe_sync(handle, 100)
        assert isinstance(raised.value.__cause__, OSError) and raised.value.__cause__.errno == errno.EIO
        sync.check()  # reported once, like a failed synchronous sync
        gate.error = None
        sync.sync(handle, 100)
    assert header_frames(path) == 50 and sync.synced_bytes == 100


def test_closed_syncer_falls_back_to_a_synchronous_sync(tmp_path: Path) -> None:
    closed = Syncer(name=THREAD)
    closed.shutdown()
    path = tmp_path / "a.wav"
    clock = FakeClock()
    sync = HeaderSync(path, 0.5, clock, closed)
    with open(path, "xb") as handle:
        handle.write(wav_header(8000, 0) + bytes(60))
        clock.now = 0.5
        sync.maybe_sync(handle, 60)
        assert sync.synced_bytes == 60 and not sync.pending
    assert header_frames(path) == 30


def test_default_syncer_is_shared() -> None:
    first = syncer_module.default_syncer()
    assert syncer_module.default_syncer() is first


def test_data_is_fsynced_every_durable_interval_and_the_header_every_sync_interval(
    tmp_path: Path, syncer: Syncer, gate: FsyncGate
) -> None:
    gate.open.set()
    path = tmp_path / "d.wav"
    clock = FakeClock()
    sync = HeaderSync(path, 0.5, clock, syncer, durable_interval=5.0)
    fsyncs: list[int] = []
    with open(path, "xb") as handle:
        handle.write(wav_header(8000, 0))
        for step in range(1, 13):  # 6 s of 0.5-s rounds
            handle.write(bytes(800))
            clock.now = step * 0.5
            sync.maybe_sync(handle, 800 * step)
            assert sync.wait(10)
            assert header_frames(path) == 400 * step  # the header keeps pace either way
            fsyncs.append(gate.calls.count(THREAD))
    # The first round is durable, then one every 5 s: rounds 1 and 11 (0.5 s and 5.5 s).
    assert fsyncs == [1] * 10 + [2, 2]
