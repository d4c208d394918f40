"""One stream's payloads → samples at the voice file's rate, and where RTP timestamps land in it.

Pure logic: the codec's decoder (stateful for G.722), then an integer-factor upsampler when the
file is wider than the codec (an 8 kHz G.711 leg in a 16 kHz file whose other leg is G.722), or
a downsampler when it is narrower (G.722 arriving in an 8 kHz file: see server.callmedia.plan).
``timestamp_scale`` is the file samples per RTP timestamp unit the timeline needs: 2 for G.722
in a 16 kHz file (160 timestamp units carry 320 samples), 2 for G.711 upsampled to 16 kHz, 1 for
G.711 in an 8 kHz file.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import numpy.typing as npt

from server.errors import RtpSessionError
from server.rtp.codecs import AudioCodec
from server.voice.resample import AveragingDownsampler, LinearUpsampler

Int16Array = npt.NDArray[np.int16]


class PayloadDecoder:
    def __init__(self, codec: AudioCodec, output_rate: int | None = None) -> None:
        output_rate = codec.audio_rate if output_rate is None else output_rate
        if output_rate <= 0 or (output_rate % codec.audio_rate and codec.audio_rate % output_rate):
            raise RtpSessionError(
                f"voice file rate {output_rate} Hz and {codec.name}'s {codec.audio_rate} Hz are not "
                "whole multiples of each other (only integer-factor resampling is supported)"
            )
        self.codec = codec
        self.output_rate = output_rate
        self.timestamp_scale = Fraction(output_rate, codec.clock_rate)
        self._decode = codec.new_decoder()
        factor = output_rate // codec.audio_rate
        self._upsampler = LinearUpsampler(factor) if factor > 1 else None
        down = codec.audio_rate // output_rate
        self._downsampler = AveragingDownsampler(down) if down > 1 else None
        # Which packet would follow on directly from the last one (for the upsampler's state).
        self._next: tuple[int, int] | None = None
        self._clock_rate, self._audio_rate = codec.clock_rate, codec.audio_rate

    def decode(self, ssrc: int, timestamp: int, payload: bytes) -> Int16Array:
        """Samples at ``output_rate``; raises ``ValueError`` if the codec rejects the payload."""
        samples = self._decode(payload)
        upsampler = self._upsampler
        if upsampler is None:
            if self._downsampler is not None:
                return self._downsampler.process(samples)
            return samples
        continuous = self._next == (ssrc, timestamp)
        advance = len(samples) * self._clock_rate // self._audio_rate  # ints: a Fraction costs µs
        self._next = (ssrc, (timestamp + advance) & 0xFFFFFFFF)
        return upsampler.process(samples, continuous)
