"""The voice track of a muxed file: the WAV master encoded to AAC, or AAC encoded earlier copied.

Encoding the voice is most of a mux's time (a 30-min stereo call: ~5 s of ~7 s here), and it
does not depend on the screen. So for a call with screen segments the voice is encoded once, while
the agent is still in after-call work (:func:`encode_voice_file`, an ``.m4a`` of its own), and the
mux after Done copies those packets (:class:`CopiedVoice`) instead of encoding again
(:class:`EncodedVoice`); the supervisor's wait after Done is then the screen's copy alone.
Both produce the same AAC: same rate, layout, bit rate and coder.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from server.errors import MuxError
from server.media.timeline import seconds_to_ticks

# Sampling rates AAC can signal; telephone audio (8 kHz) is lifted to MIN_AAC_RATE because some
# players refuse or mangle very low-rate AAC.
AAC_RATES = (7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)
MIN_AAC_RATE = 16000
_AAC_BITRATE_PER_CHANNEL = 32_000
_LAYOUTS = {1: "mono", 2: "stereo"}


def aac_output_rate(input_rate: int) -> int:
    """Smallest AAC rate at or above both the input rate and MIN_AAC_RATE."""
    wanted = max(input_rate, MIN_AAC_RATE)
    for rate in AAC_RATES:
        if rate >= wanted:
            return rate
    return AAC_RATES[-1]


def open_voice(path: Path) -> tuple[av.container.InputContainer, Any]:
    """The voice file and its audio stream, or a MuxError that says what is wrong with it."""
    try:
        container = av.open(str(path), "r")
    except (av.FFmpegError, OSError) as exc:
        raise MuxError(f"cannot open voice file {path.name}: {exc}") from exc
    if not container.streams.audio:
        container.close()
        raise MuxError(f"voice file {path.name} has no audio stream")
    stream = container.streams.audio[0]
    if not stream.codec_context.sample_rate:
        container.close()
        raise MuxError(f"voice file {path.name} has no sample rate")
    return container, stream


class EncodedVoice:
    """The WAV's audio encoded to AAC, after ``lead_seconds`` of silence."""

    def __init__(
        self, container: av.container.InputContainer, stream: Any, name: str, lead_seconds: float
    ) -> None:
        self._container, self._stream, self._name = container, stream, name
        self._lead = lead_seconds
        self.in_rate = int(stream.codec_context.sample_rate)
        self.samples = 0  # voice samples read (the leading silence excluded)

    @property
    def seconds(self) -> float:
        return self.samples / self.in_rate

    def add_stream(self, output: av.container.OutputContainer) -> Any:
        out_rate = aac_output_rate(self.in_rate)
        a_out = output.add_stream("aac", rate=out_rate)
        channels = self._stream.codec_context.channels
        if channels not in _LAYOUTS:
            raise MuxError(f"voice file {self._name} has {channels} channels; only mono or stereo")
        # WAV leaves the channel order unspecified ("1 channels"); the AAC encoder needs a named one
        a_out.codec_context.layout = _LAYOUTS[channels]
        a_out.codec_context.format = "fltp"
        a_out.codec_context.bit_rate = _AAC_BITRATE_PER_CHANNEL * channels
        # The AAC encoding is most of a mux's time (a 30-min stereo call: 16 s of 21 s with the
        # default "twoloop" coder, measured); the fast coder halves it, with no loss measurable
        # on voice at this bit rate (SNR of a speech-like test signal 15.9 dB vs 11.5 dB).
        a_out.codec_context.options = {"aac_coder": "fast"}
        a_out.time_base = Fraction(1, out_rate)
        a_out.codec_context.time_base = Fraction(1, out_rate)
        a_out.codec_context.open()  # now, so its frame size is known to the resampler
        return a_out

    def packets(self, out_stream: Any) -> Iterator[av.Packet[Any]]:
        ctx = out_stream.codec_context
        resampler = av.AudioResampler(
            format="fltp", layout=ctx.layout, rate=ctx.sample_rate, frame_size=ctx.frame_size
        )
        in_tb = Fraction(1, self.in_rate)
        out_tb = Fraction(1, ctx.sample_rate)
        in_pts = 0
        out_pts = 0

        def feed(frame: av.AudioFrame | None) -> Iterator[av.Packet[Any]]:
            nonlocal in_pts, out_pts
            if frame is not None:
                # Our own continuous timestamps: the resampler must not "fix" gaps between the
                # silence we add and the decoded voice.
                frame.pts, frame.time_base = in_pts, in_tb
                in_pts += frame.samples
            for resampled in resampler.resample(frame):
                resampled.pts, resampled.time_base = out_pts, out_tb
                out_pts += resampled.samples
                yield from out_stream.encode(resampled)

        lead = seconds_to_ticks(self._lead, self.in_rate)
        decoded = self._container.decode(self._stream)
        first = next(decoded, None)
        if first is not None:
            if lead:
                for silent in _silence(lead, first):
                    yield from feed(silent)
            for frame in _chain(first, decoded):
                self.samples += frame.samples
                yield from feed(frame)
        yield from feed(None)
        yield from out_stream.encode(None)


class CopiedVoice:
    """AAC packets of an ``.m4a`` made by :func:`encode_voice_file`, copied as they are (the voice
    starts at the output's t=0: no leading silence can be added to encoded audio)."""

    def __init__(self, container: av.container.InputContainer, stream: Any) -> None:
        self._container, self._stream = container, stream
        self._time_base = Fraction(stream.time_base)
        self._end = 0

    @property
    def seconds(self) -> float:
        return float(self._end * self._time_base)

    def add_stream(self, output: av.container.OutputContainer) -> Any:
        return output.add_stream_from_template(self._stream)

    def packets(self, out_stream: Any) -> Iterator[av.Packet[Any]]:
        for packet in self._container.demux(self._stream):
            if packet.dts is None:
                continue
            self._end = max(self._end, (packet.pts or 0) + (packet.duration or 0))
            packet.stream = out_stream
            yield packet


def encode_voice_file(voice: Path, out: Path) -> None:
    """Encode ``voice`` (the WAV master) to AAC in ``out`` (an MP4 audio file), as the mux would;
    written via a temporary file next to it, so ``out`` is whole or absent."""
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex}.part")
    try:
        container, stream = open_voice(voice)
        with container, av.open(str(tmp), "w", format="mp4") as output:
            source = EncodedVoice(container, stream, voice.name, 0.0)
            a_out = source.add_stream(output)
            for packet in source.packets(a_out):
                output.mux(packet)
        os.replace(tmp, out)
    except av.FFmpegError as exc:
        raise MuxError(f"cannot encode the voice {voice.name}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def _silence(samples: int, template: av.AudioFrame, chunk: int = 1024) -> Iterator[av.AudioFrame]:
    """Zero frames with the decoder's own format and layout, so the resampler sees one format."""
    while samples > 0:
        n = min(chunk, samples)
        frame = av.AudioFrame(format=template.format.name, layout=template.layout.name, samples=n)
        frame.sample_rate = template.sample_rate
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        samples -= n
        yield frame


def _chain(first: av.AudioFrame, rest: Iterator[av.AudioFrame]) -> Iterator[av.AudioFrame]:
    yield first
    yield from rest
