"""Endpoint audio through the real encoder, segment writer and spool (a fake sound device driven
with chosen server times), decoded back with PyAV; the server's checks and its derived track."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recorder_service.encoder import AudioFormat, ScreenEncoder
from recorder_service.endpoint_audio import BLOCK, EndpointAudio
from recorder_service.segment_writer import SegmentWriter
from recorder_service.spool import Spool
from server.media.endpoint_audio_track import build_endpoint_audio, segment_audio
from server.media.segment_validation import (
    FramesInPause,
    InteractionWindow,
    Span,
    check_segment_times,
    validate_segment_file,
)

RATE = 48000


def _image(value: int) -> np.ndarray:
    return np.full((48, 64, 4), value, dtype=np.uint8)


def _tone(n: int, start: int = 0) -> np.ndarray:
    t = (start + np.arange(n)) / RATE
    return (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)


def placed(path: Path, started_at: float, channel: int = 0) -> tuple[float, np.ndarray]:
    """The segment's decoded audio laid on a grid: (server time of index 0, samples)."""
    frames = list(segment_audio(path))
    assert frames, f"{path.name} has no audio"
    end = max(at + len(s) / RATE for at, s in frames)
    grid = np.zeros(round(end * RATE) + 1, np.float32)
    for at, samples in frames:
        i = round(at * RATE)
        grid[i : i + len(samples)] = samples[:, channel]
    return started_at, grid


def onsets(grid: np.ndarray, threshold: float = 0.1, min_gap: float = 0.05) -> list[float]:
    """Seconds into ``grid`` where a tone starts (after at least ``min_gap`` of quiet)."""
    loud = np.flatnonzero(np.abs(grid) > threshold)
    if loud.size == 0:
        return []
    starts = [loud[0]] + [b for a, b in itertools.pairwise(loud) if b - a > min_gap * RATE]
    return [s / RATE for s in starts]


def test_encoder_puts_audio_on_the_video_timeline(tmp_path: Path) -> None:
    """Audio fed from pts 0 (inside the AAC lead-in) with a tone at 0.700 s, a gap of 100 ms
    left by the device, and a tone after it at 1.500 s: both decoded at their pts (±2 ms)."""
    path = tmp_path / "a.mp4"
    enc = ScreenEncoder(path, fps=5, audio=AudioFormat())
    signal = np.zeros(2 * RATE, np.float32)
    signal[round(0.7 * RATE) : round(0.9 * RATE)] = _tone(round(0.2 * RATE))
    signal[round(1.5 * RATE) : round(1.7 * RATE)] = _tone(round(0.2 * RATE))
    pos = 0
    for i in range(11):
        enc.encode(_image(i * 20), i * 200)
        while pos < min(i * 0.2, 2.0) * RATE:
            if round(1.0 * RATE) <= pos < round(1.1 * RATE):  # nothing delivered: a gap
                pos += BLOCK
                continue
            block = np.stack([signal[pos : pos + BLOCK]] * 2, axis=1)
            enc.encode_audio(block, pos)
            pos += BLOCK
    enc.close()
    _, grid = placed(path, 0.0)
    found = onsets(grid)
    assert len(found) == 2
    assert found[0] == pytest.approx(0.7, abs=0.002)
    assert found[1] == pytest.approx(1.5, abs=0.002)
    media = validate_segment_file(path)
    assert media.has_audio and min(media.audio_pts) >= 0


class FakeStream:
    """Stands in for sounddevice.InputStream: the test calls its callback."""

    opened: list[FakeStream] = []

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.callback = kwargs["callback"]
        self.started = self.closed = False
        FakeStream.opened.append(self)

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


class Overflow:
    input_overflow = True


def test_writer_records_endpoint_audio_on_the_server_clock_and_not_in_a_pause(tmp_path: Path) -> None:
    """A microphone whose sample 0 is at server time 1000.0 (blocks arrive 0-8 ms late), a tone
    at 1001.000 and another at 1003.000 inside a pause [1002.5, 1004.0): the first segment holds
    the first tone at its server time, no audio at or after the pause; the second segment (after
    the resume) has only silence where the paused tone was, and the server accepts both."""
    FakeStream.opened = []
    now = [0.0]
    audio = EndpointAudio(lambda: now[0], stream_factory=FakeStream)
    audio.start()
    mic, heard = FakeStream.opened
    assert audio.sources == ["microphone", "what the agent hears"]
    spool = Spool(tmp_path)
    writer = SegmentWriter(
        spool,
        "i1",
        "r1",
        encoder_factory=lambda path: ScreenEncoder(path, fps=5, audio=AudioFormat()),
        segment_seconds=60.0,
        hold=0.0,
        audio=audio,
    )
    t0, pause, resume = 1000.0, 1002.5, 1004.0
    signal = np.zeros(6 * RATE, np.float32)
    for at in (1.0, 3.0):
        signal[round(at * RATE) : round((at + 0.2) * RATE)] = _tone(round(0.2 * RATE))
    rng = np.random.default_rng(7)
    n = 0
    frame_ts = t0 + 0.1
    state = "recording"
    while n + BLOCK <= len(signal):
        now[0] = t0 + (n + BLOCK) / RATE + float(rng.uniform(0.0, 0.008))
        block = signal[n : n + BLOCK].reshape(-1, 1)
        mic.callback(block, BLOCK, None, None)
        heard.callback(np.zeros_like(block), BLOCK, None, None)
        n += BLOCK
        # the pause command arrives 200 ms after its time (within the gate's hold-back): audio
        # past the pause is already buffered and must not reach the segment
        if now[0] >= pause + 0.2 and state == "recording":
            audio.pause(pause)
            while frame_ts < pause:  # the gate hands over its held frames before the pause
                writer.write(frame_ts, _image(int(frame_ts * 10) % 256))
                frame_ts += 0.2
            writer.close(end=pause, final=False)
            state = "paused"
        if now[0] >= resume and state == "paused":
            audio.resume(resume)
            state = "resumed"
        # the video: a frame every 200 ms, released 300 ms after its time (the gate's hold-back)
        while frame_ts <= now[0] - 0.3:
            if not pause <= frame_ts < resume:
                writer.write(frame_ts, _image(int(frame_ts * 10) % 256))
            frame_ts += 0.2
    writer.close(end=None, final=True)
    audio.close()
    assert mic.closed and heard.closed
    segments = sorted(spool.ready(), key=lambda r: r.seq)
    assert len(segments) == 2
    first, second = segments
    start, grid = placed(first.path, first.started_at)
    found = [start + s for s in onsets(grid)]
    assert found == [pytest.approx(1001.0, abs=0.010)]
    window = InteractionWindow(t0, t0 + 10, (Span(pause, resume),))
    for ref in segments:
        media = validate_segment_file(ref.path)
        assert media.has_audio
        check_segment_times(ref.started_at, media, window, start_slack=2, end_slack=5)  # no FramesInPause
        assert all(not pause <= ref.started_at + a < resume for a in media.audio_pts)
    start, grid = placed(second.path, second.started_at)
    assert second.started_at >= resume
    assert onsets(grid) == []  # the tone at 1003 lay in the pause


def test_server_refuses_a_segment_with_audio_inside_a_pause(tmp_path: Path) -> None:
    """Defence in depth: the same segment the recorder would write, but the server knows of a
    pause the recorder missed: its audio packets inside it are refused."""
    path = tmp_path / "a.mp4"
    enc = ScreenEncoder(path, fps=5, audio=AudioFormat())
    for i in range(6):
        enc.encode(_image(i * 20), i * 200)
        enc.encode_audio(np.zeros((9600, 2), np.float32), i * 9600)
    enc.close()
    media = validate_segment_file(path)
    window = InteractionWindow(100.0, 110.0, (Span(101.05, 101.15),))  # between two frames
    with pytest.raises(FramesInPause):
        check_segment_times(100.0, media, window, start_slack=2, end_slack=5)


def test_overflow_restarts_the_sample_clock(tmp_path: Path) -> None:
    FakeStream.opened = []
    now = [50.0]
    audio = EndpointAudio(lambda: now[0], stream_factory=FakeStream, monitor=False)
    audio.start()
    (mic,) = FakeStream.opened
    block = np.zeros((BLOCK, 1), np.float32)
    for _ in range(10):
        now[0] += BLOCK / RATE
        mic.callback(block, BLOCK, None, None)
    now[0] += 1.0  # a second of samples lost
    mic.callback(block, BLOCK, None, Overflow())
    assert audio.drops == 1
    got = audio.take(now[0] + 1)
    assert got is not None
    at, samples = got
    # the block after the overflow is placed at its arrival, not right after the earlier ones
    assert at + len(samples) / RATE == pytest.approx(now[0], abs=0.001)
    assert len(samples) > RATE


def test_derived_track_on_the_server_clock(tmp_path: Path) -> None:
    """Two segments with a tone each, a gap between them and a pause span: the M4A starts at
    the given server time, the tones are at theirs (±5 ms), silence in the gap and the pause."""
    refs = []
    for k, (seg_start, tones) in enumerate(((200.0, (0.5, 1.5)), (204.0, (0.5,)))):
        path = tmp_path / f"s{k}.mp4"
        enc = ScreenEncoder(path, fps=5, audio=AudioFormat())
        signal = np.zeros(2 * RATE, np.float32)
        for at in tones:
            signal[round(at * RATE) : round((at + 0.2) * RATE)] = _tone(round(0.2 * RATE))
        for i in range(11):
            enc.encode(_image(i * 20), i * 200)
            a = round(i * 0.2 * RATE)
            enc.encode_audio(np.stack([signal[a : a + 9600]] * 2, axis=1), a)
        enc.close()
        refs.append((path, seg_start))
    out = tmp_path / "endpoint.m4a"
    track = build_endpoint_audio(refs, out, started_at=199.0, ended_at=207.0, pauses=[(201.4, 201.8)])
    assert track is not None and track.segments == 2
    import av

    with av.open(str(out)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "aac" and stream.rate == RATE
        grid = np.zeros(9 * RATE, np.float32)
        for frame in container.decode(stream):
            assert frame.pts is not None and stream.time_base is not None
            i = round(float(frame.pts * stream.time_base) * RATE)
            data = frame.to_ndarray()[0]
            if i >= 0:
                grid[i : i + len(data)] = data[: len(grid) - i]
    found = [199.0 + s for s in onsets(grid)]
    # 201.5 lies in the pause [201.4, 201.8): silent
    assert found == [pytest.approx(200.5, abs=0.005), pytest.approx(204.5, abs=0.005)]
    silent = tmp_path / "video-only.mp4"
    enc = ScreenEncoder(silent, fps=5)
    enc.encode(_image(1), 0)
    enc.close()
    none = tmp_path / "none.m4a"
    assert build_endpoint_audio([(silent, 200.0)], none, started_at=199.0, ended_at=207.0) is None
    assert not none.exists()


def test_a_long_pause_queues_nothing_and_drops_nothing() -> None:
    """Nobody takes audio during a pause (no segment is open): blocks from the pause on are not
    queued, so a pause longer than the queue drops nothing and the audio after it flows."""
    FakeStream.opened = []
    now = [100.0]
    audio = EndpointAudio(lambda: now[0], stream_factory=FakeStream, monitor=False)
    audio.start()
    (mic,) = FakeStream.opened
    audio.pause(100.0)
    block = np.full((BLOCK, 1), 0.5, np.float32)
    for _ in range(round(60 / (BLOCK / RATE))):  # a minute of pause: 6,000 blocks
        now[0] += BLOCK / RATE
        mic.callback(block, BLOCK, None, None)
    assert audio.drops == 0
    audio.resume(now[0])
    for _ in range(10):
        now[0] += BLOCK / RATE
        mic.callback(block, BLOCK, None, None)
    audio.discard_before(now[0] - 0.1)
    got = audio.take(now[0])
    assert got is not None
    at, samples = got
    assert at == pytest.approx(now[0] - 0.1, abs=0.002)
    assert (samples[:, 0] == 0.5).all()
