"""Integer-factor resampling of one stream, packet by packet: upsampling by linear interpolation,
downsampling by averaging.

Used when a narrowband leg (8 kHz G.711) is recorded into a wideband file (16 kHz, because the
other leg is G.722): each channel's length in samples must stay media time × file rate.

Each input sample ``x[k]`` becomes ``factor`` output samples ramping linearly from the previous
input sample to ``x[k]``, so ``x[k]`` itself lands on the last of them (a fixed delay of
``(factor - 1) / factor`` input samples, 62.5 µs for 8 → 16 kHz, the same for every packet). The
previous sample is carried across packets when the caller says the packet follows on directly
(same stream, next timestamp); otherwise, after loss or reordering, the ramp starts flat from the
packet's own first sample, a discontinuity of at most one input sample period. Linear
interpolation has no anti-imaging filter: images above the input's Nyquist frequency are attenuated
(sinc², about -7 dB at 5 kHz, more above) but not removed, which is acceptable for telephone speech
that has no energy there to begin with.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Int16Array = npt.NDArray[np.int16]


class LinearUpsampler:
    """Upsample int16 samples by an integer ``factor``; one instance per stream (it keeps state)."""

    def __init__(self, factor: int) -> None:
        if factor < 1:
            raise ValueError(f"upsampling factor must be at least 1, got {factor}")
        self.factor = factor
        # Output j of each input sample weighs (factor - j) of the previous sample and j of the
        # current one, for j = 1..factor; the rounding offset makes // round half up.
        self._weights = np.arange(1, factor + 1, dtype=np.int32)[None, :]
        self._half = factor // 2
        self._previous: int | None = None

    def reset(self) -> None:
        """Forget the previous sample: the next packet does not follow on from the last one."""
        self._previous = None

    def process(self, samples: Int16Array, continuous: bool = True) -> Int16Array:
        """The upsampled packet; ``continuous`` is False when it does not directly follow the last."""
        count = len(samples)
        if count == 0:
            return samples
        first = self._previous if continuous and self._previous is not None else int(samples[0])
        self._previous = int(samples[-1])
        if self.factor == 1:
            return samples
        # Few numpy calls per packet: at 160 samples the per-call overhead dominates the arithmetic.
        extended = np.empty(count + 1, dtype=np.int32)
        extended[0] = first
        extended[1:] = samples
        previous, current = extended[:-1], extended[1:]
        if self.factor == 2:  # the common case, 8 → 16 kHz
            out = np.empty(2 * count, dtype=np.int16)
            out[1::2] = samples
            out[0::2] = (previous + current + 1) >> 1
            return out
        step = (current - previous)[:, None] * self._weights + self._half
        return (previous[:, None] + step // self.factor).reshape(-1).astype(np.int16)


class AveragingDownsampler:
    """Downsample int16 samples by an integer ``factor``: each output sample is the mean of
    ``factor`` consecutive inputs (a box filter: about -3 dB at a quarter of the input rate,
    -∞ at half of it; the image of 4–8 kHz speech energy folds down attenuated, not removed).

    Used only when wideband audio (G.722, 16 kHz) arrives in a file that is 8 kHz because no
    wideband codec was offered when the call began: a re-INVITE switched the leg to G.722, or the
    sender used a type it did not offer. Stateless: G.722 packets carry an even number of
    samples, so no pair straddles two packets; a trailing odd sample is dropped."""

    def __init__(self, factor: int) -> None:
        if factor < 1:
            raise ValueError(f"downsampling factor must be at least 1, got {factor}")
        self.factor = factor

    def process(self, samples: Int16Array) -> Int16Array:
        factor = self.factor
        whole = len(samples) - len(samples) % factor
        if factor == 1 or whole == 0:
            return samples[:whole]
        blocks = samples[:whole].astype(np.int32).reshape(-1, factor)
        out: Int16Array = ((blocks.sum(axis=1) + factor // 2) // factor).astype(np.int16)
        return out
