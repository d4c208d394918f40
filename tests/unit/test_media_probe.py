"""Media probing: WAV header parsing (including what a crashed writer leaves), MP4 box walking,
and the PyAV-based stream, frame-time and audio-onset helpers on small synthetic files."""

from __future__ import annotations

import io
import struct
import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from server.errors import ProbeError
from server.media import probe
from server.media.boxes import is_faststart, iter_top_level_boxes
from server.media.riff import WAVE_FORMAT_MULAW, WAVE_FORMAT_PCM, WavInfo, parse_wav


def _fmt(tag: int = 1, channels: int = 1, rate: int = 8000, bits: int = 16, extra: bytes = b"") -> bytes:
    block = channels * bits // 8
    body = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits) + extra
    return b"fmt " + struct.pack("<I", len(body)) + body


def _riff(*chunks: bytes) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _parse(data: bytes) -> WavInfo:
    return parse_wav(io.BytesIO(data), len(data))


def test_plain_pcm_wav() -> None:
    info = _parse(_riff(_fmt(), b"data" + struct.pack("<I", 1600) + bytes(1600)))
    assert (info.format_tag, info.channels, info.rate, info.bits_per_sample) == (WAVE_FORMAT_PCM, 1, 8000, 16)
    assert info.frames == 800 and info.duration == pytest.approx(0.1) and info.data_offset == 44


@pytest.mark.parametrize("declared", [0, 0xFFFFFFFF, 10_000])
def test_crashed_writer_sizes_fall_back_to_bytes_on_disk(declared: int) -> None:
    data = _riff(_fmt(channels=2), b"data" + struct.pack("<I", declared) + bytes(803))
    info = _parse(data)
    assert info.channels == 2 and info.frames == 200  # 803 bytes: 200 whole 4-byte frames


def test_odd_chunk_is_padded_and_skipped() -> None:
    odd = b"LIST" + struct.pack("<I", 3) + b"abc\x00"
    data = _riff(_fmt(), odd, b"data" + struct.pack("<I", 4) + bytes(4))
    assert _parse(data).frames == 2


def test_extensible_format_reports_subformat() -> None:
    guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    extra = struct.pack("<HHI", 22, 8, 4) + struct.pack("<H", WAVE_FORMAT_MULAW) + guid_tail
    data = _riff(_fmt(tag=0xFFFE, bits=8, extra=extra), b"data" + struct.pack("<I", 8) + bytes(8))
    info = _parse(data)
    assert info.format_tag == WAVE_FORMAT_MULAW and info.frames == 8


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not a RIFF"),
        (b"RIFX" + bytes(8), "not a RIFF"),
        (_riff(b"data" + struct.pack("<I", 4) + bytes(4)), "before fmt"),
        (_riff(b"fmt " + struct.pack("<I", 8) + bytes(8)), "too short"),
        (_riff(_fmt(channels=0), b"data\x00\x00\x00\x00"), "invalid fmt"),
        (_riff(_fmt()), "no data chunk"),
        (_riff(b"fmt " + struct.pack("<I", 1 << 20)), "implausibly large"),
    ],
)
def test_malformed_wav_raises_probe_error(data: bytes, reason: str) -> None:
    with pytest.raises(ProbeError, match=reason):
        _parse(data)
    assert issubclass(ProbeError, ValueError)


def _box(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _boxes(data: bytes) -> list[str]:
    return [b.kind for b in iter_top_level_boxes(io.BytesIO(data), len(data))]


def test_box_walk_handles_64_bit_and_to_end_sizes() -> None:
    large = struct.pack(">I", 1) + b"mdat" + struct.pack(">Q", 20) + b"abcd"
    to_end = struct.pack(">I", 0) + b"free" + b"xyz"
    assert _boxes(_box(b"ftyp", b"isom") + _box(b"moov") + large + to_end) == ["ftyp", "moov", "mdat", "free"]
    assert is_faststart(["ftyp", "moov", "mdat"]) and not is_faststart(["ftyp", "mdat", "moov"])
    assert not is_faststart(["ftyp", "moof", "mdat"])


@pytest.mark.parametrize(
    "data",
    [
        _box(b"ftyp") + b"\x00\x00\x00",  # truncated header
        _box(b"ftyp") + struct.pack(">I", 100) + b"mdat",  # runs past the end of the file
        struct.pack(">I", 4) + b"ftyp",  # smaller than its own header
        struct.pack(">I", 1) + b"mdat" + b"\x00\x00",  # truncated 64-bit size
    ],
)
def test_bad_boxes_raise_probe_error(data: bytes) -> None:
    with pytest.raises(ProbeError):
        _boxes(data)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("probe")
    wav = d / "beep.wav"
    rate = 8000
    t = np.arange(rate) / rate  # 1 s: silence, then a tone from 0.25 s
    pcm = np.where(t >= 0.25, 0.6 * np.sin(2 * np.pi * 1000 * t), 0.0)
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((pcm * 32767).astype("<i2").tobytes())
    mp4 = d / "clip.mp4"
    with av.open(str(mp4), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        stream = out.add_stream("libx264", options={"bf": "0", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for ms in (0, 40, 500, 540):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            frame.pts, frame.time_base = ms, Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    garbage = d / "garbage.bin"
    garbage.write_bytes(bytes(range(256)) * 4)
    return {"wav": wav, "mp4": mp4, "garbage": garbage}


def test_wav_info_on_file(files: dict[str, Path]) -> None:
    info = probe.wav_info(files["wav"])
    assert (info.channels, info.rate, info.frames) == (1, 8000, 8000)
    with pytest.raises(ProbeError):
        probe.wav_info(files["mp4"])
    with pytest.raises(ProbeError, match="cannot read"):
        probe.wav_info(files["wav"].with_name("absent.wav"))


def test_stream_and_frame_helpers(files: dict[str, Path]) -> None:
    streams = probe.mp4_streams(files["mp4"])
    assert len(streams) == 1
    video = streams[0]
    assert (video.kind, video.codec, video.width, video.height, video.frames) == ("video", "h264", 32, 32, 4)
    assert video.start_time == 0.0
    assert probe.video_frame_times(files["mp4"]) == pytest.approx([0.0, 0.04, 0.5, 0.54])
    assert is_faststart(probe.top_level_boxes(files["mp4"]))
    wav_streams = probe.mp4_streams(files["wav"])
    assert [(s.kind, s.rate, s.channels) for s in wav_streams] == [("audio", 8000, 1)]


def test_audio_onset(files: dict[str, Path]) -> None:
    onset = probe.audio_onset(files["wav"])
    assert onset is not None and onset == pytest.approx(0.25, abs=0.002)
    assert probe.audio_onset(files["wav"], threshold=0.99) is None
    with pytest.raises(ProbeError, match="no audio"):
        probe.audio_onset(files["mp4"])
    with pytest.raises(ProbeError, match="no video"):
        probe.video_frame_times(files["wav"])


def test_unreadable_media_raises_probe_error(files: dict[str, Path]) -> None:
    for helper in (probe.mp4_streams, probe.video_frame_times, probe.audio_onset, probe.container_duration):
        with pytest.raises(ProbeError):
            helper(files["garbage"])
