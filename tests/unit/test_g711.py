"""G.711 μ-law / A-law against known code values, the reference coder and error bounds."""

from __future__ import annotations

import importlib
import warnings
from types import ModuleType

import numpy as np
import pytest

from server.voice import g711

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    audioop: ModuleType | None
    try:  # the reference (Sun g711.c) coder; gone from Python 3.13
        audioop = importlib.import_module("audioop")
    except ImportError:  # pragma: no cover - newer Pythons
        audioop = None

ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int16)


def test_known_ulaw_values() -> None:
    assert g711.ulaw_decode(bytes([0xFF, 0x7F, 0x80, 0x00])).tolist() == [0, 0, 32124, -32124]
    samples = np.array([0, 32767, -32768, 1000], dtype=np.int16)
    assert g711.ulaw_encode(samples) == bytes([0xFF, 0x80, 0x00, 0xCE])


def test_known_alaw_values() -> None:
    assert g711.alaw_decode(bytes([0xD5, 0x55, 0xAA, 0x2A])).tolist() == [8, -8, 32256, -32256]
    samples = np.array([0, -1, 32767, -32768], dtype=np.int16)
    assert g711.alaw_encode(samples) == bytes([0xD5, 0x55, 0xAA, 0x2A])


@pytest.mark.skipif(audioop is None, reason="audioop (reference coder) not available")
def test_bit_exact_with_reference() -> None:
    assert audioop is not None
    pcm = ALL_SAMPLES.tobytes()
    codes = bytes(range(256))
    assert g711.ulaw_encode(ALL_SAMPLES) == audioop.lin2ulaw(pcm, 2)
    assert g711.alaw_encode(ALL_SAMPLES) == audioop.lin2alaw(pcm, 2)
    assert g711.ulaw_decode(codes).tobytes() == audioop.ulaw2lin(codes, 2)
    assert g711.alaw_decode(codes).tobytes() == audioop.alaw2lin(codes, 2)


@pytest.mark.parametrize(
    ("encode", "decode", "clip"),
    [(g711.ulaw_encode, g711.ulaw_decode, 32124), (g711.alaw_encode, g711.alaw_decode, 32256)],
)
def test_round_trip_error_bounds(encode, decode, clip) -> None:  # type: ignore[no-untyped-def]
    decoded = decode(encode(ALL_SAMPLES)).astype(np.int64)
    original = ALL_SAMPLES.astype(np.int64)
    inside = np.abs(original) <= clip
    error = np.abs(decoded - original)[inside]
    # Logarithmic quantisation: the step is at most 1/16 of the magnitude (plus the smallest step).
    assert np.all(error <= np.abs(original[inside]) / 16 + 16)
    assert int(error.max()) <= 1024  # half the largest segment's step
    # Beyond the largest code the output saturates at it.
    assert np.all(np.abs(decoded[~inside]) == clip)
    # Re-encoding a decoded value is exact: the decode table holds the codes' centre values.
    codes = bytes(range(256))
    assert decode(encode(decode(codes))).tolist() == decode(codes).tolist()


def test_round_trip_monotonic_and_symmetric() -> None:
    for encode, decode in ((g711.ulaw_encode, g711.ulaw_decode), (g711.alaw_encode, g711.alaw_decode)):
        decoded = decode(encode(ALL_SAMPLES)).astype(np.int64)
        assert np.all(np.diff(decoded) >= 0)
        positive = np.arange(1, 32768, dtype=np.int16)
        mirrored = decode(encode(positive)).astype(np.int64) + decode(encode(-positive))
        # The reference coder floors negative values, so mirror images may differ by one step.
        assert np.all(np.abs(mirrored) <= positive / 16 + 16)


def test_speech_snr_is_telephone_quality() -> None:
    rng = np.random.default_rng(3)
    signal = (np.sin(np.linspace(0, 400 * np.pi, 8000)) * 8000 + rng.normal(0, 500, 8000)).astype(np.int16)
    for encode, decode in ((g711.ulaw_encode, g711.ulaw_decode), (g711.alaw_encode, g711.alaw_decode)):
        noise = decode(encode(signal)).astype(np.float64) - signal
        snr = 10 * np.log10(np.mean(signal.astype(np.float64) ** 2) / np.mean(noise**2))
        assert snr > 30  # G.711's ~38 dB SQNR for mid-level signals


def test_encode_rejects_other_dtypes() -> None:
    with pytest.raises(TypeError):
        g711.ulaw_encode(np.zeros(4, dtype=np.float32))


def test_tables_are_read_only() -> None:
    with pytest.raises(ValueError):
        g711.ULAW_DECODE[0] = 1
