"""Dual-channel voice: the channel aligner (pure) and the crash-safe stereo WAV writer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from server.errors import AlignerError, WavWriterError
from server.voice.mixdown import ChannelAligner
from server.voice.stereo_writer import Channel, StereoWavWriter
from server.voice.timeline import VoiceTimeline

REPO = Path(__file__).resolve().parents[2]
CALLER, AGENT = Channel.CALLER, Channel.AGENT


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def ramp(start: int, count: int, offset: int = 0) -> np.ndarray:
    return (((np.arange(start, start + count) + offset) % 20000) - 10000).astype(np.int16)


def read_stereo(path: Path) -> tuple[wave._wave_params, np.ndarray]:
    with wave.open(str(path), "rb") as wav:
        params = wav.getparams()
        data = np.frombuffer(wav.readframes(params.nframes), dtype="<i2")
    return params, data.reshape(-1, params.nchannels)


class Collector:
    def __init__(self) -> None:
        self.blocks: list[np.ndarray] = []

    def __call__(self, frames: np.ndarray) -> None:
        self.blocks.append(frames.copy())

    @property
    def frames(self) -> np.ndarray:
        return np.concatenate(self.blocks) if self.blocks else np.zeros((0, 2), dtype=np.int16)


# --- the aligner ---------------------------------------------------------------------------


def test_aligner_emits_only_what_both_channels_reached() -> None:
    out = Collector()
    aligner = ChannelAligner(out, max_lag=1000)
    aligner.push(0, 0, ramp(0, 300))
    assert aligner.emitted == 0 and out.blocks == []
    aligner.push(1, 0, ramp(0, 200, 7))
    assert aligner.emitted == 200
    aligner.push(1, 200, ramp(200, 300, 7))
    assert aligner.emitted == 300
    assert np.array_equal(out.frames[:, 0], ramp(0, 300))
    assert np.array_equal(out.frames[:, 1], ramp(0, 300, 7))
    assert aligner.end(0) == 300 and aligner.end(1) == 500
    assert aligner.stats.filled == [0, 0]


def test_lagging_channel_is_filled_with_silence_beyond_the_window() -> None:
    out = Collector()
    aligner = ChannelAligner(out, max_lag=400, block=250)
    aligner.push(0, 0, ramp(0, 100))
    aligner.push(1, 0, ramp(0, 100, 3))
    aligner.push(0, 100, ramp(100, 1000))  # the agent's packets stop arriving
    assert aligner.emitted == 700  # caller buffered only max_lag ahead
    assert aligner.end(0) - aligner.emitted == 400
    assert aligner.stats.filled == [0, 600] and aligner.stats.fill_events == [0, 1]
    assert all(len(block) <= 250 for block in out.blocks)
    # The agent's audio finally arrives for positions already filled: the overlap is dropped.
    aligner.push(1, 100, ramp(100, 800, 3))
    assert aligner.stats.dropped[1] == 600
    assert aligner.emitted == 900
    frames = out.frames
    assert np.array_equal(frames[:, 0], ramp(0, 900))
    assert np.array_equal(frames[:100, 1], ramp(0, 100, 3))
    assert not frames[100:700, 1].any()
    assert np.array_equal(frames[700:900, 1], ramp(700, 200, 3))


def test_gap_in_positions_becomes_counted_silence() -> None:
    out = Collector()
    aligner = ChannelAligner(out, max_lag=10_000)
    aligner.push(0, 0, ramp(0, 100))
    aligner.push(0, 300, ramp(300, 100))
    aligner.push(1, 0, ramp(0, 400))
    assert aligner.stats.gaps == [200, 0]
    frames = out.frames
    assert not frames[100:300, 0].any() and np.array_equal(frames[300:, 0], ramp(300, 100))


def test_finish_pads_and_cuts_to_the_end() -> None:
    out = Collector()
    aligner = ChannelAligner(out, max_lag=10_000)
    aligner.push(0, 0, ramp(0, 500))
    aligner.push(1, 0, ramp(0, 100))
    aligner.finish(300)
    frames = out.frames
    assert frames.shape == (300, 2)
    assert np.array_equal(frames[:, 0], ramp(0, 300))
    assert np.array_equal(frames[:100, 1], ramp(0, 100)) and not frames[100:, 1].any()
    assert aligner.stats.discarded_at_end == [200, 0]
    with pytest.raises(AlignerError):
        aligner.push(0, 300, ramp(0, 10))


def test_zero_silences_buffered_samples_and_reports_emitted_part() -> None:
    out = Collector()
    aligner = ChannelAligner(out, max_lag=10_000)
    readonly = ramp(0, 600)
    readonly.setflags(write=False)  # the timeline hands out read-only silence arrays
    aligner.push(0, 0, readonly)
    aligner.push(1, 0, ramp(0, 200))
    assert aligner.zero(0, 100, 400) == (100, 200)  # 100..200 already emitted: the caller's job
    aligner.push(1, 200, ramp(200, 400))
    frames = out.frames
    assert np.array_equal(frames[200:400, 0], np.zeros(200, dtype=np.int16))
    assert np.array_equal(frames[400:, 0], ramp(400, 200))
    assert np.array_equal(readonly, ramp(0, 600))


def test_aligner_rejects_bad_input() -> None:
    aligner = ChannelAligner(Collector())
    with pytest.raises(AlignerError):
        aligner.push(2, 0, ramp(0, 10))
    with pytest.raises(AlignerError):
        aligner.push(0, 0, np.zeros(10, dtype=np.float32))


# --- the writer ----------------------------------------------------------------------------


def test_new_file_is_a_valid_empty_stereo_wav(tmp_path: Path) -> None:
    path = tmp_path / "v.wav"
    writer = StereoWavWriter(path)
    params, frames = read_stereo(path)
    assert (params.nchannels, params.sampwidth, params.framerate, params.nframes) == (2, 2, 8000, 0)
    assert frames.shape == (0, 2)
    writer.close()
    assert read_stereo(path)[0].nframes == 0


def test_caller_left_agent_right_and_close_pads_to_end(tmp_path: Path) -> None:
    path = tmp_path / "v.wav"
    with StereoWavWriter(path) as writer:
        for k in range(10):
            writer.write(CALLER, k * 160, ramp(k * 160, 160))
        for k in range(5):
            writer.write(AGENT, k * 160, ramp(k * 160, 160, 5000))
        assert writer.frames_written == 800
        writer.close(2000)
    params, frames = read_stereo(path)
    assert params.nframes == 2000 and path.stat().st_size == 44 + 4 * 2000
    assert np.array_equal(frames[:1600, 0], ramp(0, 1600)) and not frames[1600:, 0].any()
    assert np.array_equal(frames[:800, 1], ramp(0, 800, 5000)) and not frames[800:, 1].any()


def test_close_before_what_was_written_truncates(tmp_path: Path) -> None:
    path = tmp_path / "v.wav"
    writer = StereoWavWriter(path)
    writer.write(CALLER, 0, ramp(0, 1000))
    writer.write(AGENT, 0, ramp(0, 1000))
    writer.close(600)
    params, frames = read_stereo(path)
    assert params.nframes == 600 and np.array_equal(frames[:, 1], ramp(0, 600))


def test_header_follows_data_at_most_every_interval(tmp_path: Path) -> None:
    path = tmp_path / "v.wav"
    clock = FakeClock()
    writer = StereoWavWriter(path, clock=clock)
    writer.write(CALLER, 0, ramp(0, 4000))
    writer.write(AGENT, 0, ramp(0, 4000))
    assert writer.frames_written == 4000 and read_stereo(path)[0].nframes == 0
    clock.now = 1.0
    writer.maybe_sync()
    assert writer.wait_synced(10)  # fsync and header are the syncer thread's
    assert writer.frames_synced == 4000 and read_stereo(path)[0].nframes == 4000
    writer.close()


def test_late_pause_zeroes_one_channel_on_disk_and_in_buffer(tmp_path: Path) -> None:
    path = tmp_path / "v.wav"
    with StereoWavWriter(path, max_lag=1.0) as writer:
        writer.write(CALLER, 0, ramp(0, 3000))
        writer.write(AGENT, 0, ramp(0, 2000, 9))
        writer.zero(AGENT, 1500, 2000)
        writer.zero(CALLER, 1000, 2500)  # 1000..2000 on disk, 2000..2500 still buffered
        writer.write(AGENT, 2000, ramp(2000, 1000, 9))
    frames = read_stereo(path)[1]
    expected_caller = ramp(0, 3000)
    expected_caller[1000:2500] = 0
    expected_agent = ramp(0, 3000, 9)
    expected_agent[1500:2000] = 0
    assert np.array_equal(frames[:, 0], expected_caller)
    assert np.array_equal(frames[:, 1], expected_agent)


def test_lag_window_bounds_buffering_in_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "v.wav"
    with StereoWavWriter(path, max_lag=0.5) as writer:
        for k in range(100):  # 2 s of caller audio, no agent packets at all
            writer.write(CALLER, k * 160, ramp(k * 160, 160))
            assert writer.channel_end(CALLER) - writer.frames_written <= 4000 + 160
        assert writer.frames_written == 16000 - 4000
        assert writer.stats.filled[AGENT] == 12000
    assert read_stereo(path)[0].nframes == 16000


def test_never_replaces_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "v.wav"
    path.write_bytes(b"precious")
    with pytest.raises(WavWriterError, match="cannot create"):
        StereoWavWriter(path)
    assert path.read_bytes() == b"precious"


def test_closed_writer_refuses_writes(tmp_path: Path) -> None:
    writer = StereoWavWriter(tmp_path / "v.wav")
    writer.close()
    writer.close()
    with pytest.raises(WavWriterError, match="closed"):
        writer.write(CALLER, 0, ramp(0, 10))
    other = StereoWavWriter(tmp_path / "w.wav")
    with pytest.raises(TypeError):
        other.write(CALLER, 0, np.zeros(4, dtype=np.float64))
    other.close()


def test_fed_by_two_voice_timelines(tmp_path: Path) -> None:
    """The intended wiring: one timeline per stream, chunks go to the writer at their positions."""
    path = tmp_path / "v.wav"
    timelines = {CALLER: VoiceTimeline(100.0), AGENT: VoiceTimeline(100.0)}
    with StereoWavWriter(path) as writer:
        for k in range(100):  # 2 s; the agent leg loses packets 40..59
            for channel, timeline in timelines.items():
                if channel is AGENT and 40 <= k < 60:
                    continue
                payload = np.full(160, 1000 if channel is CALLER else -1000, dtype=np.int16)
                result = timeline.push(1 + channel, k * 160, payload, 100.0 + k * 0.02)
                for chunk in result.chunks:
                    writer.write(channel, chunk.position, chunk.samples)
        writer.close(20000, {channel: tl.finish(102.5).chunks for channel, tl in timelines.items()})
        assert writer.stats.filled == [0, 0] and writer.stats.dropped == [0, 0]
    params, frames = read_stereo(path)
    assert params.nframes == 20000
    assert (frames[:16000, 0] == 1000).all() and not frames[16000:, 0].any()
    assert (frames[:6400, 1] == -1000).all() and not frames[6400:9600, 1].any()
    assert (frames[9600:16000, 1] == -1000).all()


_CHILD = """
import sys, time
import numpy as np
from pathlib import Path
from server.voice.stereo_writer import Channel, StereoWavWriter
from server.voice.syncer import default_syncer
writer = StereoWavWriter(Path(sys.argv[1]))  # the default 0.5-s interval
start = time.monotonic()
k = 0
while True:  # 20 ms per leg every 20 ms, as a SIPREC call would deliver; a tick syncs after each
    pos = k * 160
    samples = ((np.arange(pos, pos + 160) % 20000) - 10000).astype(np.int16)
    writer.write(Channel.CALLER, pos, samples)
    writer.write(Channel.AGENT, pos, -samples)
    writer.maybe_sync()
    k += 1
    print(writer.frames_written, default_syncer().stats.synced, flush=True)
    time.sleep(max(0.0, start + k * 0.02 - time.monotonic()))
"""
TICK_FRAMES = 160


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
    params, frames = read_stereo(path)
    assert (params.nchannels, params.framerate, params.sampwidth) == (2, 8000, 2)
    assert synced >= 4  # ~5 due by 2.6 s: the background syncer kept the header up
    # A sync due at the kill may still be in its fsync; the one before it covers all but
    # sync_interval plus the tick that made the next one due.
    assert written - (int(0.5 * 8000) + TICK_FRAMES) <= params.nframes <= written + TICK_FRAMES
    expected = ((np.arange(params.nframes) % 20000) - 10000).astype(np.int16)
    assert np.array_equal(frames[:, 0], expected)
    assert np.array_equal(frames[:, 1], -expected)


def test_channel_writers_driven_like_two_rtp_sessions(tmp_path: Path) -> None:
    """RtpSession's sequence per leg: write chunks, tick syncs, then finish → write → truncate → close."""
    path = tmp_path / "v.wav"
    stereo = StereoWavWriter(path)
    legs = {CALLER: stereo.channel(CALLER), AGENT: stereo.channel(AGENT)}
    timelines = {CALLER: VoiceTimeline(50.0), AGENT: VoiceTimeline(50.0)}
    for k in range(50):  # 1 s; the agent stops talking (no packets) after 0.5 s
        for channel, timeline in timelines.items():
            if channel is AGENT and k >= 25:
                continue
            payload = np.full(160, 700 + channel, dtype=np.int16)
            for chunk in timeline.push(9 + channel, k * 160, payload, 50.0 + k * 0.02).chunks:
                legs[channel].write(chunk.samples)
        for channel, timeline in timelines.items():  # the sessions' 100 ms tick
            if k % 5 == 4:
                for chunk in timeline.flush(50.0 + k * 0.02):
                    legs[channel].write(chunk.samples)
                legs[channel].maybe_sync()
    stereo.end_of_call()
    for channel, timeline in timelines.items():  # BYE: the sessions close one after the other
        result = timeline.finish(51.5)
        for chunk in result.chunks:
            legs[channel].write(chunk.samples)
        legs[channel].truncate(result.length)
        assert not stereo.closed
        legs[channel].close()
    assert stereo.closed
    params, frames = read_stereo(path)
    assert params.nframes == 12000
    assert (frames[:8000, 0] == 700).all() and not frames[8000:, 0].any()
    assert (frames[:4000, 1] == 701).all() and not frames[4000:, 1].any()
    assert stereo.stats.dropped == [0, 0]
    with pytest.raises(WavWriterError):
        legs[CALLER].write(ramp(0, 10))
