"""Finalisation formats: MP3 mono/stereo, G.711 μ-law WAV, Opus; durations, channels, bitrates."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from server.errors import EmptyRecordingError, VoiceFormatError
from server.voice import formats
from server.voice.formats import SPECS, VoiceFormat, finalise
from server.voice.g711 import ULAW_DECODE, ulaw_encode
from server.voice.mixdown import downmix

RATE = 8000
SECONDS = 10.0


def speechlike(seconds: float, seed: int, level: float) -> np.ndarray:
    """Noise shaped by a syllable-rate envelope with pauses: closer to a call than a pure tone."""
    rng = np.random.default_rng(seed)
    n = round(seconds * RATE)
    t = np.arange(n) / RATE
    voiced = np.sin(2 * np.pi * (180 + 40 * seed) * t) + 0.5 * np.sin(2 * np.pi * 720 * t)
    syllables = np.clip(np.sin(2 * np.pi * (3 + seed) * t), 0, None)
    envelope = syllables * (np.sin(2 * np.pi * 0.4 * t + seed) > -0.3)  # and pauses between phrases
    signal = (0.7 * voiced + 0.3 * rng.standard_normal(n)) * envelope
    pcm: np.ndarray = np.clip(signal * level, -32768, 32767).astype(np.int16)  # numpy: Any
    return pcm


def write_wav(path: Path, frames: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(frames.shape[1])
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(frames.astype("<i2").tobytes())
    return path


@pytest.fixture(scope="module")
def source_frames() -> np.ndarray:
    return np.stack([speechlike(SECONDS, 1, 9000), speechlike(SECONDS, 2, 6000)], axis=1)


@pytest.fixture(scope="module")
def finalised(tmp_path_factory: pytest.TempPathFactory, source_frames: np.ndarray) -> dict[VoiceFormat, Path]:
    directory = tmp_path_factory.mktemp("voice")
    source = write_wav(directory / "voice.wav", source_frames)
    return finalise(source, directory, list(VoiceFormat))


def decode(path: Path) -> tuple[np.ndarray, int]:
    """Decoded samples as (frames, channels) float and the decoded rate."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        blocks = []
        rate = 0
        for frame in container.decode(stream):
            rate = frame.sample_rate
            array = frame.to_ndarray()
            if frame.format.is_planar:
                blocks.append(array.T)
            else:
                blocks.append(array.reshape(-1, len(frame.layout.channels)))
    return np.concatenate(blocks).astype(np.float64), rate


EXPECTED_CHANNELS = {
    VoiceFormat.MP3_8K_MONO: 1,
    VoiceFormat.MP3_16K_STEREO: 2,
    VoiceFormat.MP3_32K_STEREO: 2,
    VoiceFormat.WAV_ULAW: 2,
    VoiceFormat.OPUS: 2,
}


def test_every_format_is_written_with_its_name(finalised: dict[VoiceFormat, Path]) -> None:
    assert set(finalised) == set(VoiceFormat)
    names = {fmt: path.name for fmt, path in finalised.items()}
    assert names[VoiceFormat.MP3_8K_MONO] == "voice-8k-mono.mp3"
    assert names[VoiceFormat.OPUS] == "voice.opus"
    assert all(path.is_file() for path in finalised.values())
    assert not list(next(iter(finalised.values())).parent.glob("*.part"))


@pytest.mark.parametrize("fmt", list(VoiceFormat))
def test_duration_and_channels_match(finalised: dict[VoiceFormat, Path], fmt: VoiceFormat) -> None:
    samples, rate = decode(finalised[fmt])
    assert samples.shape[1] == EXPECTED_CHANNELS[fmt]
    assert abs(len(samples) / rate - SECONDS) <= 0.05
    with av.open(str(finalised[fmt])) as container:
        assert container.duration is not None
        assert abs(container.duration / 1e6 - SECONDS) <= 0.05


@pytest.mark.parametrize(
    ("fmt", "nominal"),
    [
        (VoiceFormat.MP3_8K_MONO, 8000),
        (VoiceFormat.MP3_16K_STEREO, 16000),
        (VoiceFormat.MP3_32K_STEREO, 32000),
        (VoiceFormat.OPUS, 24000),
    ],
)
def test_bitrate_within_15_percent(
    finalised: dict[VoiceFormat, Path], fmt: VoiceFormat, nominal: int
) -> None:
    bitrate = finalised[fmt].stat().st_size * 8 / SECONDS
    assert abs(bitrate - nominal) <= 0.15 * nominal, bitrate


def test_mp3_mono_is_the_sum_of_both_sides(
    finalised: dict[VoiceFormat, Path], source_frames: np.ndarray
) -> None:
    samples, _ = decode(finalised[VoiceFormat.MP3_8K_MONO])
    mono = downmix(source_frames).astype(np.float64) / 32768
    # The decoder trims LAME's delay, so the decoded audio lines up with the source.
    decoded = samples[: len(mono), 0]
    correlation = np.corrcoef(decoded, mono[: len(decoded)])[0, 1]
    assert correlation > 0.8


def test_stereo_keeps_caller_left_agent_right(
    finalised: dict[VoiceFormat, Path], source_frames: np.ndarray
) -> None:
    for fmt in (VoiceFormat.MP3_32K_STEREO, VoiceFormat.OPUS):
        samples, rate = decode(finalised[fmt])
        step = rate // RATE  # Opus decodes at 48 kHz
        decoded = samples[::step][: len(source_frames)]
        source = source_frames[: len(decoded)].astype(np.float64)
        left = np.corrcoef(decoded[:, 0], source[:, 0])[0, 1]
        cross = np.corrcoef(decoded[:, 0], source[:, 1])[0, 1]
        assert left > 0.5 and abs(cross) < 0.3, (fmt, left, cross)


def test_ulaw_wav_is_g711_of_the_source(
    finalised: dict[VoiceFormat, Path], source_frames: np.ndarray
) -> None:
    path = finalised[VoiceFormat.WAV_ULAW]
    header = path.read_bytes()[:64]
    tag, channels, rate, byte_rate, align, bits = struct.unpack_from("<HHIIHH", header, 20)
    assert (tag, channels, rate, byte_rate, align, bits) == (7, 2, 8000, 16000, 2, 8)
    decoded, decoded_rate = decode(path)  # FFmpeg's decoder, independent of our tables
    assert decoded_rate == RATE and len(decoded) == len(source_frames)
    reference = ULAW_DECODE[np.frombuffer(ulaw_encode(source_frames), np.uint8)].reshape(-1, 2)
    assert np.array_equal(decoded.astype(np.int16), reference)
    error = np.abs(decoded - source_frames)
    # G.711 quantisation: half a step, the step doubling per segment (≈ 1/16 of the magnitude).
    assert (error <= np.abs(source_frames) / 16 + 68).all()


def test_mono_source_and_odd_length(tmp_path: Path) -> None:
    source = write_wav(tmp_path / "mono.wav", speechlike(1.0001, 3, 8000)[:, None][:8001])
    out = finalise(source, tmp_path, [VoiceFormat.WAV_ULAW, VoiceFormat.MP3_16K_STEREO, VoiceFormat.OPUS])
    samples, _ = decode(out[VoiceFormat.WAV_ULAW])
    assert samples.shape == (8001, 1)
    assert out[VoiceFormat.WAV_ULAW].stat().st_size % 2 == 0  # RIFF pad byte
    assert decode(out[VoiceFormat.MP3_16K_STEREO])[0].shape[1] == 2
    assert decode(out[VoiceFormat.OPUS])[0].shape[1] == 1


def test_empty_recording_is_refused_cleanly(tmp_path: Path) -> None:
    source = write_wav(tmp_path / "empty.wav", np.zeros((0, 2), dtype=np.int16))
    with pytest.raises(EmptyRecordingError):
        finalise(source, tmp_path, [VoiceFormat.WAV_ULAW, VoiceFormat.MP3_8K_MONO])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.wav"]


def test_missing_encoder_is_named_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_wav(tmp_path / "voice.wav", np.zeros((800, 2), dtype=np.int16))
    monkeypatch.setattr(formats, "encoder_available", lambda codec: codec != "libmp3lame")
    with pytest.raises(VoiceFormatError, match="libmp3lame"):
        finalise(source, tmp_path, [VoiceFormat.WAV_ULAW, VoiceFormat.MP3_8K_MONO])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["voice.wav"]


def test_native_opus_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not formats.encoder_available("opus"):
        pytest.skip("this FFmpeg has no native Opus encoder")
    source = write_wav(tmp_path / "voice.wav", np.stack([speechlike(2.0, 1, 9000)] * 2, axis=1))
    monkeypatch.setattr(formats, "encoder_available", lambda codec: codec != "libopus")
    out = finalise(source, tmp_path, [VoiceFormat.OPUS])
    samples, rate = decode(out[VoiceFormat.OPUS])
    assert rate == 48000 and abs(len(samples) / rate - 2.0) <= 0.05


def test_never_replaces_an_existing_output(tmp_path: Path) -> None:
    source = write_wav(tmp_path / "voice.wav", np.zeros((800, 2), dtype=np.int16))
    (tmp_path / "voice-ulaw.wav").write_bytes(b"precious")
    with pytest.raises(VoiceFormatError, match="already exists"):
        finalise(source, tmp_path, [VoiceFormat.WAV_ULAW])
    assert (tmp_path / "voice-ulaw.wav").read_bytes() == b"precious"


def test_rejects_a_source_that_is_not_16_bit_pcm(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(VoiceFormatError, match="cannot read"):
        finalise(bad, tmp_path, [VoiceFormat.WAV_ULAW])
    eight_bit = tmp_path / "u8.wav"
    with wave.open(str(eight_bit), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(1)
        wav.setframerate(RATE)
        wav.writeframes(bytes(100))
    with pytest.raises(VoiceFormatError, match="16-bit"):
        finalise(eight_bit, tmp_path, [VoiceFormat.OPUS])
    assert not list(tmp_path.glob("*.part"))


def test_specs_cover_every_format() -> None:
    assert set(SPECS) == set(VoiceFormat)


def test_downmix_sums_with_saturation() -> None:
    frames = np.array([[1000, -400], [30000, 10000], [-30000, -10000], [5, 0]], dtype=np.int16)
    assert downmix(frames).tolist() == [600, 32767, -32768, 5]
