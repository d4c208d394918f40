"""Cut frames out of a finished segment without re-encoding (stream copy).

Used for the secure pause: frames stamped at or after a pause's start that were already encoded
when the pause command arrived (late), and spans the server refused (``422 frames_in_pause``).

Without B-frames a P-frame only references earlier frames, so dropping a *tail* leaves every
remaining frame decodable. Dropping a span in the middle also breaks the frames after it up to
the next keyframe (they reference dropped ones): those are dropped too rather than re-encoded —
the segment then has a gap up to that keyframe, which the server shows as a gap. When the first
frames go, the remaining ones are shifted so the new file starts at pts 0 with a keyframe and
its ``started_at`` moves by the same amount.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av

from recorder_service.errors import Mp4StructureError

MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"


@dataclass(frozen=True, slots=True)
class Frame:
    pts: int  # milliseconds from the segment's pts 0
    key: bool


@dataclass(frozen=True, slots=True)
class TrimResult:
    kept: int
    dropped: int
    shift_ms: int  # subtracted from every kept pts: started_at moves forward by this much
    last_pts: int | None  # of the last kept frame, in the new file's timeline


Span = tuple[int, int | None]  # [start, end) in segment milliseconds; None = open-ended


def keep_mask(frames: list[Frame], spans: list[Span]) -> list[bool]:
    """Which frames survive: none inside a span, none after a dropped one until a keyframe."""
    keep: list[bool] = []
    broken = False  # a frame this one may reference was dropped
    for frame in frames:
        inside = any(frame.pts >= start and (end is None or frame.pts < end) for start, end in spans)
        if frame.key:
            broken = False
        ok = not inside and not broken
        if not ok:
            broken = True
        keep.append(ok)
    return keep


def read_frames(path: Path) -> list[Frame]:
    """Every video packet's pts and keyframe flag, in file order (demux only, no decoding)."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            frames = [
                Frame(int(p.pts), bool(p.is_keyframe))
                for p in container.demux(stream)
                if p.size and p.pts is not None
            ]
    except (av.FFmpegError, IndexError, OSError, ValueError) as exc:
        raise Mp4StructureError(f"{path.name} cannot be read as a video segment: {exc}") from exc
    if not frames or not frames[0].key:
        raise Mp4StructureError(f"{path.name} does not start with a keyframe")
    return frames


def trim(src: Path, dst: Path, spans: list[Span]) -> TrimResult:
    """Write ``dst`` with the frames of ``src`` that survive ``spans`` (see ``keep_mask``).

    When nothing survives, ``dst`` is not created and ``kept`` is 0. ``dst`` is fsynced.
    """
    frames = read_frames(src)
    mask = keep_mask(frames, spans)
    kept = sum(mask)
    if kept == 0:
        return TrimResult(0, len(frames), 0, None)
    shift = next(f.pts for f, k in zip(frames, mask, strict=True) if k)
    last: int | None = None
    try:
        with av.open(str(src)) as source:
            in_stream = source.streams.video[0]
            out: Any = av.open(
                str(dst),
                mode="w",
                format="mp4",
                options={"movflags": MOVFLAGS, "video_track_timescale": "1000"},
            )
            try:
                out_stream = out.add_stream_from_template(in_stream)
                index = 0
                for packet in source.demux(in_stream):
                    if not packet.size or packet.pts is None:
                        continue
                    if mask[index]:
                        packet.pts -= shift
                        packet.dts = packet.pts  # no B-frames: decode order is display order
                        last = int(packet.pts)
                        packet.stream = out_stream
                        out.mux(packet)
                    index += 1
            finally:
                out.close()
        with dst.open("rb+") as fh:
            os.fsync(fh.fileno())
    except (av.FFmpegError, OSError, ValueError, IndexError) as exc:
        dst.unlink(missing_ok=True)
        raise Mp4StructureError(f"cannot cut {src.name}: {exc}") from exc
    return TrimResult(kept, len(frames) - kept, shift, last)
