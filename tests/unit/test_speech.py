"""The speech-like test signal has the properties a speech detector looks for."""

from __future__ import annotations

import numpy as np
import pytest

from server.sim.speech import speech_like_pcm

RATE = 8000
FRAME = 160  # 20 ms


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    pcm: np.ndarray = speech_like_pcm(20.0, seed=1)
    return pcm


def frame_db(x: np.ndarray) -> np.ndarray:
    frames = x[: len(x) // FRAME * FRAME].astype(np.float64).reshape(-1, FRAME) / 32768
    db: np.ndarray = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)  # numpy's mean is typed Any
    return db


def test_shape_dtype_and_determinism(speech: np.ndarray) -> None:
    assert speech.dtype == np.int16 and speech.shape == (20 * RATE,)
    assert np.array_equal(speech, speech_like_pcm(20.0, seed=1))
    assert not np.array_equal(speech_like_pcm(2.0, seed=1), speech_like_pcm(2.0, seed=2))
    assert len(speech_like_pcm(0.5, sample_rate=16000)) == 8000
    assert len(speech_like_pcm(0.0)) == 0


def test_level_is_about_minus_20_dbfs(speech: np.ndarray) -> None:
    rms_db = 20 * np.log10(np.sqrt(np.mean((speech / 32768.0) ** 2)))
    assert -21.0 < rms_db < -19.0
    assert np.abs(speech).max() < 32767  # no clipping


def test_words_are_separated_by_pauses(speech: np.ndarray) -> None:
    levels = frame_db(speech)
    quiet = levels < levels.max() - 35
    assert 0.1 < quiet.mean() < 0.5  # talk with pauses, not continuous sound or mostly silence
    # Pauses are short: many separate quiet runs, not one long silence.
    runs = np.count_nonzero(np.diff(quiet.astype(int)) == 1)
    assert runs >= 20


def test_syllable_rate_envelope(speech: np.ndarray) -> None:
    envelope = 10 ** (frame_db(speech) / 20)  # 50 Hz envelope
    envelope -= envelope.mean()
    spectrum = np.abs(np.fft.rfft(envelope))
    freqs = np.fft.rfftfreq(len(envelope), 1 / 50)
    peak = freqs[1:][np.argmax(spectrum[1:])]
    assert 2.0 <= peak <= 8.0  # the modulation spectrum of speech peaks around 4 Hz


def test_pitch_in_voice_range(speech: np.ndarray) -> None:
    x = speech.astype(np.float64)
    levels = frame_db(speech)
    loud = np.argsort(levels)[-100:]  # the 100 loudest 20 ms frames: voiced
    pitches = []
    for index in loud:
        segment = x[index * FRAME : index * FRAME + 2 * FRAME]
        if len(segment) < 2 * FRAME:
            continue
        segment = segment - segment.mean()
        corr = np.correlate(segment, segment, "full")[len(segment) - 1 :]
        lags = np.arange(RATE // 260, RATE // 90)
        pitches.append(RATE / lags[np.argmax(corr[lags])])
    median = float(np.median(pitches))
    assert 95 <= median <= 230
    assert np.ptp(pitches) > 15  # intonation moves: not a monotone


def test_not_a_pure_tone(speech: np.ndarray) -> None:
    spectrum = np.abs(np.fft.rfft(speech.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(speech), 1 / RATE)
    total = spectrum.sum()
    assert spectrum.max() / total < 0.05  # no single line dominates

    def band(lo: float, hi: float) -> float:
        return float(spectrum[(freqs >= lo) & (freqs < hi)].sum() / total)

    assert band(80, 300) > 0.05  # pitch fundamentals
    assert band(300, 1000) > 0.2  # first formants
    assert band(1000, 3400) > 0.02  # second/third formants and fricatives
