"""Waveform peaks of a voice WAV (server/media/peaks.py): per channel, silence, length, size."""

from __future__ import annotations

import base64
import io
import wave
from pathlib import Path

import numpy as np
import pytest

from server.errors import ProbeError
from server.media import peaks


def _wav(samples: np.ndarray, rate: int = 8000) -> io.BytesIO:
    """A 16-bit PCM WAV of ``samples`` (frames x channels, int16)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(samples.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    buf.seek(0)
    return buf


def _compute(buf: io.BytesIO) -> peaks.Peaks:
    return peaks.compute(buf, len(buf.getbuffer()))


def test_two_channels_are_kept_apart_caller_left_agent_right() -> None:
    rate = 8000
    frames = rate * 3
    t = np.arange(frames) / rate
    tone = (np.sin(2 * np.pi * 440 * t) * 16000).astype(np.int16)
    samples = np.zeros((frames, 2), dtype=np.int16)
    samples[:rate, 0] = tone[:rate]  # caller speaks in second 0
    samples[2 * rate :, 1] = tone[2 * rate :]  # agent speaks in second 2
    p = _compute(_wav(samples, rate))
    assert p.names == ("caller", "agent")
    caller, agent = (np.frombuffer(c, dtype=np.uint8) for c in p.channels)
    bps = p.bins_per_second
    assert caller[:bps].min() >= 120 and caller[bps:].max() == 0
    assert agent[: 2 * bps].max() == 0 and agent[2 * bps :].min() >= 120


def test_silence_is_zero_and_any_sound_is_at_least_one() -> None:
    samples = np.zeros((8000, 1), dtype=np.int16)
    samples[4000, 0] = 1  # one quiet sample in the second half
    p = _compute(_wav(samples))
    mixed = np.frombuffer(p.channels[0], dtype=np.uint8)
    assert p.names == ("mixed",)
    assert mixed[:4].tolist() == [0, 0, 0, 0] and mixed[4] == 1


def test_full_scale_negative_sample_is_255() -> None:
    samples = np.full((800, 2), -32768, dtype=np.int16)
    p = _compute(_wav(samples))
    assert p.channels[0] == b"\xff" and p.channels[1] == b"\xff"


def test_length_covers_a_partial_last_bin_and_duration() -> None:
    rate = 16000
    frames = rate * 2 + 100  # 2 s and a bit: 17 bins at 8/s
    p = _compute(_wav(np.ones((frames, 2), dtype=np.int16), rate))
    assert [len(c) for c in p.channels] == [17, 17]
    assert p.frames == frames and p.duration == pytest.approx(frames / rate)


def test_encode_decode_round_trip_and_damage_refused() -> None:
    p = _compute(_wav(np.arange(-8000, 8000, dtype=np.int16).reshape(-1, 2)))
    assert peaks.decode(peaks.encode(p)) == p
    with pytest.raises(ValueError):
        peaks.decode(peaks.encode(p)[:-1])


def test_not_pcm16_is_refused() -> None:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(b"\x80" * 800)
    buf.seek(0)
    with pytest.raises(ProbeError):
        _compute(buf)


def test_one_hour_of_stereo_fits_the_100_kb_budget(tmp_path: Path) -> None:
    rate = 8000
    path = tmp_path / "hour.wav"
    rng = np.random.default_rng(1)
    minute = rng.integers(-3000, 3000, size=(rate * 60, 2), dtype=np.int16).astype("<i2").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        for _ in range(60):
            w.writeframes(minute)
    with path.open("rb") as fh:
        p = peaks.compute(fh, path.stat().st_size)
    assert p.duration == pytest.approx(3600)
    assert all(len(c) == 3600 * peaks.BINS_PER_SECOND for c in p.channels)
    # What the player loads: each channel base64 in the JSON.
    loaded = sum(len(base64.b64encode(c)) for c in p.channels)
    assert loaded <= 100_000
    assert len(peaks.encode(p)) <= 100_000
