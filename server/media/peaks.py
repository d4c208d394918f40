"""Waveform peaks of a voice recording: per channel (caller, agent), the loudest sample of each
1/BINS_PER_SECOND s, so the player draws an hour's waveform and finds its silences without the
browser decoding the hour.

A stored voice WAV is 16-bit PCM, stereo with the caller left and the agent right, or mono (one
mixed stream). A peak is ceil(|sample| / 32768 * 255) as one byte: 0 only for digital silence,
so a quiet but present voice never reads as silence. At 8 bins a second an hour of stereo is
2 x 28,800 bytes (base64 in the JSON: ~77 KB), within the 100 KB the player may load.

Computed once per voice file and kept as a small derived file (:func:`encode` / :func:`decode`)
next to nothing the recording is: the WAV is only read.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from server.errors import ProbeError
from server.media.riff import WAVE_FORMAT_PCM, parse_wav

BINS_PER_SECOND = 8
CHANNEL_NAMES = {1: ("mixed",), 2: ("caller", "agent")}
_MAGIC = b"TPK1"
_HEADER = struct.Struct("<4sHHIII")  # magic, channels, bins/s, sample rate, frames, bins
_BLOCK_SECONDS = 60  # read this much audio at a time: an hour never sits in memory at once


@dataclass(frozen=True, slots=True)
class Peaks:
    channels: tuple[bytes, ...]  # one byte per bin per channel, 0..255
    bins_per_second: int
    sample_rate: int
    frames: int  # sample frames of the WAV the peaks describe

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate

    @property
    def names(self) -> tuple[str, ...]:
        return CHANNEL_NAMES.get(len(self.channels), tuple(f"ch{i}" for i in range(len(self.channels))))


def compute(fp: BinaryIO, file_size: int, bins_per_second: int = BINS_PER_SECOND) -> Peaks:
    """Peaks of the 16-bit PCM WAV in ``fp``; ``ProbeError`` for anything else."""
    info = parse_wav(fp, file_size)
    if info.format_tag != WAVE_FORMAT_PCM or info.bits_per_sample != 16:
        raise ProbeError(f"peaks need 16-bit PCM, not format {info.format_tag}/{info.bits_per_sample} bits")
    if info.channels not in CHANNEL_NAMES:
        raise ProbeError(f"peaks need a mono or stereo WAV, not {info.channels} channels")
    channels = info.channels
    bin_frames = max(1, info.rate // bins_per_second)
    total_bins = math.ceil(info.frames / bin_frames) if info.frames else 0
    out = [np.zeros(total_bins, dtype=np.uint8) for _ in range(channels)]
    # A whole number of bins per block, so no bin straddles two reads.
    block_frames = max(1, (_BLOCK_SECONDS * info.rate) // bin_frames) * bin_frames
    fp.seek(info.data_offset)
    done = 0
    while done < info.frames:
        want = min(block_frames, info.frames - done)
        raw = fp.read(want * info.block_align)
        got = len(raw) // info.block_align
        if got == 0:
            break
        samples = np.frombuffer(raw[: got * info.block_align], dtype="<i2").reshape(got, channels)
        first_bin = done // bin_frames
        whole = got // bin_frames
        for ch in range(channels):
            # int32 before abs: |-32768| does not fit an int16.
            mags = np.abs(samples[:, ch].astype(np.int32))
            if whole:
                out[ch][first_bin : first_bin + whole] = _scale(
                    mags[: whole * bin_frames].reshape(whole, bin_frames)
                )
            if got % bin_frames:
                out[ch][first_bin + whole] = _scale(mags[whole * bin_frames :].reshape(1, -1))[0]
        done += got
    return Peaks(tuple(c.tobytes() for c in out), bins_per_second, info.rate, done)


def _scale(mags: np.ndarray) -> np.ndarray:
    """Max magnitude of each row as 0..255, rounded up (any sound is at least 1)."""
    top = mags.max(axis=1).astype(np.int64)
    scaled: np.ndarray = ((top * 255 + 32767) // 32768).astype(np.uint8)
    return scaled


def encode(peaks: Peaks) -> bytes:
    bins = len(peaks.channels[0]) if peaks.channels else 0
    header = _HEADER.pack(
        _MAGIC, len(peaks.channels), peaks.bins_per_second, peaks.sample_rate, peaks.frames, bins
    )
    return header + b"".join(peaks.channels)


def decode(data: bytes) -> Peaks:
    if len(data) < _HEADER.size:
        raise ValueError("peaks file too short")
    magic, channels, bps, rate, frames, bins = _HEADER.unpack_from(data, 0)
    if magic != _MAGIC or channels < 1 or len(data) != _HEADER.size + channels * bins:
        raise ValueError("not a peaks file (or a damaged one)")
    body = data[_HEADER.size :]
    return Peaks(tuple(body[i * bins : (i + 1) * bins] for i in range(channels)), bps, rate, frames)
