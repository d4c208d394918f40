"""H.264 screen encoder writing a fragmented MP4 (PyAV adapter).

The settings were chosen by measurement (``benchmarks/screen/``, figures in
``benchmarks/RESULTS.md``); in short:

* **Keyframes by time or by frame count, long GOP.** A keyframe opens every segment (the first
  frame) and then comes at the first frame after either ``keyframe_interval`` seconds of timeline
  (default 60 s: one per default segment; a longer segment still gets one a minute) or
  ``keyframe_frames`` frames given to the encoder since the last keyframe (default
  ``KEYFRAME_FRAMES`` = 150), whichever is first. A seek decodes every frame from the keyframe
  before it, so its cost follows the frame count, not the seconds: a busy screen (every frame a
  change, 300 a minute at 5 fps) gets a keyframe every 30 s and seeks decode at most 150 frames
  (issue 14's seek target), while a mostly still desktop (the office workload: ~30 changes and
  ~60 ``mark_unchanged`` repeats a minute) never reaches the count and keeps one keyframe a
  minute — a 1080p keyframe of a desktop costs as much as minutes of typing (≈ 140 KB of an
  office segment's 162 KB; issue 12's bytes target). Repeats count too (the player decodes them,
  if cheaply). A keyframe does not bound crash loss here: fragments do. x264's own keyframe
  placement is off (huge keyint, no scene-cut) so the GOP really follows these two rules.
* **Fragments every ``fragment_seconds`` (0.8 s), independent of keyframes**
  (``movflags=frag_keyframe+empty_moov+default_base_moof`` + ``frag_duration``), each handed to
  the OS at once (``flush_packets``). A fragment is cut at the first frame past its duration, so
  a file cut by a crash plays up to ``fragment_seconds`` + one frame interval before the cut: at
  5 fps, 1 s (``fmp4.playable_length`` finds the end). The muxer keeps the newest frame in
  memory until the next one arrives (its duration is not known before); ``mark_unchanged`` writes
  the last picture again after ``fragment_seconds`` of a still screen, so a still screen loses
  at most two fragments (1.4 s at 5 fps) instead of everything since the last change.
* **No B-frames** (``bf=0``) and ``tune=zerolatency`` (no lookahead, no frame threads): a packet
  comes out for every frame that goes in, nothing waits inside the encoder.
* Only frames that changed are given to the encoder (the capture skips identical ones); the
  timeline is variable-rate: pts are milliseconds since the first frame (time base 1/1000, also
  the MP4 track timescale).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from recorder_service.audio_clock import placement
from recorder_service.errors import EncoderError

log = logging.getLogger(__name__)

TIME_BASE = Fraction(1, 1000)
MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"
KEYFRAME_SECONDS = 60.0  # a keyframe at least this often (timeline seconds)...
# ...and at least every this many frames: chosen by measurement (benchmarks/RESULTS.md, "keyframe
# by frames"): seeks in a busy hour stay under issue 14's target, the office workload unchanged.
KEYFRAME_FRAMES = 150


@dataclass(frozen=True, slots=True)
class X264Settings:
    """What the benchmark chose (see the module docstring and benchmarks/RESULTS.md)."""

    preset: str = "superfast"
    tune: str = "zerolatency"
    crf: float = 30.0
    # qcomp=1: every frame at the same quality. With x264's default (0.6) and no lookahead, a
    # big change (scroll, tab switch) is coded coarse and the next frames re-send the same area
    # finer: about twice the bytes. umh over ±128 px finds scrolled text (dia/hex's ±16 px do
    # not, and a scrolled text area then costs as much as a keyframe).
    params: str = "qcomp=1:me=umh:merange=128"  # extra x264-params, "key=value:key=value"
    threads: int = 1  # one thread: the least CPU in total (slices cost more); 0: x264 decides

    def codec_options(self) -> dict[str, str]:
        # keyint=infinite / scenecut=0: keyframes only where the clock (or a segment) puts them.
        params = "keyint=infinite:scenecut=0:bframes=0" + (f":{self.params}" if self.params else "")
        options = {"preset": self.preset, "crf": f"{self.crf:g}", "x264-params": params}
        if self.tune:
            options["tune"] = self.tune
        if self.threads:
            options["threads"] = str(self.threads)
        return options


DEFAULT_SETTINGS = X264Settings()


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """Endpoint audio in a segment (``recorder_service/endpoint_audio.py``): AAC-LC, which every
    browser plays in MP4. 48 kHz is what PulseAudio/PipeWire run at (no resampling on the PC) and
    keeps the AAC encoder's lead-in short (one frame, 1024 samples = 21 ms); two channels keep
    the microphone (left) and what the agent hears (right) apart, like the SIP voice's legs."""

    rate: int = 48000
    channels: int = 2
    bit_rate: int = 64000  # 32 kbit/s a channel, like the server's voice AAC


def output_size(width: int, height: int, max_width: int = 0) -> tuple[int, int]:
    """The encoded picture size for a canvas: at most ``max_width`` wide (0: no limit), aspect
    kept, both sides even (yuv420p needs it)."""
    if width < 2 or height < 2:
        raise EncoderError(f"frame too small to encode: {width}x{height}")
    if max_width and width > max_width:
        height = max(2, round(height * max_width / width))
        width = max_width
    return width - width % 2, height - height % 2


def keyframe_due(
    pts_ms: int, last_key_ms: int | None, interval_ms: int, frames_since_key: int = 0, max_frames: int = 0
) -> bool:
    """A keyframe opens the file, then comes at the first frame after ``interval_ms`` of timeline
    or ``max_frames`` frames (0: no limit) since the last one, whichever is first.
    ``frames_since_key`` counts the frames written since the last keyframe, that one included."""
    if last_key_ms is None or pts_ms - last_key_ms >= interval_ms:
        return True
    return max_frames > 0 and frames_since_key >= max_frames


# Rows converted around a changed band (even). swscale's vertical chroma filter reads beyond each
# edge of what it converts, and very short slices take another path: with 8 rows the inside of
# the band came out identical to a full conversion for every band tried (tests check it).
_MARGIN = 8
_SPREAD = 4  # rows (even) around a change whose chroma it may alter


def changed_rows(before: np.ndarray, after: np.ndarray) -> tuple[int, int] | None:
    """The band of rows ``[top, bottom)`` holding every difference between two frames of the
    same shape, widened to even rows (a 4:2:0 chroma row covers two picture rows); None if
    they are identical."""
    height = before.shape[0]
    a, b = (np.ascontiguousarray(x).reshape(height, -1) for x in (before, after))
    if a.shape[1] % 8 == 0:  # compare 64-bit words: 8× fewer comparisons than bytes
        a, b = a.view(np.uint64), b.view(np.uint64)
    rows_differ = (a != b).any(axis=1)
    changed = np.flatnonzero(rows_differ)
    if changed.size == 0:
        return None
    top = int(changed[0]) & ~1
    bottom = min(height, (int(changed[-1]) + 2) & ~1)
    return top, bottom


def _frame(image: np.ndarray) -> Any:
    """A zero-copy VideoFrame view of a BGRA array (from_ndarray's copy into a fresh frame cost
    more than the colour conversion itself: page faults on 8 MB per 1080p frame)."""
    return av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(image), format="bgra")


def _planes(frame: Any) -> list[np.ndarray]:
    """Writable (rows, width) views of a frame's planes (lines may be padded)."""
    return [
        np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:, : plane.width]
        for plane in frame.planes
    ]


class ScreenEncoder:
    """Encode BGRA frames (numpy ``(h, w, 4)`` uint8) at explicit millisecond pts.

    The output size is fixed by the first frame (downscaled to ``max_width`` if wider, rounded
    down to even); later frames of another size (a monitor was added or resized) are scaled to it.
    """

    def __init__(
        self,
        path: Path,
        *,
        fps: float,
        keyframe_interval: float = KEYFRAME_SECONDS,
        keyframe_frames: int = KEYFRAME_FRAMES,
        fragment_seconds: float = 0.8,
        max_width: int = 0,
        settings: X264Settings = DEFAULT_SETTINGS,
        audio: AudioFormat | None = None,
    ) -> None:
        if fps <= 0:
            raise ValueError("fps must be > 0")
        if keyframe_interval <= 0 or fragment_seconds <= 0:
            raise ValueError("keyframe_interval and fragment_seconds must be > 0")
        if max_width < 0:
            raise ValueError("max_width must be >= 0")
        if keyframe_frames < 0:
            raise ValueError("keyframe_frames must be >= 0 (0: keyframes by time only)")
        self._path = path
        self._fps = fps
        self._key_ms = round(keyframe_interval * 1000)
        self._key_frames = keyframe_frames
        self._frag_ms = round(fragment_seconds * 1000)
        self._max_width = max_width
        self._settings = settings
        self._container: Any = None
        self._stream: Any = None
        self._size: tuple[int, int] | None = None
        self._last_pts = -1
        self._last_key_pts: int | None = None
        self._gop_frames = 0  # frames written since the last keyframe, that one included
        self._last_frame: Any = None  # the last picture, already converted (mark_unchanged, bands)
        self._last_image: np.ndarray | None = None  # the BGRA frame it was converted from
        self.frames = 0
        self.repeats = 0
        self._audio = audio
        self._audio_stream: Any = None
        self._audio_next: int | None = None  # the next audio sample's pts (1/rate)
        self.audio_samples = 0

    @property
    def size(self) -> tuple[int, int] | None:
        return self._size

    def _open(self, width: int, height: int) -> None:
        width, height = output_size(width, height, self._max_width)
        try:
            # Screens are personal data: create the file private; PyAV keeps an existing mode.
            os.close(os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
            container = av.open(
                str(self._path),
                mode="w",
                format="mp4",
                options={
                    "movflags": MOVFLAGS,
                    # microseconds; a fragment is cut at the first frame past it, keyframe or not
                    "frag_duration": str(self._frag_ms * 1000),
                    "video_track_timescale": "1000",
                    # hand each finished fragment to the OS at once instead of keeping it in
                    # FFmpeg's 32 KB I/O buffer, where a killed process would lose it
                    "flush_packets": "1",
                },
            )
            stream = container.add_stream(
                "libx264",
                rate=Fraction(self._fps).limit_denominator(1000),
                options=self._settings.codec_options(),
            )
            stream.width = width
            stream.height = height
            stream.pix_fmt = "yuv420p"
            stream.time_base = TIME_BASE
            stream.codec_context.time_base = TIME_BASE
            stream.codec_context.max_b_frames = 0
            if self._audio is not None:
                self._audio_stream = _add_audio_stream(container, self._audio)
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise EncoderError(f"cannot open encoder for {self._path}: {exc}") from exc
        self._container, self._stream, self._size = container, stream, (width, height)

    def encode(self, image: np.ndarray, pts_ms: int) -> None:
        """Encode one frame. ``pts_ms`` must increase; a non-increasing one is bumped by 1 ms."""
        if image.ndim != 3 or image.shape[2] != 4 or image.dtype != np.uint8:
            raise EncoderError(f"expected a BGRA uint8 (h, w, 4) image, got {image.shape} {image.dtype}")
        if self._size is None:
            self._open(image.shape[1], image.shape[0])
        assert self._size is not None
        try:
            frame = self._picture(image)
        except (av.FFmpegError, ValueError) as exc:
            raise EncoderError(f"converting frame at {pts_ms} ms failed: {exc}") from exc
        self._write(frame, pts_ms)
        self._last_frame = frame
        self.frames += 1

    def _picture(self, image: np.ndarray) -> Any:
        """The yuv420p picture for ``image``. At the output size, only the rows that changed since
        the last frame are converted and pasted into the previous picture: typing changes a few
        rows, and converting all 1080 cost as much as encoding (see ``changed_rows``)."""
        assert self._size is not None
        width, height = self._size
        if (image.shape[1], image.shape[0]) != (width, height):
            # Another size: scale all of it (area averaging keeps downscaled text readable).
            self._last_image = None
            return _frame(image).reformat(width=width, height=height, format="yuv420p", interpolation="AREA")
        last, self._last_image = self._last_image, image
        canvas = self._last_frame
        if canvas is None or last is None or last.shape != image.shape:
            return _frame(image).reformat(format="yuv420p")
        band = changed_rows(last, image)
        if band is None:
            return canvas
        # A changed row also changes the chroma rows the filter spreads it to: paste a little
        # more than what changed, converted with a margin (see _MARGIN) beyond that.
        top, bottom = max(0, band[0] - _SPREAD), min(height, band[1] + _SPREAD)
        lo, hi = max(0, top - _MARGIN), min(height, bottom + _MARGIN)
        part = _frame(image[lo:hi]).reformat(format="yuv420p")
        for index, (dst, src) in enumerate(zip(_planes(canvas), _planes(part), strict=True)):
            shift = 0 if index == 0 else 1  # chroma planes have half the rows
            a, b, off = top >> shift, bottom >> shift, lo >> shift
            dst[a:b] = src[a - off : b - off]
        return canvas

    def mark_unchanged(self, pts_ms: int) -> bool:
        """The screen has not changed up to ``pts_ms``. Once ``fragment_seconds`` have passed
        since the last frame written, write the last picture again (a near-empty P-frame): that
        pushes the fragment holding the last change to disk and extends the timeline, so a crash
        during a still screen loses at most about two fragments too. Returns whether it wrote."""
        if self._last_frame is None or pts_ms - self._last_pts < self._frag_ms:
            return False
        self._write(self._last_frame, pts_ms)
        self.repeats += 1
        return True

    def _write(self, frame: Any, pts_ms: int) -> None:
        pts = max(pts_ms, self._last_pts + 1)
        try:
            frame.pts = pts
            frame.time_base = TIME_BASE
            if keyframe_due(pts, self._last_key_pts, self._key_ms, self._gop_frames, self._key_frames):
                frame.pict_type = av.video.frame.PictureType.I
                self._last_key_pts = pts
                self._gop_frames = 0
            else:
                frame.pict_type = av.video.frame.PictureType.NONE
            for packet in self._stream.encode(frame):
                if packet.is_keyframe:
                    self._last_key_pts = packet.pts
                    self._gop_frames = 0
                self._container.mux(packet)
            self._gop_frames += 1
        except (av.FFmpegError, ValueError) as exc:
            raise EncoderError(f"encoding frame at {pts} ms failed: {exc}") from exc
        self._last_pts = pts

    def encode_audio(self, samples: np.ndarray, pts: int) -> None:
        """Encode float32 ``samples[frames, channels]`` whose first sample is at ``pts`` (in
        1/rate from the segment's pts 0, the video's timeline). The track stays contiguous: a gap
        is filled with silence, an overlap dropped (``audio_clock.placement``); audio before
        ``AAC_LEAD_IN`` or before the first video frame (the file is not open yet) is dropped."""
        if self._audio is None or self._audio_stream is None or self._container is None:
            return
        if samples.ndim != 2 or samples.shape[1] != self._audio.channels:
            want = f"(frames, {self._audio.channels})"
            raise EncoderError(f"expected audio of shape {want}, got {samples.shape}")
        if self._audio_next is None and pts < AAC_LEAD_IN:
            skip = AAC_LEAD_IN - pts
            samples, pts = samples[skip:], AAC_LEAD_IN
        zeros, skip = placement(self._audio_next, pts, len(samples))
        samples = samples[skip:]
        if zeros:
            samples = np.vstack([np.zeros((zeros, samples.shape[1]), np.float32), samples])
        if len(samples) == 0:
            return
        start = pts + skip - zeros
        planar = np.ascontiguousarray(samples.T, dtype=np.float32)
        layout = "stereo" if self._audio.channels == 2 else "mono"
        try:
            frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout=layout)
            frame.sample_rate = self._audio.rate
            frame.pts = start
            frame.time_base = Fraction(1, self._audio.rate)
            for packet in self._audio_stream.encode(frame):
                self._container.mux(packet)
        except (av.FFmpegError, ValueError) as exc:
            raise EncoderError(f"encoding audio at {start}/{self._audio.rate} s failed: {exc}") from exc
        self._audio_next = start + len(samples)
        self.audio_samples += len(samples)

    def close(self) -> None:
        """Flush the encoder and write the last fragment. Safe to call twice or unopened."""
        if self._container is None:
            return
        container, self._container = self._container, None
        self._last_frame = self._last_image = None
        try:
            if self._audio_stream is not None and self._audio_next is not None:
                for packet in self._audio_stream.encode(None):
                    container.mux(packet)
            for packet in self._stream.encode(None):
                container.mux(packet)
        except (av.FFmpegError, ValueError) as exc:
            raise EncoderError(f"flushing {self._path} failed: {exc}") from exc
        finally:
            container.close()


# -- endpoint audio (optional second stream) ----------------------------------------------------


def _add_audio_stream(container: Any, fmt: AudioFormat) -> Any:
    stream = container.add_stream("aac", rate=fmt.rate, layout="stereo" if fmt.channels == 2 else "mono")
    stream.bit_rate = fmt.bit_rate
    stream.time_base = Fraction(1, fmt.rate)
    stream.codec_context.time_base = Fraction(1, fmt.rate)
    return stream


# FFmpeg's AAC encoder puts its first packet one frame before the first sample (priming), and
# the fragmented-MP4 muxer moves a track's first packet to 0 when it would lie before: audio
# starting earlier than one frame after pts 0 would be shifted late by up to 21 ms (measured).
AAC_LEAD_IN = 1024
