"""Mux of a synthetic screen fMP4 and voice WAV: stream copy, alignment on the server clock,
faststart, chapters, errors; plus the pure timing helpers behind it."""

from __future__ import annotations

import math
import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from server.errors import MuxError
from server.media import probe
from server.media.boxes import is_faststart
from server.media.mux import MIN_AAC_RATE, aac_output_rate, mux_screen_and_voice
from server.media.timeline import LEAD_IN_LABEL, align, chapters_from_markers

# Screen: 10 fps for 1.5 s, a pause (no frames) until 3.0 s, then 10 fps again until 4.0 s.
FRAME_MS = [*range(0, 1500, 100), *range(3000, 4100, 100)]
SYNC_TOLERANCE = 0.040  # EBU R37
TONE_AT = 0.7  # seconds into the WAV where the tone starts
WAV_SECONDS = 5.0


def _grey(i: int) -> int:
    return 20 + (i * 37) % 200  # distinct enough per frame to identify it after decoding


def make_screen(path: Path) -> None:
    """H.264 in fragmented MP4 like the recorder's: 1/1000 pts, variable rate, no B-frames."""
    with av.open(
        str(path), "w", format="mp4", options={"movflags": "frag_keyframe+empty_moov+default_base_moof"}
    ) as out:
        stream = out.add_stream("libx264", options={"bf": "0", "preset": "ultrafast", "g": "8"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for i, ms in enumerate(FRAME_MS):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), _grey(i), np.uint8), format="rgb24")
            frame.pts, frame.time_base = ms, Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def make_wav(path: Path, rate: int = 8000, channels: int = 1) -> None:
    """Silence, then a 440 Hz tone from TONE_AT to the end, 16-bit PCM."""
    n = int(rate * WAV_SECONDS)
    t = np.arange(n) / rate
    mono = np.where(t >= TONE_AT, 0.5 * np.sin(2 * np.pi * 440 * (t - TONE_AT)), 0.0)
    pcm = (mono * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.repeat(pcm, channels).tobytes())


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("media")
    paths = {"screen": d / "screen.mp4", "voice": d / "voice.wav", "stereo": d / "stereo.wav"}
    make_screen(paths["screen"])
    make_wav(paths["voice"])
    make_wav(paths["stereo"], rate=16000, channels=2)
    return paths


def _video_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.video[0]) if p.size]


def _frame_greys(path: Path) -> list[int]:
    with av.open(str(path)) as c:
        return [round(float(f.to_ndarray(format="gray").mean())) for f in c.decode(video=0)]


@pytest.mark.parametrize(("screen_at", "voice_at"), [(1000.0, 1000.8), (1001.25, 1000.0), (500.0, 500.0)])
def test_mux_aligns_streams_on_server_clock(
    media: dict[str, Path], tmp_path: Path, screen_at: float, voice_at: float
) -> None:
    out = tmp_path / "muxed.mp4"
    result = mux_screen_and_voice(media["screen"], screen_at, media["voice"], voice_at, out)
    origin = min(screen_at, voice_at)
    video_offset, audio_offset = screen_at - origin, voice_at - origin
    assert result.origin == origin
    assert result.video_offset == pytest.approx(video_offset)
    assert result.audio_offset == pytest.approx(audio_offset)
    assert result.video_frames == len(FRAME_MS) and result.video_dropped == 0
    assert result.audio_duration == pytest.approx(WAV_SECONDS, abs=1e-3)

    streams = probe.mp4_streams(out)
    assert [(s.kind, s.codec) for s in streams] == [("video", "h264"), ("audio", "aac")]
    audio = streams[1]
    assert audio.channels == 1 and audio.rate == MIN_AAC_RATE

    # Stream copy: identical bytes, identical frames, only shifted in time.
    assert _video_packets(out) == _video_packets(media["screen"])
    assert _frame_greys(out) == _frame_greys(media["screen"])
    times = probe.video_frame_times(out)
    assert times == pytest.approx([ms / 1000 + video_offset for ms in FRAME_MS], abs=1e-3)

    onset = probe.audio_onset(out)
    assert onset is not None
    assert abs(onset - (audio_offset + TONE_AT)) <= SYNC_TOLERANCE

    assert is_faststart(probe.top_level_boxes(out))
    expected_end = max(video_offset + FRAME_MS[-1] / 1000, audio_offset + WAV_SECONDS)
    assert result.duration == pytest.approx(expected_end, abs=0.15)
    assert probe.container_duration(out) == pytest.approx(result.duration)
    assert not [p for p in tmp_path.iterdir() if p.name != "muxed.mp4"]  # temp file renamed away


def test_stereo_voice_stays_stereo(media: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "stereo.mp4"
    mux_screen_and_voice(media["screen"], 10.0, media["stereo"], 10.5, out)
    audio = [s for s in probe.mp4_streams(out) if s.kind == "audio"]
    assert len(audio) == 1 and audio[0].channels == 2 and audio[0].rate == 16000
    onset = probe.audio_onset(out)
    assert onset is not None and abs(onset - (0.5 + TONE_AT)) <= SYNC_TOLERANCE


def test_markers_become_chapters(media: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "chapters.mp4"
    markers = [(103.0, "call end"), (100.5, "call start"), (99.0, "before"), (200.0, "after end")]
    result = mux_screen_and_voice(media["screen"], 100.0, media["voice"], 100.2, out, markers=markers)
    assert result.chapters_written
    labels = [c.label for c in result.chapters]
    assert labels == ["before", "call start", "call end"]  # "before" clamped to 0, "after end" dropped
    with av.open(str(out)) as c:
        written = [
            (float(ch["start"] * (ch["time_base"] or 0)), ch["metadata"].get("title")) for ch in c.chapters()
        ]
        assert len(c.streams.video) == 1 and len(c.streams.audio) == 1
    assert written == [(0.0, "before"), (0.5, "call start"), (3.0, "call end")]


def test_missing_and_corrupt_inputs_raise_mux_error(media: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(b"previous version")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 8)
    cases = [
        (tmp_path / "missing.mp4", media["voice"], "cannot open screen"),
        (garbage, media["voice"], "screen"),
        (media["voice"], media["voice"], "no video stream"),
        (media["screen"], media["screen"], "no audio stream"),
    ]
    for screen, voice, reason in cases:
        with pytest.raises(MuxError, match=reason) as info:
            mux_screen_and_voice(screen, 0.0, voice, 0.0, out)
        assert info.value.__cause__ is not None or "stream" in reason
    assert out.read_bytes() == b"previous version"  # a failed mux never replaces the old output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["garbage.mp4", "out.mp4"]


def test_truncated_screen_is_an_error_or_a_shorter_copy(media: dict[str, Path], tmp_path: Path) -> None:
    data = media["screen"].read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # an fMP4 cut mid-fragment: the recorder crashed
    out = tmp_path / "out.mp4"
    try:
        result = mux_screen_and_voice(cut, 0.0, media["voice"], 0.0, out)
    except MuxError:
        assert not out.exists()
    else:
        assert 0 < result.video_frames < len(FRAME_MS)
        assert result.video_dropped <= 1  # at most the one packet the cut went through
        assert _video_packets(out) == _video_packets(media["screen"])[: result.video_frames]


def test_voice_left_by_a_crashed_writer_is_muxed_whole(media: dict[str, Path], tmp_path: Path) -> None:
    data = bytearray(media["voice"].read_bytes())
    data[4:8] = (36).to_bytes(4, "little")  # header still says "no data yet", as right after start
    data[40:44] = bytes(4)
    crashed = tmp_path / "crashed.wav"
    crashed.write_bytes(bytes(data))
    result = mux_screen_and_voice(media["screen"], 0.0, crashed, 0.0, tmp_path / "out.mp4")
    assert result.audio_duration == pytest.approx(WAV_SECONDS, abs=1e-3)
    assert probe.wav_info(crashed).duration == pytest.approx(WAV_SECONDS)


def test_absurd_start_gap_is_refused(media: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(MuxError, match="apart"):
        mux_screen_and_voice(media["screen"], 0.0, media["voice"], 86400.0, tmp_path / "o.mp4")
    with pytest.raises(MuxError, match="finite"):
        mux_screen_and_voice(media["screen"], math.nan, media["voice"], 0.0, tmp_path / "o.mp4")


# --- pure helpers -------------------------------------------------------------------------------


def test_align_puts_earlier_stream_at_zero() -> None:
    a = align(10.0, 12.5)
    assert (a.origin, a.video_offset, a.audio_offset) == (10.0, 0.0, 2.5)
    b = align(12.5, 10.0)
    assert (b.origin, b.video_offset, b.audio_offset) == (10.0, 2.5, 0.0)
    with pytest.raises(MuxError):
        align(0.0, 100.0, max_start_gap=50.0)
    with pytest.raises(MuxError):
        align(math.inf, 0.0)


def test_aac_output_rate() -> None:
    assert aac_output_rate(8000) == 16000
    assert aac_output_rate(16000) == 16000
    assert aac_output_rate(44100) == 44100
    assert aac_output_rate(45000) == 48000
    assert aac_output_rate(192000) == 96000


def test_chapters_from_markers() -> None:
    chapters = chapters_from_markers([(15.0, "b"), (12.0, "a"), (50.0, "late"), (math.nan, "x")], 10.0, 20.0)
    assert [(c.start, c.end, c.label) for c in chapters] == [
        (0.0, 2.0, LEAD_IN_LABEL),
        (2.0, 5.0, "a"),
        (5.0, 20.0, "b"),
    ]
    assert chapters_from_markers([(5.0, "early")], 10.0, 20.0)[0].start == 0.0
    assert chapters_from_markers([], 0.0, 10.0) == []
    assert chapters_from_markers([(1.0, "a")], 0.0, 0.0) == []
