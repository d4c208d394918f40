"""G.722 decoding, packet by packet, against tones encoded by FFmpeg's G.722 encoder."""

from __future__ import annotations

import numpy as np
import pytest

from server.rtp.codecs import codec_by_name
from server.voice import g722

RATE = 16000
PACKET_OCTETS = 160  # 20 ms: 320 samples at 16 kHz, 160 RTP timestamp units
CODEC_DELAY = 22  # samples: the encoder's and decoder's QMF filter banks together


def tone(frequency: float, seconds: float, amplitude: float = 8000.0) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return np.round(amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


def decode_in_packets(data: bytes, decoder: g722.G722Decoder | None = None) -> np.ndarray:
    decoder = decoder or g722.G722Decoder()
    parts = [decoder(data[i : i + PACKET_OCTETS]) for i in range(0, len(data), PACKET_OCTETS)]
    return np.concatenate(parts)


def dominant_frequency(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(float) * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / RATE)[int(np.argmax(spectrum))])


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(float) ** 2)))


@pytest.mark.parametrize("frequency", [440.0, 1000.0, 5000.0])  # 5 kHz: only wideband keeps it
def test_tone_survives_encode_and_packet_decode(frequency: float) -> None:
    source = tone(frequency, 1.0)
    data = g722.encode(source)
    assert len(data) == len(source) // 2  # 64 kbit/s: one octet per two samples
    decoded = decode_in_packets(data)
    assert decoded.dtype == np.int16 and len(decoded) == len(source)
    steady = decoded[1600:]  # past the ADPCM's adaptation at the start
    assert abs(dominant_frequency(steady) - frequency) <= 2.0
    level_db = 20 * np.log10(rms(steady) / rms(source[1600:]))
    assert abs(level_db) < 1.0
    # And it is the tone, not just its frequency: small error once the codec's delay is removed.
    reference = source[4000:12000].astype(float)
    error = rms(decoded[4000 + CODEC_DELAY : 12000 + CODEC_DELAY] - reference)
    assert 20 * np.log10(rms(reference) / error) > 20  # SNR in dB


def test_sweep_delay_and_fidelity() -> None:
    """A 200 Hz → 6 kHz sweep (not periodic, so the delay is unambiguous) comes back intact."""
    t = np.arange(RATE) / RATE
    sweep = np.round(8000 * np.sin(2 * np.pi * (200 * t + 2900 * t**2))).astype(np.int16)
    decoded = decode_in_packets(g722.encode(sweep))
    reference = sweep[2000:14000].astype(float)
    errors = [rms(decoded[2000 + d : 14000 + d] - reference) for d in range(64)]
    assert int(np.argmin(errors)) == CODEC_DELAY
    assert 20 * np.log10(rms(reference) / min(errors)) > 20


def test_state_carries_across_packets() -> None:
    data = g722.encode(tone(1000.0, 0.5))
    whole = g722.G722Decoder()(data)
    assert np.array_equal(decode_in_packets(data), whole)
    # A fresh decoder per packet restarts the ADPCM at every boundary: audibly different.
    restarted = np.concatenate(
        [g722.G722Decoder()(data[i : i + PACKET_OCTETS]) for i in range(0, len(data), PACKET_OCTETS)]
    )
    assert not np.array_equal(restarted, whole)
    assert rms(restarted[1600:].astype(float) - whole[1600:]) > 50


def test_empty_payload_does_not_end_the_stream() -> None:
    decoder = g722.G722Decoder()
    data = g722.encode(tone(1000.0, 0.1))
    first = decoder(data[:160])
    assert len(decoder(b"")) == 0
    assert len(decoder(data[160:320])) == 320 and len(first) == 320


def test_any_octets_decode() -> None:
    # Every octet string is valid G.722: random payloads never raise, and keep their length.
    rng = np.random.default_rng(5)
    decoder = g722.G722Decoder()
    for size in (1, 7, 160, 1000):
        assert len(decoder(rng.integers(0, 256, size, dtype=np.uint8).tobytes())) == 2 * size


def test_codec_entry() -> None:
    codec = codec_by_name("g722")
    assert (codec.payload_type, codec.clock_rate, codec.audio_rate, codec.samples_per_timestamp) == (
        9,
        8000,
        16000,
        2,
    )
    first, second = codec.new_decoder(), codec.new_decoder()
    assert first is not second  # one decoder (one ADPCM state) per stream
    pcmu = codec_by_name("PCMU")
    assert pcmu.new_decoder()(b"\xff\x00").tolist() == [0, -32124]


def test_encode_rejects_other_dtypes() -> None:
    with pytest.raises(TypeError):
        g722.encode(np.zeros(10, dtype=np.float32))
