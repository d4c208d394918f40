"""ITU-T G.722 (64 kbit/s wideband ADPCM) through FFmpeg's ``g722`` codec, via PyAV.

Why FFmpeg rather than an own implementation: G.722 is a sub-band ADPCM codec whose predictor and
quantiser state changes after every sample, so it cannot be vectorised with numpy; a pure-Python
decoder costs on the order of a millisecond per 20 ms packet, about a hundred times what FFmpeg's
C decoder costs (~20 µs), and the server must keep up with thousands of streams. PyAV is already a
server dependency (the voice formats use it), and FFmpeg's decoder is the one every other tool that
reads these recordings uses, so there is no second implementation to keep bit-exact.

One ``G722Decoder`` per RTP stream: the ADPCM state carries from one packet to the next, so a
fresh decoder per packet would click at every packet boundary. Each payload octet holds two
16 kHz samples (RFC 3551 §4.5.2: the RTP clock is 8000 Hz for historic reasons, the audio 16 kHz).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from server.errors import G722Error

if TYPE_CHECKING:
    from av.audio.codeccontext import AudioCodecContext
    from av.audio.frame import AudioFrame

Int16Array = npt.NDArray[np.int16]

SAMPLE_RATE = 16000
SAMPLES_PER_OCTET = 2


def _context(mode: Literal["r", "w"]) -> AudioCodecContext:
    import av  # deferred: PyAV is loaded only when a G.722 stream is actually opened

    try:
        context = av.CodecContext.create("g722", mode)
    except Exception as exc:  # an FFmpeg build without g722 raises one of several types
        raise G722Error(f"FFmpeg has no G.722 {'decoder' if mode == 'r' else 'encoder'}: {exc}") from exc
    context.sample_rate = SAMPLE_RATE
    context.layout = "mono"
    if mode == "w":
        context.format = "s16"
        context.open()
    return context


def _samples(frame: AudioFrame) -> Int16Array:
    # A view of the frame's buffer (it stays alive with the array) rather than ``to_ndarray``'s
    # copy: 1 µs instead of 5, per packet. The plane may be padded, hence ``count``.
    return np.frombuffer(memoryview(frame.planes[0]), dtype=np.int16, count=frame.samples)


class G722Decoder:
    """Decodes one stream's payloads, in order, to 16 kHz int16 samples; keeps state across calls."""

    def __init__(self) -> None:
        import av

        self._context = _context("r")
        self._packet = av.Packet
        self._av_error: type[Exception] = av.FFmpegError
        self._checked = False  # the output format, checked on the first frame

    def __call__(self, payload: bytes) -> Int16Array:
        if not payload:
            # An empty packet would be taken as "end of stream" and drain the decoder for good.
            return np.zeros(0, dtype=np.int16)
        try:
            frames = self._context.decode(self._packet(payload))
        except self._av_error as exc:
            raise G722Error(f"G.722 payload of {len(payload)} octets not decoded: {exc}") from exc
        if not frames:
            return np.zeros(0, dtype=np.int16)
        if not self._checked:
            layout = (frames[0].format.name, len(frames[0].layout.channels))
            if layout != ("s16", 1):
                raise G722Error(f"FFmpeg's G.722 decoder gave {layout}, expected mono s16")
            self._checked = True
        if len(frames) == 1:
            return _samples(frames[0])
        return np.concatenate([_samples(frame) for frame in frames])


def encode(pcm: npt.ArrayLike) -> bytes:
    """16 kHz int16 samples → G.722 octets with a fresh encoder: for a whole signal at once
    (tests, simulators), not packet by packet (each call starts from the reset state)."""
    import av

    array = np.asarray(pcm)
    if array.dtype != np.int16:
        raise TypeError(f"G.722 encodes int16 samples, got {array.dtype}")
    samples = np.ascontiguousarray(array.reshape(-1))
    context = _context("w")
    frame_size = context.frame_size or 320
    out: list[bytes] = []
    try:
        for start in range(0, len(samples), frame_size):
            block = samples[None, start : start + frame_size]
            frame = av.AudioFrame.from_ndarray(block, format="s16", layout="mono")
            frame.sample_rate = SAMPLE_RATE
            out.extend(bytes(packet) for packet in context.encode(frame))
        out.extend(bytes(packet) for packet in context.encode(None))
    except av.FFmpegError as exc:
        raise G722Error(f"G.722 encoding failed: {exc}") from exc
    return b"".join(out)
