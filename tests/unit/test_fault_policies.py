"""The pure parts of the fault handling (issue 10, items 10–13): the disk policy, the drain's end,
an interrupted call's end time, naming a voice failure, the ordered write backlog, the data
directory lock, the voice failure transition, and a pause whose database write fails."""

from __future__ import annotations

import asyncio
import os
import struct
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from server.calls.control import LiveCall, RecordingControl
from server.calls.lifecycle import Interaction
from server.calls.recovery import last_audio_time, recovered_end
from server.calls.voice_faults import DISK_FULL, WORKER_DIED, WRITE_FAILED, end_reason, media_error
from server.datadir_lock import acquire
from server.diskguard import DiskGuard, DiskReading, evaluate, threshold
from server.drain import drain_done
from server.errors import DataDirInUseError
from server.events.hub import EventHub
from server.store.audit_queue import WriteBacklog
from server.voice.stereo_writer import stereo_wav_header
from tandem_protocol.events import EventType, Phase, ScreenState, VoiceState

GIB = 1024**3


def test_threshold_is_the_larger_of_bytes_and_percent() -> None:
    assert threshold(100 * GIB, GIB, 5) == 5 * GIB
    assert threshold(10 * GIB, GIB, 5) == GIB


def test_evaluate_names_the_low_path_and_a_full_disk_is_low_whatever_the_threshold() -> None:
    ok = DiskReading(Path("/live"), 50 * GIB, 100 * GIB)
    low = DiskReading(Path("/store"), 2 * GIB, 100 * GIB)
    assert evaluate([ok], GIB, 5).ok
    status = evaluate([ok, low], GIB, 5)
    assert not status.ok and "/store" in status.problem and "/live" not in status.problem
    assert not evaluate([DiskReading(Path("/x"), 0, GIB)], 0, 0).ok
    assert not evaluate([ok], GIB, 5, enospc="voice file").ok
    no_inodes = DiskReading(Path("/live"), 50 * GIB, 100 * GIB, inodes_free=0)
    status = evaluate([no_inodes], GIB, 5)
    assert not status.ok and "no free inodes" in status.problem
    assert evaluate([DiskReading(Path("/btrfs"), 50 * GIB, 100 * GIB, inodes_free=None)], GIB, 5).ok


def test_an_enospc_counts_until_a_reading_shows_space_again() -> None:
    changes: list[bool] = []
    guard = DiskGuard(
        [Path("/a")],
        min_free_bytes=GIB,
        min_free_percent=0,
        reader=lambda p: DiskReading(p, 10 * GIB, 20 * GIB),
        on_change=lambda s: changes.append(s.ok),
    )
    assert guard.check().ok
    guard.note_enospc("voice file of i1")
    assert not guard.ok and "disk full" in guard.status.problem
    assert guard.check().ok
    assert changes == [False, True]


def test_drain_ends_when_no_call_is_left_or_time_is_up() -> None:
    assert drain_done(0, 10.0, 100.0)
    assert not drain_done(2, 10.0, 100.0)
    assert drain_done(2, 100.0, 100.0)


def test_the_end_of_an_interrupted_call_is_its_last_audio_on_disk(tmp_path: Path) -> None:
    voice = tmp_path / "voice.wav"
    # The header says 1 s (it lags after a kill), the disk holds 2.5 s of 8 kHz stereo frames.
    voice.write_bytes(stereo_wav_header(8000, 8000 * 4) + bytes(20000 * 4))
    assert last_audio_time(voice, 1000.0) == pytest.approx(1002.5)
    assert recovered_end(voice, 1000.0, fallback=2000.0) == pytest.approx(1002.5)
    assert recovered_end(voice, None, fallback=2000.0) == 2000.0  # never answered: nothing to read
    assert recovered_end(tmp_path / "missing.wav", 1000.0, fallback=2000.0) == 2000.0
    voice.write_bytes(b"garbage")
    assert recovered_end(voice, 1000.0, fallback=2000.0) == 2000.0
    mono = tmp_path / "mono.wav"
    header = (
        b"RIFF" + struct.pack("<I", 36) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
    )
    mono.write_bytes(header + b"data" + struct.pack("<I", 0) + bytes(16000 * 2))
    assert last_audio_time(mono, 5.0) == pytest.approx(6.0)


def test_voice_failures_are_named_truthfully() -> None:
    assert end_reason(f"cannot write voice file x: [Errno 28] {os.strerror(28)}") == DISK_FULL
    assert end_reason("RTP worker 0 (pid 9) exited with code -9 (its stream ended)") == WORKER_DIED
    assert end_reason("anything", worker_died=True) == WORKER_DIED
    assert end_reason("cannot write voice file x: [Errno 5] Input/output error") == WRITE_FAILED
    assert media_error({"0": {"written": 5, "voice_error": None}}) is None
    assert media_error({"0": {"written": 5}, "1": {"voice_error": "boom"}}) == "boom"
    assert media_error({"0": {"error": "gone"}}) == "gone"


def test_fail_voice_keeps_the_call_and_survives_its_end() -> None:
    it = Interaction("i1", "c1", 7, "1001", "Carol", "1001", started_at=1.0, screen_decision=True)
    it.answer(2.0)
    it.begin_pause(3.0)
    it.fail_voice(4.0)
    assert it.voice is VoiceState.FAILED and it.phase is Phase.ACTIVE and it.stopped_at == 4.0
    assert it.pauses[-1].ended_at == 4.0 and not it.paused
    it.end_call(9.0, acw_limit=10)
    after = it.to_info()  # (a fresh read: mypy narrowed it.phase to ACTIVE above)
    assert after.voice is VoiceState.FAILED and after.phase is Phase.ACW


def _locked() -> OperationalError:
    return OperationalError("UPDATE x", {}, Exception("database is locked"))


def test_backlog_writes_now_or_queues_in_order_until_written() -> None:
    async def scenario() -> tuple[list[str], list[bool], WriteBacklog]:
        written: list[str] = []
        locked = [True]

        def writer(name: str) -> Any:
            def write() -> None:
                if locked[0]:
                    raise _locked()
                written.append(name)

            return write

        backlog = WriteBacklog(retry_initial=0.01, retry_max=0.02)
        results = [await backlog.write(n, writer(n)) for n in ("a", "b")]
        assert backlog.pending == 2 and backlog.status()["pending"] == 2
        locked[0] = False
        results.append(await backlog.write("c", writer("c")))  # behind the queue, not before it
        assert await backlog.flush(5.0)
        results.append(await backlog.write("d", writer("d")))
        return written, results, backlog

    written, results, backlog = asyncio.run(scenario())
    assert written == ["a", "b", "c", "d"] and results == [False, False, False, True]
    assert backlog.pending == 0 and backlog.dropped == 0


def test_backlog_is_bounded() -> None:
    async def scenario() -> WriteBacklog:
        def fail() -> None:
            raise _locked()

        backlog = WriteBacklog(max_items=2, retry_initial=10)
        for n in range(3):
            await backlog.write(str(n), fail)
        return backlog

    backlog = asyncio.run(scenario())
    assert backlog.pending == 2 and backlog.dropped == 1


def test_a_data_dir_is_locked_once(tmp_path: Path) -> None:
    with acquire(tmp_path / "data") as lock:
        assert lock.path.read_text().strip() == str(os.getpid())
        with pytest.raises(DataDirInUseError) as refused:
            acquire(tmp_path / "data")
        assert refused.value.pid == os.getpid()
        assert f"is in use by server pid {os.getpid()}" in str(refused.value)
    acquire(tmp_path / "data").release()  # released with its holder


class _Handle:
    paused_at: float | None = None

    def pause(self, at: float) -> None:
        self.paused_at = at


class _BusyRepo:
    def save(self, *args: Any, **kwargs: Any) -> None:
        raise _locked()


class _BusyRecords:
    def audit(self, *args: Any, **kwargs: Any) -> None:
        raise _locked()


def test_a_pause_with_a_busy_database_pauses_voice_and_screen_and_queues_its_records() -> None:
    async def scenario() -> tuple[Any, LiveCall, _Handle, list[str], RecordingControl]:
        hub = EventHub()
        sub = hub.subscribe(7, "recorder")
        state = Interaction("i1", "c1", 7, "1001", "Carol", "1001", started_at=1.0, screen_decision=True)
        state.answer(2.0)
        state.screen_reported(ScreenState.RECORDING)
        live = LiveCall(state, "alex")
        handle = _Handle()
        live.handle = handle  # type: ignore[assignment]
        control = RecordingControl(
            _BusyRepo(),  # type: ignore[arg-type]
            _BusyRecords(),  # type: ignore[arg-type]
            hub,
            screen_fps=5,
            confirm_timeout=0.2,
            backlog=WriteBacklog(retry_initial=10),
        )
        info = await control.pause(live, 3.0, "agent", (7, "alex"), "secure pause", strict=False)
        types = []
        while not sub.queue.empty():
            envelope = sub.queue.get_nowait()
            if envelope is not None:
                types.append(envelope.type)
        return info, live, handle, types, control

    info, live, handle, types, control = asyncio.run(scenario())
    assert handle.paused_at == 3.0 and info.voice is VoiceState.PAUSED
    assert EventType.SCREEN_PAUSE in types, "the recorder must be told to stop capturing"
    assert live.span_actors == {3.0: ((7, "alex"), "agent")}  # the span keeps its user
    assert control.backlog.pending == 2  # the state and the audit record, retried later
