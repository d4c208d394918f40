"""RTP worker processes for real: a pool of worker processes records calls whose RTP a test socket
sends (a tone per leg), on asyncio's loop and on uvloop (the server's); a worker is SIGKILLed,
SIGSTOPped and orphaned mid-call; the pool stops with calls open. A worker is also driven
directly over its socketpair to see how it answers bad commands and frames.

Every test checks that no worker process it started is left running.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from server.callmedia.plan import AGENT, CALLER, MediaPlan, StreamPlan
from server.callmedia.session import MediaSession
from server.errors import NoWorkerError, RtpSessionError, RtpWorkerError, WorkerTimeoutError
from server.rtp.workers.link import WorkerLink
from server.rtp.workers.pool import WorkerPool
from server.rtp.workers.protocol import (
    REPLIES,
    Closed,
    Failed,
    FrameDecoder,
    Open,
    Opened,
    Report,
    Start,
    encode_frame,
)
from server.rtp.workers.proxy import WorkerMediaSession
from server.rtp.workers.ranges import split_port_range
from server.sim.rtp_sender import send_rtp
from tests.loops import run_on
from tests.ports import rtp_range

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
RANGE = rtp_range()
RATE = 8000
PLAN = MediaPlan(
    (StreamPlan(0, "PCMU", 0, 101, CALLER, None), StreamPlan(1, "PCMU", 0, 101, AGENT, None)), RATE
)
MONO_PLAN = MediaPlan((StreamPlan(0, "PCMU", 0, None, None, None),), RATE)


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for init to reap it is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def tone(hz: float, seconds: float) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (8000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def pos(seconds: float) -> int:
    return round(seconds * RATE)


def read_wav(path: Path, channels: int = 2) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (channels, 2, RATE)
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return data.reshape(-1, channels)


def header_is_final(path: Path) -> bool:
    """A closed file's header covers exactly the samples on disk."""
    raw = path.read_bytes()
    return int.from_bytes(raw[40:44], "little") == len(raw) - 44


def dominant_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.argmax(spectrum) * RATE / len(samples))


def worker_of(media: MediaSession, workers: int = 2) -> int:
    """Which worker records ``media``: the one whose port sub-range holds its ports."""
    ranges = split_port_range(RANGE, workers)
    found = {i for port in media.ports.values() for i, r in enumerate(ranges) if r and r[0] <= port <= r[1]}
    assert len(found) == 1, (media.ports, ranges)
    return found.pop()


async def send_tones(
    media: MediaSession, tones: dict[int, np.ndarray], stop: asyncio.Event | None = None
) -> dict[int, int]:
    """Paced RTP of one tone per stream, all at once; packets sent per stream index."""
    results = await asyncio.gather(
        *(send_rtp(None, (HOST, media.ports[index]), "PCMU", pcm, stop) for index, pcm in tones.items())
    )
    return {index: r.packets for index, r in zip(tones, results, strict=True)}


async def wait_for(predicate: Any, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {seconds:g} s waiting for {what}")


async def restarted(pool: WorkerPool, index: int, old_pid: int) -> WorkerLink:
    def new_link() -> WorkerLink | None:
        link = pool.links[index]
        fresh = link is not None and link.pid != old_pid and link.alive and link.ready.is_set()
        return link if fresh else None

    link: WorkerLink = await wait_for(new_link, 60, f"worker {index} restarted")
    return link


def written(media: MediaSession) -> dict[int, int]:
    stats = media.stats()
    return {int(index): s["written"] for index, s in stats.items() if isinstance(s, dict)}


# ---- two calls, pause/resume, close ----------------------------------------------------------
async def record_two_calls(tmp_path: Path) -> None:
    pool = WorkerPool(2)
    await pool.start()
    pids = set(pool.pids)
    assert len(pids) == 2
    try:
        a = await pool.media_factory(HOST, RANGE, tmp_path / "a.wav", PLAN)
        b = await pool.media_factory(HOST, RANGE, tmp_path / "b.wav", PLAN)
        assert {worker_of(a), worker_of(b)} == {0, 1}, "each call on the least-loaded worker"
        assert all(p % 2 == 0 for m in (a, b) for p in m.ports.values())
        answered = time.time()
        a.start(answered)
        b.start(answered)

        async def pause_resume() -> None:
            await asyncio.sleep(answered + 0.8 - time.time())
            a.pause(answered + 0.8)
            await asyncio.sleep(answered + 1.3 - time.time())
            a.resume(answered + 1.3)

        sent_a, sent_b, _ = await asyncio.gather(
            send_tones(a, {0: tone(440, 2.0), 1: tone(1000, 2.0)}),
            send_tones(b, {0: tone(600, 2.0), 1: tone(1400, 2.0)}),
            pause_resume(),
        )
        # The watchdog's view comes from the workers' reports.
        await wait_for(
            lambda: min(a.last_packet_at or 0, b.last_packet_at or 0) > answered + 1.8,
            3,
            "reports of the last packets",
        )
        ended = time.time()
        await asyncio.gather(a.close(ended), b.close(ended))
        await a.close(ended + 5)  # idempotent
    finally:
        await pool.stop()
    assert not any(running(pid) for pid in pids), "a worker outlived pool.stop()"

    assert sent_a == {0: 100, 1: 100} and sent_b == {0: 100, 1: 100}
    assert written(a) == sent_a and written(b) == sent_b
    assert all("error" not in s for m in (a, b) for s in m.stats().values() if isinstance(s, dict))
    for name, (left_hz, right_hz), paused in (("a.wav", (440, 1000), True), ("b.wav", (600, 1400), False)):
        frames = read_wav(tmp_path / name)
        assert abs(len(frames) - (ended - answered) * RATE) <= pos(0.02), (name, len(frames))
        for start, end in ((0.2, 0.7), (1.4, 1.9)) if paused else ((0.2, 1.9),):
            segment = frames[pos(start) : pos(end)]
            assert dominant_hz(segment[:, 0]) == pytest.approx(left_hz, abs=5), name
            assert dominant_hz(segment[:, 1]) == pytest.approx(right_hz, abs=5), name
        if paused:
            assert not frames[pos(0.8) : pos(1.3)].any(), "the paused span is not silent"
            assert frames[pos(0.7) : pos(0.8)].any() and frames[pos(1.3) : pos(1.4)].any()
        assert not frames[pos(2.2) :].any(), "after the media: silence to the end"
        assert header_is_final(tmp_path / name)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_two_calls_are_recorded_in_two_workers(tmp_path: Path, loop: str) -> None:
    run_on(loop, record_two_calls(tmp_path))


# ---- a worker killed mid-call -----------------------------------------------------------------
async def kill_a_worker(tmp_path: Path) -> None:
    pool = WorkerPool(2, close_timeout=30, restart_initial=0.2)
    await pool.start()
    seen = set(pool.pids)
    try:
        victim = await pool.media_factory(HOST, RANGE, tmp_path / "victim.wav", PLAN)
        other = await pool.media_factory(HOST, RANGE, tmp_path / "other.wav", PLAN)
        index = worker_of(victim)
        assert worker_of(other) == 1 - index
        answered = time.time()
        victim.start(answered)
        other.start(answered)
        stop_victim, stop = asyncio.Event(), asyncio.Event()
        senders = [
            asyncio.create_task(send_tones(victim, {0: tone(440, 20), 1: tone(1000, 20)}, stop_victim)),
            asyncio.create_task(send_tones(other, {0: tone(600, 20), 1: tone(1400, 20)}, stop)),
        ]
        await asyncio.sleep(1.6)
        victim_link = pool.links[index]
        assert victim_link is not None
        os.kill(victim_link.pid, signal.SIGKILL)
        killed_at = time.time()
        stop_victim.set()

        began = time.monotonic()
        await victim.close(time.time())
        assert time.monotonic() - began < 10, "close waited for its 30 s timeout, not for the death"
        stats = victim.stats()
        assert set(stats) == {"0", "1"}
        for stream in stats.values():
            assert isinstance(stream, dict) and "exited with code -9" in str(stream["error"]), stats
            assert isinstance(stream["written"], int) and stream["written"] > 0  # the last report's counters
        frames = read_wav(tmp_path / "victim.wav")  # crash-safe: readable as the worker left it
        assert pos(killed_at - answered - 1.0) <= len(frames) <= pos(killed_at - answered + 0.1)
        assert dominant_hz(frames[pos(0.2) : pos(0.9), 0]) == pytest.approx(440, abs=5)
        assert dominant_hz(frames[pos(0.2) : pos(0.9), 1]) == pytest.approx(1000, abs=5)

        link = await restarted(pool, index, victim_link.pid)
        seen.add(link.pid)
        assert pool.restarts == 1
        # The other worker still has a call, so the new one goes to the restarted worker.
        after = await pool.media_factory(HOST, RANGE, tmp_path / "after.wav", PLAN)
        assert worker_of(after) == index
        # The restarted worker goes on after its predecessor's ports: the SBC may still send there.
        assert min(after.ports.values()) > max(victim.ports.values())
        after_answered = time.time()
        after.start(after_answered)
        sent_after = await send_tones(after, {0: tone(500, 1.0), 1: tone(900, 1.0)})
        await wait_for(lambda: written(after) == sent_after, 30, "the restarted worker's packets written")
        after_ended = time.time()
        await after.close(after_ended)

        stop.set()
        sent_victim, sent_other = await asyncio.gather(*senders)
        assert all(0 < n < 1000 for n in sent_victim.values())
        await wait_for(lambda: written(other) == sent_other, 30, "the other call's packets written")
        await other.close(time.time())
    finally:
        await pool.stop()
    assert not any(running(pid) for pid in seen)

    assert written(after) == sent_after == {0: 50, 1: 50}
    frames = read_wav(tmp_path / "after.wav")
    assert abs(len(frames) - (after_ended - after_answered) * RATE) <= pos(0.02)
    assert dominant_hz(frames[pos(0.1) : pos(0.9), 0]) == pytest.approx(500, abs=5)
    assert dominant_hz(frames[pos(0.1) : pos(0.9), 1]) == pytest.approx(900, abs=5)
    assert written(other) == sent_other, "the other worker's call was disturbed"
    assert all("error" not in s for s in other.stats().values() if isinstance(s, dict))


def test_a_killed_worker_fails_its_calls_and_is_restarted(tmp_path: Path) -> None:
    run_on("uvloop", kill_a_worker(tmp_path))


# ---- a hung worker ------------------------------------------------------------------------------
async def hang_a_worker(tmp_path: Path) -> None:
    pool = WorkerPool(1, open_timeout=1.0, close_timeout=1.0, hang_timeout=3.0, restart_initial=0.2)
    await pool.start()
    (pid,) = pool.pids
    seen = {pid}
    try:
        call = await pool.media_factory(HOST, RANGE, tmp_path / "hung.wav", MONO_PLAN)
        call.start(time.time())
        os.kill(pid, signal.SIGSTOP)
        # Neither an open nor a close waits on a stuck worker for longer than its timeout.
        with pytest.raises(WorkerTimeoutError) as caught:
            await pool.media_factory(HOST, RANGE, tmp_path / "never.wav", MONO_PLAN)
        assert isinstance(caught.value, RtpSessionError)  # what the SIP layer answers 503 to
        await call.close(time.time())
        assert "did not confirm the close" in str(call.stats()["0"])
        link = await restarted(pool, 0, pid)  # silent too long: killed, then restarted
        seen.add(link.pid)
        again = await pool.media_factory(HOST, RANGE, tmp_path / "again.wav", MONO_PLAN)
        again.start(time.time())
        sent = await send_tones(again, {0: tone(440, 0.4)})
        await wait_for(lambda: written(again) == sent, 30, "the packets written")
        await again.close(time.time())
        assert written(again) == sent == {0: 20}
    finally:
        await pool.stop()
    assert not any(running(p) for p in seen)


def test_a_hung_worker_times_out_and_is_replaced(tmp_path: Path) -> None:
    run_on("uvloop", hang_a_worker(tmp_path))


# ---- a worker slow to start --------------------------------------------------------------------
def slow_python_start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, seconds: float) -> None:
    """Every Python started from here on (the workers) sleeps ``seconds`` before running: a
    sitecustomize on PYTHONPATH stands in for a cold interpreter on a loaded machine."""
    site = tmp_path / "slow-site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(f"import time\ntime.sleep({seconds})\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))


async def open_on_a_slow_starter(tmp_path: Path) -> None:
    pool = WorkerPool(1, open_timeout=1.0)
    await pool.start()  # returns once the worker serves: its start-up is not the open's to wait for
    try:
        call = await pool.media_factory(HOST, RANGE, tmp_path / "first.wav", MONO_PLAN)
        call.start(time.time())
        sent = await send_tones(call, {0: tone(440, 0.4)})
        await wait_for(lambda: written(call) == sent, 30, "the tone written")
        await call.close(time.time())
        assert written(call) == sent == {0: 20}
    finally:
        await pool.stop()


def test_a_call_waits_for_no_worker_start_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slow_python_start(monkeypatch, tmp_path, 2.5)  # longer than the 1-s open timeout
    run_on("uvloop", open_on_a_slow_starter(tmp_path))


async def start_a_worker_that_never_serves(tmp_path: Path) -> None:
    pool = WorkerPool(1, start_timeout=2.0, restart_initial=30)
    began = time.monotonic()
    with pytest.raises(RtpWorkerError, match="no RTP worker process could be started"):
        await pool.start()
    assert time.monotonic() - began < 30
    assert pool.restarts == 0 and not pool.pids


def test_a_worker_not_ready_within_the_start_timeout_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow_python_start(monkeypatch, tmp_path, 600)
    before = set(child_pids())
    run_on("uvloop", start_a_worker_that_never_serves(tmp_path))
    assert not any(running(pid) for pid in set(child_pids()) - before)


def child_pids() -> list[int]:
    """This process's children (the workers it started and has not reaped)."""
    path = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children")
    return [int(pid) for pid in path.read_text().split()] if path.exists() else []


# ---- stop with calls open -----------------------------------------------------------------------
async def stop_with_calls_open(tmp_path: Path) -> None:
    pool = WorkerPool(2)
    await pool.start()
    pids = pool.pids
    calls = [await pool.media_factory(HOST, RANGE, tmp_path / f"open{i}.wav", PLAN) for i in range(3)]
    answered = time.time()
    for call in calls:
        call.start(answered)
    sent = await asyncio.gather(*(send_tones(c, {0: tone(440, 1.0), 1: tone(1000, 1.0)}) for c in calls))
    await wait_for(lambda: [written(c) for c in calls] == sent, 30, "every packet written")
    before = time.time()
    await pool.stop()
    after = time.time()
    assert not any(running(pid) for pid in pids)
    with pytest.raises(NoWorkerError):
        await pool.media_factory(HOST, RANGE, tmp_path / "late.wav", PLAN)
    for i, (call, packets) in enumerate(zip(calls, sent, strict=True)):
        assert isinstance(call, WorkerMediaSession) and call.closed and call.error is None
        assert written(call) == packets == {0: 50, 1: 50}
        await call.close(time.time())  # already final: returns at once, changes nothing
        path = tmp_path / f"open{i}.wav"
        assert header_is_final(path), "the worker did not finalise the file"
        frames = read_wav(path)
        assert pos(before - answered - 0.02) <= len(frames) <= pos(after - answered + 0.02)
        assert dominant_hz(frames[pos(0.1) : pos(0.9), 1]) == pytest.approx(1000, abs=5)


def test_stop_finalises_the_files_of_open_calls(tmp_path: Path) -> None:
    run_on("uvloop", stop_with_calls_open(tmp_path))


# ---- the main process dies --------------------------------------------------------------------
ORPHAN_SCRIPT = """
import asyncio, sys, time
from pathlib import Path
from server.rtp.workers.pool import WorkerPool
from server.callmedia.plan import MediaPlan, StreamPlan

async def main():
    pool = WorkerPool(2)
    await pool.start()
    media = await pool.media_factory("127.0.0.1", (int(sys.argv[2]), int(sys.argv[3])), Path(sys.argv[1]),
                                     MediaPlan((StreamPlan(0, "PCMU", 0, None, None, None),), 8000))
    media.start(time.time())
    print(" ".join(map(str, pool.pids)), flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


def test_workers_do_not_outlive_a_killed_main_process(tmp_path: Path) -> None:
    voice = tmp_path / "orphan.wav"
    main = subprocess.Popen(
        [sys.executable, "-c", ORPHAN_SCRIPT, str(voice), *map(str, RANGE)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert main.stdout is not None
        pids = [int(p) for p in main.stdout.readline().split()]
        assert len(pids) == 2 and all(running(p) for p in pids)
        time.sleep(0.7)
        main.kill()
        main.wait(5)
        deadline = time.monotonic() + 10
        while any(running(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(running(p) for p in pids), "an RTP worker outlived the killed main process"
    finally:
        if main.poll() is None:
            main.kill()
            main.wait()
        if main.stdout is not None:
            main.stdout.close()
    assert header_is_final(voice), "the orphaned worker did not finalise its file"
    frames = read_wav(voice, channels=1)
    assert len(frames) >= pos(0.5)


# ---- one worker over its socketpair, no pool --------------------------------------------------
class RawWorker:
    def __init__(
        self, proc: asyncio.subprocess.Process, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.proc, self.reader, self.writer = proc, reader, writer
        self.decoder = FrameDecoder(REPLIES)
        self.pending: list[Any] = []
        self.reports: list[Report] = []

    @classmethod
    async def start(cls) -> RawWorker:
        ours, theirs = socket.socketpair()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "server.rtp.workers.worker", "--index", "9", "--fd", str(theirs.fileno()),
            "--parent-pid", str(os.getpid()), pass_fds=(theirs.fileno(),), cwd=ROOT,
        )  # fmt: skip
        theirs.close()
        reader, writer = await asyncio.open_connection(sock=ours)
        return cls(proc, reader, writer)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def reply(self) -> Any:
        """The next message other than a report (reports are kept); None at the end of the stream."""
        while True:
            while self.pending:
                message = self.pending.pop(0)
                if isinstance(message, Report):
                    self.reports.append(message)
                else:
                    return message
            data = await asyncio.wait_for(self.reader.read(65536), 10)
            if not data:
                self.decoder.finish()
                return None
            self.pending.extend(self.decoder.feed(data))

    async def report_of(self, session: int) -> None:
        """Read until a report that includes ``session`` has come (other messages stay pending)."""
        while True:
            self.reports += [m for m in self.pending if isinstance(m, Report)]
            self.pending = [m for m in self.pending if not isinstance(m, Report)]
            if any(r.session == session for report in self.reports for r in report.sessions):
                return
            data = await asyncio.wait_for(self.reader.read(65536), 30)
            assert data, "the worker ended before reporting the session"
            self.pending.extend(self.decoder.feed(data))


async def drive_a_worker(tmp_path: Path) -> None:
    worker = await RawWorker.start()
    try:
        worker.send(encode_frame(Start(99, time.time())))
        assert await worker.reply() == Failed(99, "Start", "unknown session")
        bad_plan = MediaPlan((StreamPlan(0, "NOPE", 0, None, None, None),), RATE)
        worker.send(encode_frame(Open(1, HOST, RANGE, str(tmp_path / "bad.wav"), bad_plan)))
        failed = await worker.reply()
        assert isinstance(failed, Failed) and failed.command == "Open" and "NOPE" in failed.error
        worker.send(encode_frame(Open(2, HOST, RANGE, str(tmp_path / "good.wav"), MONO_PLAN)))
        opened = await worker.reply()
        assert isinstance(opened, Opened) and opened.session == 2 and RANGE[0] <= opened.ports[0] <= RANGE[1]
        worker.send(encode_frame(Open(2, HOST, RANGE, str(tmp_path / "dup.wav"), MONO_PLAN)))
        assert await worker.reply() == Failed(2, "Open", "session exists")
        worker.send(encode_frame(Start(2, time.time())) + encode_frame(Start(2, time.time())))
        again = await worker.reply()
        assert isinstance(again, Failed) and again.command == "Start" and "already started" in again.error
        await worker.report_of(2)
        # A bad frame ends the worker, like the end of the stream: the open session is closed first.
        worker.send(struct.pack("!I", 3) + b"abc")
        closed = await worker.reply()
        assert isinstance(closed, Closed) and closed.session == 2 and set(closed.stats) == {"0"}
        assert await worker.reply() is None
        assert await asyncio.wait_for(worker.proc.wait(), 10) == 0
    finally:
        if worker.proc.returncode is None:
            worker.proc.kill()
            await worker.proc.wait()
        worker.writer.close()
    assert any(r.session == 2 for report in worker.reports for r in report.sessions)
    assert header_is_final(tmp_path / "good.wav")
    assert not (tmp_path / "bad.wav").exists() and not (tmp_path / "dup.wav").exists()


def test_a_worker_answers_bad_commands_and_survives_them(tmp_path: Path) -> None:
    run_on("uvloop", drive_a_worker(tmp_path))
