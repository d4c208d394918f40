"""Payload decoding to the voice file's rate: the codec, integer upsampling, timestamp scale."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from server.errors import RtpSessionError
from server.rtp.codecs import codec_by_name
from server.rtp.decoder import PayloadDecoder
from server.voice.g711 import ulaw_decode, ulaw_encode
from server.voice.resample import LinearUpsampler


def test_upsample_by_two_values() -> None:
    up = LinearUpsampler(2)
    out = up.process(np.array([10, 20, -5, -6], dtype=np.int16), continuous=False)
    # Each input ends its pair; the first pair starts flat (nothing came before).
    assert out.tolist() == [10, 10, 15, 20, 8, -5, -5, -6]
    assert out.dtype == np.int16
    out = up.process(np.array([0, 32767, -32768], dtype=np.int16))  # continues from -6
    assert out.tolist() == [-3, 0, 16384, 32767, 0, -32768]  # no overflow at the extremes


@pytest.mark.parametrize("factor", [2, 3, 6])
def test_packetwise_equals_whole_signal(factor: int) -> None:
    rng = np.random.default_rng(factor)
    signal = rng.integers(-30000, 30000, 1600, dtype=np.int16)
    whole = LinearUpsampler(factor).process(signal, continuous=False)
    up = LinearUpsampler(factor)
    parts = [up.process(signal[i : i + 160], continuous=i > 0) for i in range(0, 1600, 160)]
    assert np.array_equal(np.concatenate(parts), whole)
    # and it is linear interpolation (``x[k]`` on the last of its ``factor`` outputs)
    x = np.arange(len(signal)) * factor + factor - 1
    expected = np.interp(np.arange(len(whole)), x, signal.astype(float))
    assert np.abs(whole[factor - 1 :] - expected[factor - 1 :]).max() <= 1


def test_discontinuous_packet_starts_flat() -> None:
    up = LinearUpsampler(2)
    up.process(np.full(4, 1000, dtype=np.int16))
    assert up.process(np.full(2, -1000, dtype=np.int16), continuous=False).tolist() == [-1000] * 4
    up.reset()
    assert up.process(np.full(1, 7, dtype=np.int16)).tolist() == [7, 7]


def test_tone_keeps_frequency_and_level() -> None:
    t = np.arange(8000) / 8000
    tone = np.round(8000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    out = LinearUpsampler(2).process(tone, continuous=False)
    assert len(out) == 16000
    spectrum = np.abs(np.fft.rfft(out.astype(float)))
    assert np.fft.rfftfreq(16000, 1 / 16000)[int(np.argmax(spectrum))] == 1000.0
    # The 7 kHz image is attenuated (linear interpolation), not removed.
    assert spectrum[7000] < 0.1 * spectrum[1000]


@pytest.mark.parametrize(
    ("codec", "rate", "scale", "samples"),
    [("PCMU", None, 1, 160), ("PCMU", 16000, 2, 320), ("G722", None, 2, 320), ("G722", 32000, 4, 640)],
)
def test_rates_and_timestamp_scale(codec: str, rate: int | None, scale: int, samples: int) -> None:
    decoder = PayloadDecoder(codec_by_name(codec), rate)
    assert decoder.timestamp_scale == Fraction(scale)
    assert len(decoder.decode(1, 0, bytes(160))) == samples


@pytest.mark.parametrize(("codec", "rate"), [("G722", 12000), ("PCMU", 12000), ("PCMA", 0)])
def test_unsupported_rate(codec: str, rate: int) -> None:
    with pytest.raises(RtpSessionError, match="whole multiple"):
        PayloadDecoder(codec_by_name(codec), rate)


def test_upsampling_follows_the_stream() -> None:
    """Carry the previous sample only into the packet that follows on (same SSRC, next timestamp)."""
    t = np.arange(800) / 8000
    pcm = np.round(6000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)
    payloads = [ulaw_encode(pcm[i : i + 160]) for i in range(0, 800, 160)]
    decoder = PayloadDecoder(codec_by_name("PCMU"), 16000)
    parts = [decoder.decode(7, (1000 + 160 * k) & 0xFFFFFFFF, p) for k, p in enumerate(payloads)]
    whole = LinearUpsampler(2).process(ulaw_decode(b"".join(payloads)), continuous=False)
    assert np.array_equal(np.concatenate(parts), whole)
    # After a gap (packet 5 lost) the next packet starts flat instead of ramping from old audio.
    after_gap = decoder.decode(7, 1000 + 160 * 6, payloads[0])
    assert after_gap[0] == after_gap[1] == ulaw_decode(payloads[0])[0]
    # Continuity across the 32-bit timestamp wrap.
    decoder.decode(7, 0xFFFFFF60, payloads[1])
    wrapped = decoder.decode(7, 0, payloads[2])
    last, first = int(ulaw_decode(payloads[1])[-1]), int(ulaw_decode(payloads[2])[0])
    assert last != first and wrapped[0] == (last + first + 1) >> 1
    # A new SSRC with the "right" timestamp is not a continuation.
    assert ulaw_decode(payloads[2])[-1] != ulaw_decode(payloads[3])[0]
    assert decoder.decode(8, 160, payloads[3])[0] == ulaw_decode(payloads[3])[0]
