"""A/V sync checker: how far the audio of a muxed recording is from its picture, measured.

The recording must show the server-time test pattern (server/media/time_pattern_reader.py) on the
agent screen and carry beeps (a 1 kHz tone by default) in the call audio at known server times —
known from outside the server, e.g. kernel send stamps of the RTP that carried them.

* Video: every frame is decoded and the server time drawn in it read back. That gives a map from
  presentation time (PTS) to server time; a repeated picture (a segment's closing frame, written
  again later on purpose) and unreadable frames are left out.
* Audio: the onsets of the beeps (server/media/beep_onsets.py), in presentation time.
* For each beep at server time T: the video PTS at which the drawn time is T (interpolated between
  the frames around it) is where a viewer sees that instant; the beep's onset PTS is where they
  hear it. skew = audio PTS − video PTS: positive means the sound comes late.

Presentation times are the ones a player uses (PyAV/FFmpeg: edit lists and AAC priming applied).
The drawn time is when the pattern was drawn, a few ms before the recorder grabbed it, so the
figure includes that lag (the pattern window's redraw period, 5 ms in the tests): it reads that
much early (negative).

Run: ``python -m server.media.sync_check FILE --beeps-json BEEPS [--max-skew-ms 40]``; BEEPS is
a JSON list of server times in seconds (or an object with a ``beeps`` list). Exit status 0 when
every beep was measured within the bound, 1 when one was not, 2 when too few could be measured.
"""

from __future__ import annotations

import argparse
import bisect
import json
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from server.media.beep_onsets import DEFAULT_FREQ, beep_onsets
from server.media.time_pattern_reader import read_frame

MAX_FRAME_GAP = 1.0  # s between readable frames beyond which a beep there is not measured
SEARCH = 0.5  # s around the expected place within which a beep's onset must be found


@dataclass(frozen=True)
class VideoClock:
    """Readable frames as (PTS, drawn server time), both in seconds, both increasing."""

    pts: list[float]
    drawn: list[float]

    def pts_at(self, server_time: float, max_gap: float = MAX_FRAME_GAP) -> float | None:
        """The PTS at which the picture shows ``server_time``, or None outside the video or in a
        gap of more than ``max_gap`` between readable frames."""
        i = bisect.bisect_right(self.drawn, server_time) - 1
        if i < 0 or i + 1 >= len(self.drawn):
            return None
        d0, d1 = self.drawn[i], self.drawn[i + 1]
        if d1 - d0 > max_gap:
            return None
        p0, p1 = self.pts[i], self.pts[i + 1]
        return p0 + (server_time - d0) * (p1 - p0) / (d1 - d0)


def video_clock(frames: Sequence[tuple[float, float | None]]) -> VideoClock:
    """From decoded (PTS, drawn or None) in presentation order: unreadable frames, repeats of the
    previous picture and anything not later than the last kept picture are left out."""
    pts: list[float] = []
    drawn: list[float] = []
    for p, d in frames:
        if d is None or (drawn and (d <= drawn[-1] or p <= pts[-1])):
            continue
        pts.append(p)
        drawn.append(d)
    return VideoClock(pts, drawn)


def read_video_frames(path: Path) -> list[tuple[float, float | None]]:
    """Every frame's (PTS, drawn server time or None), in presentation order."""
    frames: list[tuple[float, float | None]] = []
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError(f"{path.name}: no video stream")
        for frame in container.decode(container.streams.video[0]):
            if frame.time is None:
                continue
            ms = read_frame(frame)
            frames.append((float(frame.time), None if ms is None else ms / 1000))
    frames.sort(key=lambda f: f[0])
    return frames


def read_video_clock(path: Path) -> VideoClock:
    return video_clock(read_video_frames(path))


def read_audio(path: Path) -> tuple[np.ndarray, int, float]:
    """The first audio stream decoded: (channels × samples float, rate, PTS of the first sample).
    Samples are laid at each decoded frame's PTS (a gap stays silent), as a player would."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise ValueError(f"{path.name}: no audio stream")
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate or stream.rate
        chunks: list[tuple[float, np.ndarray]] = []
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            data = frame.to_ndarray().astype(np.float64)
            if frame.format.is_packed:
                data = data.reshape(-1, len(frame.layout.channels)).T
            chunks.append((float(frame.time), data))
    if not chunks:
        raise ValueError(f"{path.name}: the audio stream decodes to nothing")
    start = chunks[0][0]
    channels = chunks[0][1].shape[0]
    end = max(round((t - start) * rate) + d.shape[1] for t, d in chunks)
    out = np.zeros((channels, end))
    for t, d in chunks:
        at = max(0, round((t - start) * rate))
        out[:, at : at + d.shape[1]] = d[:, : end - at]
    return out, int(rate), start


@dataclass(frozen=True)
class BeepSkew:
    server_time: float
    video_pts: float | None  # where the picture shows server_time
    audio_pts: float | None  # the beep's onset nearest to video_pts
    note: str = ""

    @property
    def skew(self) -> float | None:
        if self.video_pts is None or self.audio_pts is None:
            return None
        return self.audio_pts - self.video_pts


@dataclass(frozen=True)
class SyncReport:
    beeps: list[BeepSkew]

    @property
    def skews(self) -> list[float]:
        return [s for b in self.beeps if (s := b.skew) is not None]

    @property
    def worst(self) -> float | None:
        return max(self.skews, key=abs) if self.skews else None

    @property
    def median(self) -> float | None:
        return statistics.median(self.skews) if self.skews else None

    def lines(self) -> list[str]:
        out = []
        for b in self.beeps:
            where = f"beep at server time {b.server_time:.3f}"
            if (s := b.skew) is not None:
                assert b.audio_pts is not None and b.video_pts is not None
                out.append(
                    f"{where}: audio {b.audio_pts:.4f} s, video {b.video_pts:.4f} s, skew {s * 1000:+.1f} ms"
                )
            else:
                out.append(f"{where}: not measured ({b.note})")
        if (worst := self.worst) is not None and (median := self.median) is not None:
            out.append(
                f"{len(self.skews)} of {len(self.beeps)} beeps measured: worst skew {worst * 1000:+.1f} ms, "
                f"median {median * 1000:+.1f} ms (positive: audio late)"
            )
        else:
            out.append(f"none of {len(self.beeps)} beeps measured")
        return out


def match(clock: VideoClock, onsets: Sequence[float], beep_times: Sequence[float]) -> SyncReport:
    """Each beep's video PTS and the audio onset (PTS) nearest to it, within ``SEARCH``."""
    beeps = []
    for t in beep_times:
        v = clock.pts_at(t)
        if v is None:
            beeps.append(BeepSkew(t, None, None, "no readable video around it"))
            continue
        near = [a for a in onsets if abs(a - v) <= SEARCH]
        if not near:
            beeps.append(BeepSkew(t, v, None, f"no beep in the audio within {SEARCH:g} s"))
            continue
        beeps.append(BeepSkew(t, v, min(near, key=lambda a: abs(a - v))))
    return SyncReport(beeps)


def check(
    path: Path, beep_times: Sequence[float], freq: float = DEFAULT_FREQ, clock: VideoClock | None = None
) -> SyncReport:
    """Measure the skew of every beep in the muxed file at ``path``. ``clock``: the video's
    PTS → server time map when known better than by the drawn times (a test that logged when
    each picture was on screen), else read from the file."""
    clock = clock or read_video_clock(path)
    samples, rate, start = read_audio(path)
    onsets = [start + t for t in beep_onsets(samples, rate, freq)]
    return match(clock, onsets, beep_times)


def load_beeps(path: Path) -> list[float]:
    data = json.loads(path.read_text())
    if isinstance(data, dict):
        data = data.get("beeps")
    if not isinstance(data, list) or not all(isinstance(t, int | float) for t in data):
        raise ValueError(f"{path}: expected a JSON list of server times (s), or {{'beeps': [...]}}")
    return [float(t) for t in data]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m server.media.sync_check",
        description="Worst audio/video skew of a muxed recording of the time pattern with beeps.",
    )
    parser.add_argument("file", type=Path, help="the muxed MP4")
    parser.add_argument("--beeps-json", required=True, type=Path, help="JSON list of beep server times (s)")
    parser.add_argument("--max-skew-ms", type=float, default=40.0, help="bound on |skew| (default 40)")
    parser.add_argument("--min-beeps", type=int, default=1, help="fewest beeps that must be measured")
    parser.add_argument("--freq", type=float, default=DEFAULT_FREQ, help="beep frequency, Hz (default 1000)")
    args = parser.parse_args(argv)
    try:
        report = check(args.file, load_beeps(args.beeps_json), args.freq)
    except (OSError, ValueError, av.FFmpegError) as exc:
        print(f"sync check: {exc}", file=sys.stderr)
        return 2
    print("\n".join(report.lines()))
    if len(report.skews) < max(1, args.min_beeps):
        print(
            f"sync check: only {len(report.skews)} beeps measured, {args.min_beeps} needed", file=sys.stderr
        )
        return 2
    worst = report.worst
    assert worst is not None
    if abs(worst) * 1000 > args.max_skew_ms:
        print(
            f"sync check: worst skew {worst * 1000:+.1f} ms is over ±{args.max_skew_ms:g} ms", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
