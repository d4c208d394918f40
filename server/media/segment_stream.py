"""Reading an interaction's screen segments as one H.264 packet stream on the output timeline
(PyAV adapter of :mod:`server.media.segment_join`).

One segment is open at a time and packets are handed on as they are read, so memory stays bounded
however many segments there are. Packets are stream-copied whenever a segment's coding parameters
(size and avcC extradata: SPS/PPS) equal the first segment's, whose parameters the output track
carries. A segment with other parameters (a monitor change: other size, or another encoder set-up)
cannot be copied into that track, so its kept frames are decoded, scaled to the first segment's size
and re-encoded with libx264. The re-encoded part carries its own SPS/PPS in-band under parameter-set
id ``REENCODE_PS_ID`` (the recorder's x264 uses id 0), so the first segment's parameter sets, which
live in the track header, stay valid for the copied segments after it; its NAL units are
length-prefixed like the track's. Any audio stream in a segment (endpoint audio) is not read: the
mux ignores it for now.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from server.errors import MuxError
from server.media.segment_join import FrameFilter, SegmentRef, order_segments

log = logging.getLogger(__name__)

REENCODE_PS_ID = 31  # the highest SPS id H.264 allows; nothing else we know of uses it
FALLBACK_INTERVAL = 0.2  # seconds: 5 fps, the recorder's default, when a stream names no rate
_REENCODE_OPTIONS = {"preset": "veryfast", "tune": "zerolatency", "bf": "0", "crf": "23"}


@dataclass(frozen=True, slots=True)
class SegmentInput:
    ref: SegmentRef
    path: Path  # a local path of the stored segment


@dataclass
class SegmentCounters:
    segments: int = 0
    reencoded: int = 0  # segments whose frames were re-encoded (other coding parameters)
    unreadable: int = 0  # segments that could not be opened: left out (their time shows as missing)
    corrupt: int = 0  # packets flagged corrupt by the demuxer: left out


def annexb_to_length_prefixed(data: bytes, length_size: int = 4) -> bytes:
    """H.264 Annex B (start codes, what libx264 emits) to the length-prefixed NAL units an MP4 track
    with avcC extradata holds."""
    starts: list[tuple[int, int]] = []  # (start code offset, payload offset)
    i, n = 0, len(data)
    while i + 2 < n:
        if data[i] == 0 and data[i + 1] == 0 and data[i + 2] == 1:
            begin = i - 1 if i > 0 and data[i - 1] == 0 else i  # four-byte start code
            starts.append((begin, i + 3))
            i += 3
        else:
            i += 1
    out = bytearray()
    for k, (_, payload) in enumerate(starts):
        end = starts[k + 1][0] if k + 1 < len(starts) else n
        nal = data[payload:end]
        if nal:
            out += len(nal).to_bytes(length_size, "big") + nal
    return bytes(out)


def _params(stream: Any) -> tuple[int, int, bytes]:
    ctx = stream.codec_context
    return ctx.width, ctx.height, bytes(ctx.extradata or b"")


def _frame_interval(stream: Any) -> float:
    """The nominal frame interval: FFmpeg's guess of the rate the timestamps are on (right for a
    capture at a fixed rate that skips unchanged frames), else the average rate."""
    for rate in (stream.guessed_rate, stream.average_rate):
        if rate and 0.2 <= float(rate) <= 240:
            return float(1 / Fraction(rate))
    return FALLBACK_INTERVAL


class SegmentVideo:
    """The video of all segments, in server-time order, as packets for one output track."""

    def __init__(self, segments: list[SegmentInput], pauses: list[tuple[float, float | None]]) -> None:
        if not segments:
            raise MuxError("no screen segments to mux")
        by_key = {s.ref.key: s for s in segments}
        self.segments = [by_key[ref.key] for ref in order_segments(s.ref for s in segments)]
        self.started_at = min(s.ref.started_at for s in segments)  # server time of the earliest pts 0
        self.filter = FrameFilter(pauses)
        self.counters = SegmentCounters()

    def open_template(self) -> av.container.InputContainer:
        """The first readable segment, whose video stream is the output track's template (a
        segment a storage fault made unreadable must not keep the others from being muxed)."""
        problems = []
        for seg in self.segments:
            try:
                container = av.open(str(seg.path), "r")
            except (av.FFmpegError, OSError) as exc:
                problems.append(f"{seg.ref.key}: {exc}")
                continue
            if container.streams.video:
                return container
            container.close()
            problems.append(f"{seg.ref.key}: no video stream")
        raise MuxError(f"no screen segment can be read ({'; '.join(problems)})")

    def packets(self, template: Any, out_stream: Any, origin: float) -> Iterator[av.Packet[Any]]:
        """Every kept packet with ``time_base`` = the template's and pts on the output timeline
        (seconds from ``origin``), in increasing order."""
        out_tb = Fraction(template.time_base)
        first_params = _params(template)
        length_size = (first_params[2][4] & 0x03) + 1 if len(first_params[2]) > 4 else 4
        for seg in self.segments:
            try:
                container = av.open(str(seg.path), "r")
            except (av.FFmpegError, OSError) as exc:
                self.counters.unreadable += 1
                log.error(
                    "screen segment %s cannot be read (%s); its time shows as missing", seg.ref.key, exc
                )
                continue
            with container:
                if not container.streams.video:
                    self.counters.unreadable += 1
                    log.error("screen segment %s has no video stream; left out", seg.ref.key)
                    continue
                stream = container.streams.video[0]
                self.counters.segments += 1
                self.filter.begin_segment(_frame_interval(stream))
                if _params(stream) == first_params:
                    yield from self._copy(container, stream, seg.ref, out_stream, out_tb, origin)
                else:
                    self.counters.reencoded += 1
                    log.info(
                        "screen segment %s is %dx%d with other coding parameters than the first: re-encoded",
                        seg.ref.key,
                        stream.codec_context.width,
                        stream.codec_context.height,
                    )
                    yield from self._reencode(
                        container, stream, seg.ref, out_stream, out_tb, origin, first_params, length_size
                    )

    def _kept(
        self, container: Any, stream: Any, ref: SegmentRef, out_tb: Fraction, origin: float
    ) -> Iterator[tuple[av.Packet[Any], int, int, int]]:
        """The segment's packets the filter keeps, with their output pts, dts and duration (in
        ``out_tb``)."""
        # floats: Fraction arithmetic per packet was a third of a long mux's Python time
        in_s, out_s = float(Fraction(stream.time_base)), float(out_tb)
        ratio = in_s / out_s
        base = ref.started_at - origin
        for packet in container.demux(stream):
            if packet.dts is None:  # the demuxer's end-of-stream marker
                continue
            if packet.is_corrupt:
                self.counters.corrupt += 1
                log.warning("dropping corrupt packet of screen segment %s at pts %s", ref.key, packet.pts)
                continue
            pts = packet.pts if packet.pts is not None else packet.dts
            out_pts = round((base + pts * in_s) / out_s)
            out_dts = out_pts - round((pts - packet.dts) * ratio)
            at = self.filter.place(origin + out_pts * out_s, packet.is_keyframe)
            if at is None:
                continue
            # A keyframe touching the last kept frame is placed just after it (segment_join.TOUCH)
            # (at least one tick of the output's time base: equal dts would make the muxer fail).
            moved = max(1, round((at - origin) / out_s) - out_pts) if at > origin + out_pts * out_s else 0
            yield packet, out_pts + moved, out_dts + moved, round((packet.duration or 0) * ratio)

    def _copy(
        self, container: Any, stream: Any, ref: SegmentRef, out_stream: Any, out_tb: Fraction, origin: float
    ) -> Iterator[av.Packet[Any]]:
        for packet, out_pts, out_dts, duration in self._kept(container, stream, ref, out_tb, origin):
            packet.time_base = out_tb
            packet.pts, packet.dts, packet.duration = out_pts, out_dts, duration
            packet.stream = out_stream
            yield packet

    def _reencode(
        self,
        container: Any,
        stream: Any,
        ref: SegmentRef,
        out_stream: Any,
        out_tb: Fraction,
        origin: float,
        first_params: tuple[int, int, bytes],
        length_size: int,
    ) -> Iterator[av.Packet[Any]]:
        width, height, _ = first_params
        stream.codec_context.thread_count = 1  # one frame out per packet in: no decoder delay
        encoder = av.CodecContext.create("libx264", "w")
        encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
        encoder.time_base = out_tb
        encoder.thread_count = 1  # media work must not take both cores from SIP/RTP
        encoder.options = {**_REENCODE_OPTIONS, "x264-params": f"sps-id={REENCODE_PS_ID}"}
        encoder.open()
        in_tb = Fraction(stream.time_base)
        base = ref.started_at - origin

        def encode(frame: av.VideoFrame | None) -> Iterator[av.Packet[Any]]:
            if frame is not None:
                pts = frame.pts if frame.pts is not None else 0
                key = frame.key_frame
                frame = frame.reformat(width=width, height=height, format="yuv420p")
                frame.pts = round((base + float(pts * in_tb)) / out_tb)
                frame.time_base = out_tb
                frame.pict_type = av.video.frame.PictureType.I if key else av.video.frame.PictureType.NONE
            for encoded in encoder.encode(frame):
                packet = av.Packet(annexb_to_length_prefixed(bytes(encoded), length_size))
                packet.pts, packet.dts = encoded.pts, encoded.dts
                packet.is_keyframe = encoded.is_keyframe
                packet.time_base = out_tb
                packet.stream = out_stream
                yield packet

        for packet, *_ in self._kept(container, stream, ref, out_tb, origin):
            for frame in stream.codec_context.decode(packet):
                yield from encode(frame)
        for frame in stream.codec_context.decode(None):
            yield from encode(frame)
        yield from encode(None)
