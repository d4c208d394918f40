"""Audio in and out of the SIPp tests: the tones and RTP captures SIPp sends, and measurements
of the WAVs the server records (which tone a channel carries, how far below it the other tone
is, where a channel is silent). Everything but ``write_tone`` and ``read_wav`` is pure.
"""

from __future__ import annotations

import random
import socket
import struct
import subprocess
import wave
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

RATE = 8000
PACKET_SAMPLES = 160  # 20 ms of 8 kHz audio per RTP packet
_PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # Ethernet link type
SILENCE_DB = -50.0  # below this RMS (dBFS) a stretch counts as silent; the test tones are -9 dBFS

Samples = npt.NDArray[np.float64]


# ---- what SIPp sends ---------------------------------------------------------------------------
def write_tone(path: Path, freq: float, seconds: float, volume: float = 0.5) -> bytes:
    """A sine tone as raw 8 kHz μ-law (sox, undithered), what ``rtp_stream`` sends as PCMU.
    Returns the bytes."""
    subprocess.run(
        [
            "sox",
            "-D",
            "-n",
            "-t",
            "ul",
            "-r",
            str(RATE),
            "-c",
            "1",
            str(path),
            "synth",
            f"{seconds:g}",
            "sine",
            f"{freq:g}",
            "vol",
            f"{volume:g}",
        ],
        check=True,
        capture_output=True,
    )
    return path.read_bytes()


def lost_packets(count: int, fraction: float, seed: int, keep_edges: int = 5) -> frozenset[int]:
    """Indices of ``round(fraction * count)`` packets to lose, drawn at random (seeded) but never
    among the first and last ``keep_edges``, so the stream's start and end stay measurable."""
    candidates = range(keep_edges, count - keep_edges)
    lost = round(fraction * count)
    if lost > len(candidates):
        raise ValueError(f"cannot lose {lost} of {count} packets keeping {keep_edges} at each end")
    return frozenset(random.Random(seed).sample(candidates, lost))


def rtp_pcap(
    payload: bytes,
    lost: Collection[int] = (),
    *,
    payload_type: int = 0,
    ssrc: int = 0x7A4D0001,
    dst_port: int = 30000,
) -> bytes:
    """A pcap of the RTP packets carrying ``payload`` (20 ms each, 8 kHz) minus the ``lost`` ones,
    with the gaps left as they would be on the wire: sequence numbers, RTP timestamps and capture
    times skip what was lost. SIPp's play_pcap_audio keeps the capture's timing and rewrites the
    addresses and ports."""
    frames = [_PCAP_HEADER]
    for index in range(len(payload) // PACKET_SAMPLES):
        if index in lost:
            continue
        chunk = payload[index * PACKET_SAMPLES : (index + 1) * PACKET_SAMPLES]
        rtp = (
            struct.pack(
                "!BBHII",
                0x80,
                payload_type & 0x7F,
                index & 0xFFFF,
                (index * PACKET_SAMPLES) & 0xFFFFFFFF,
                ssrc,
            )
            + chunk
        )
        udp = struct.pack("!HHHH", dst_port + 10000, dst_port, 8 + len(rtp), 0) + rtp
        ip = struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(udp),
            index & 0xFFFF,
            0,
            64,
            17,
            0,
            socket.inet_aton("127.0.0.1"),
            socket.inet_aton("127.0.0.1"),
        )
        frame = b"\x00" * 12 + b"\x08\x00" + ip + udp
        micros = index * PACKET_SAMPLES * 1_000_000 // RATE
        frames.append(struct.pack("<IIII", micros // 1_000_000, micros % 1_000_000, len(frame), len(frame)))
        frames.append(frame)
    return b"".join(frames)


@dataclass(frozen=True, slots=True)
class CapturedRtp:
    time: float
    sequence: int
    timestamp: int
    payload: bytes


def read_rtp_pcap(data: bytes) -> list[CapturedRtp]:
    """The RTP packets of a pcap written by ``rtp_pcap`` (Ethernet, IPv4, UDP)."""
    if data[:4] != _PCAP_HEADER[:4]:
        raise ValueError("not a little-endian microsecond pcap")
    packets: list[CapturedRtp] = []
    offset = len(_PCAP_HEADER)
    while offset + 16 <= len(data):
        seconds, micros, length, _ = struct.unpack_from("<IIII", data, offset)
        frame = data[offset + 16 : offset + 16 + length]
        offset += 16 + length
        header_len = (frame[14] & 0x0F) * 4
        rtp = frame[14 + header_len + 8 :]
        _, _, sequence, timestamp, _ = struct.unpack_from("!BBHII", rtp)
        packets.append(CapturedRtp(seconds + micros / 1e6, sequence, timestamp, rtp[12:]))
    return packets


# ---- what the server recorded ------------------------------------------------------------------
@dataclass(frozen=True)
class Recording:
    rate: int
    samples: Samples  # shape (frames, channels), full scale = 1.0

    @property
    def channels(self) -> int:
        return int(self.samples.shape[1])

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate

    def channel(self, index: int, start: float = 0.0, end: float | None = None) -> Samples:
        """Channel ``index`` from ``start`` to ``end`` seconds (clipped to the file)."""
        lo = max(0, round(start * self.rate))
        hi = len(self.samples) if end is None else max(lo, round(end * self.rate))
        return self.samples[lo:hi, index]


def read_wav(path: Path) -> Recording:
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path.name}: {8 * wav.getsampwidth()}-bit samples, expected 16-bit PCM")
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        channels, rate = wav.getnchannels(), wav.getframerate()
    return Recording(rate, frames.reshape(-1, channels).astype(np.float64) / 32768.0)


def rms_db(x: Samples) -> float:
    """RMS level in dBFS (a full-scale sine is -3 dB); an empty or all-zero stretch is -200."""
    if len(x) == 0:
        return -200.0
    power = float(np.mean(np.square(x)))
    return 10 * float(np.log10(power)) if power > 1e-20 else -200.0


def is_silent(x: Samples, threshold_db: float = SILENCE_DB) -> bool:
    return rms_db(x) < threshold_db


def _spectrum(x: Samples) -> npt.NDArray[np.float64]:
    window = np.hanning(len(x))
    return np.abs(np.fft.rfft(x * window)) * 2 / max(float(window.sum()), 1e-12)


def tone_db(x: Samples, rate: int, freq: float) -> float:
    """Amplitude (dBFS, full-scale sine = 0 dB) of the strongest component within 10 Hz of
    ``freq``: how loud that tone is in ``x``."""
    if len(x) < 16:
        return -200.0
    spectrum = _spectrum(x)
    resolution = rate / len(x)
    lo = max(0, int((freq - 10) / resolution))
    hi = min(len(spectrum), int((freq + 10) / resolution) + 2)
    peak = float(spectrum[lo:hi].max()) if hi > lo else 0.0
    return 20 * float(np.log10(peak)) if peak > 1e-10 else -200.0


def dominant_hz(x: Samples, rate: int) -> float:
    """Frequency of the strongest spectral peak above 50 Hz."""
    spectrum = _spectrum(x)
    first = int(50 * len(x) / rate) + 1
    if len(spectrum) <= first:
        return 0.0
    return (first + int(np.argmax(spectrum[first:]))) * rate / len(x)


def first_sound(x: Samples, threshold: float = 0.05) -> int | None:
    """Index of the first sample louder than ``threshold`` (full scale 1.0), None if none is."""
    loud = np.flatnonzero(np.abs(x) > threshold)
    return int(loud[0]) if len(loud) else None


def packet_windows(x: Samples, start: int, count: int, margin: int = 16) -> list[Samples]:
    """The stretch of ``x`` each of ``count`` consecutive 20 ms packets should fill, the first
    starting at sample ``start``; ``margin`` samples are left out at both ends of each."""
    return [
        x[start + i * PACKET_SAMPLES + margin : start + (i + 1) * PACKET_SAMPLES - margin]
        for i in range(count)
    ]
