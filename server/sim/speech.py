"""Deterministic speech-like test audio (numpy only).

Tests and the call simulator need audio that behaves like a talker, not a tone: voiced syllables
with a moving pitch (≈100-220 Hz) shaped by three vowel formants, a syllable-rate (≈4 Hz)
loudness envelope, short fricative noise at some onsets, pauses between words and longer ones
between phrases, and a faint noise floor. It is additive synthesis: each syllable's harmonics of
the pitch are weighted by the formant envelope, which needs no IIR filter loop. The same seed
always gives the same samples; the whole signal is scaled to -20 dBFS RMS.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

LEVEL_DBFS = -20.0
# (F1, F2, F3) in Hz of the vowels a, e, i, o, u (adult averages, F3 capped below 3.4 kHz).
_VOWELS = np.array(
    [[730, 1090, 2440], [530, 1840, 2480], [300, 2250, 3000], [570, 840, 2410], [320, 870, 2240]],
    dtype=np.float64,
)
_BANDWIDTHS = np.array([90.0, 110.0, 170.0])
_FORMANT_GAINS = np.array([1.0, 0.6, 0.3])


def speech_like_pcm(seconds: float, sample_rate: int = 8000, seed: int = 1) -> npt.NDArray[np.int16]:
    """``seconds`` of mono int16 speech-like audio at ``sample_rate`` Hz; deterministic per seed."""
    if seconds < 0 or sample_rate <= 0:
        raise ValueError("seconds must be >= 0 and sample_rate > 0")
    total = round(seconds * sample_rate)
    rng = np.random.default_rng(seed)
    out = np.zeros(total, dtype=np.float64)
    base_f0 = rng.uniform(120.0, 170.0)  # the talker's average pitch
    pos = round(rng.uniform(0.05, 0.2) * sample_rate)  # a breath before the first word
    words_in_phrase = 0
    while pos < total:
        for _ in range(int(rng.integers(1, 4))):  # syllables in this word
            length = round(rng.uniform(0.16, 0.30) * sample_rate)
            if pos >= total:
                break
            syllable = _syllable(rng, length, sample_rate, base_f0)
            end = min(total, pos + length)
            out[pos:end] += syllable[: end - pos]
            pos = end
        words_in_phrase += 1
        if words_in_phrase >= rng.integers(3, 7):
            words_in_phrase = 0
            pos += round(rng.uniform(0.35, 0.7) * sample_rate)  # between phrases
        else:
            pos += round(rng.uniform(0.08, 0.2) * sample_rate)  # between words
    out += rng.normal(0.0, 1e-3, total)  # the line's noise floor, ~-60 dBFS after scaling
    rms = float(np.sqrt(np.mean(out**2))) if total else 0.0
    if rms > 0:
        out *= 10 ** (LEVEL_DBFS / 20) / rms
    return np.clip(np.round(out * 32767), -32768, 32767).astype(np.int16)


def _syllable(rng: np.random.Generator, length: int, sample_rate: int, base_f0: float) -> FloatArray:
    t = np.arange(length) / sample_rate
    # Pitch: a rise or fall across the syllable plus slow wobble, kept inside 100-220 Hz.
    start_f0 = base_f0 * rng.uniform(0.85, 1.2)
    end_f0 = start_f0 * rng.uniform(0.8, 1.15)
    f0 = np.linspace(start_f0, end_f0, length) * (1 + 0.02 * np.sin(2 * np.pi * 5.5 * t))
    f0 = np.clip(f0, 100.0, 220.0)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    # Formants glide between two vowels, as in a consonant-vowel transition.
    v0, v1 = _VOWELS[rng.integers(0, len(_VOWELS), 2)]
    glide = np.linspace(0.0, 1.0, length)[:, None]
    formants = v0 * (1 - glide) + v1 * glide  # (length, 3)
    nyquist_guard = 0.45 * sample_rate
    harmonics = np.arange(1, int(nyquist_guard // 100) + 1)
    voiced = np.zeros(length)
    for k in harmonics:
        freq = k * f0
        response = np.sum(
            _FORMANT_GAINS / (1 + ((freq[:, None] - formants) / (_BANDWIDTHS / 2)) ** 2), axis=1
        )
        weight = response * (freq < nyquist_guard) / np.sqrt(k)  # glottal spectral tilt
        voiced += weight * np.sin(k * phase)
    # Loudness: fast attack, slower decay, i.e. one syllable of the ~4 Hz speech rhythm.
    envelope = np.sin(np.pi * np.linspace(0.0, 1.0, length)) ** 1.5 * rng.uniform(0.6, 1.0)
    signal = voiced * envelope
    if rng.random() < 0.4:  # a fricative or plosive onset: short high-passed noise burst
        burst = min(length, round(rng.uniform(0.03, 0.07) * sample_rate))
        noise = np.diff(rng.normal(0.0, 1.0, burst + 1))
        signal[:burst] += 0.3 * float(np.max(np.abs(voiced))) * noise * np.hanning(burst)
    return signal
