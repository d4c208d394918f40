"""Where the beeps of a test signal start, to a fraction of a sample.

A beep is a sine burst at a known frequency (1 kHz by default) in otherwise quiet audio. Each
channel is mixed down to that frequency (multiplied by e^{-2πift}) and averaged over a centred
window of two periods: the result's magnitude is the tone's amplitude, the other frequencies
(and the 2f image) averaged out. A step in amplitude at sample s becomes a linear ramp over the
window centred on s, so the ramp crosses half the beep's own level at s — the onset — and linear
interpolation between the two samples around the crossing gives it below one sample. AAC's
pre-echo and a resampler's ringing spread the edge symmetrically, which moves the half-level
point little.

Pure: numpy only. Used by the A/V sync checker (server/media/sync_check.py) on a muxed file and by
the end-to-end test on the RTP the caller sent, the same way on both sides.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.floating]

DEFAULT_FREQ = 1000.0
GATE = 0.15  # of the loudest beep: below it the audio counts as quiet between beeps
QUIET = 0.3  # s of quiet needed before an onset (a beep's own ripple is no new beep)
PLATEAU = 0.05  # s after the gate opens within which the beep reaches its level


def tone_amplitude(samples: Samples, rate: float, freq: float = DEFAULT_FREQ) -> npt.NDArray[np.float64]:
    """Per sample, the amplitude of ``freq`` in ``samples`` (1-D, or channels × samples: the
    loudest channel counts, so a beep on one leg of a stereo file is found)."""
    x = np.atleast_2d(np.asarray(samples, dtype=np.float64))
    n = x.shape[1]
    window = max(2, round(2 * rate / freq))
    window += window % 2  # even, so the window is centred on the sample
    phase = np.exp(-2j * np.pi * freq * np.arange(n) / rate)
    out = np.zeros(n)
    for channel in x:
        z = channel * phase
        cum = np.concatenate([[0], np.cumsum(z)])
        lo = np.clip(np.arange(n) - window // 2, 0, n)
        hi = np.clip(np.arange(n) + window // 2, 0, n)
        out = np.maximum(out, 2 * np.abs(cum[hi] - cum[lo]) / window)
    return out


def beep_onsets(samples: Samples, rate: float, freq: float = DEFAULT_FREQ) -> list[float]:
    """Onsets (seconds from the first sample) of the beeps in ``samples``, in order."""
    amp = tone_amplitude(samples, rate, freq)
    if amp.size == 0 or amp.max() <= 0:
        return []
    gate = GATE * float(amp.max())
    quiet_needed = round(QUIET * rate)
    plateau = max(1, round(PLATEAU * rate))
    loud = amp >= gate
    onsets: list[float] = []
    quiet_run = quiet_needed  # the file's start counts as quiet
    k = 0
    n = amp.size
    while k < n:
        if not loud[k]:
            quiet_run += 1
            k += 1
            continue
        if quiet_run < quiet_needed:
            quiet_run = 0
            k += 1
            continue
        half = 0.5 * float(amp[k : k + plateau].max())
        # The half-level crossing: walk back from the gate while above it, then forward to it.
        j = k
        while j > 0 and amp[j - 1] >= half:
            j -= 1
        while amp[j] < half:
            j += 1
        if j == 0:
            onsets.append(0.0)
        else:
            a0, a1 = float(amp[j - 1]), float(amp[j])
            onsets.append((j - 1 + (half - a0) / (a1 - a0)) / rate)
        # Skip the beep itself.
        while k < n and loud[k]:
            k += 1
        quiet_run = 0
    return onsets
