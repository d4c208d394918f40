"""Our recorder pipeline as one process, for the screen benchmark: grab (``MssGrabber``) every
1/fps s → skip a frame identical to the last one (``ChangeDetector``) → ``ScreenEncoder``
(``mark_unchanged`` on skipped ticks). One thread: at 5 fps a grab + encode fits in a tick, and a
second thread would only add hand-over cost. Prints one JSON line with what it did; the runner
reads this process's CPU time from its rusage.

``--reference DIR`` also saves, every ``--reference-every`` s, the exact image that was encoded
(raw BGRA ``.npy``) with its pts: the lossless reference for the SSIM check. Off in CPU runs.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

from recorder_service.capture import ChangeDetector, MssGrabber
from recorder_service.encoder import KEYFRAME_FRAMES, KEYFRAME_SECONDS, ScreenEncoder, X264Settings


def settings_from(args: argparse.Namespace) -> X264Settings:
    return X264Settings(
        preset=args.preset, tune=args.tune, crf=args.crf, params=args.params, threads=args.threads
    )


def add_encoder_args(parser: argparse.ArgumentParser) -> None:
    d = X264Settings()
    parser.add_argument("--preset", default=d.preset)
    parser.add_argument("--tune", default=d.tune)
    parser.add_argument("--crf", type=float, default=d.crf)
    parser.add_argument("--params", default=d.params, help="extra x264-params")
    parser.add_argument("--threads", type=int, default=d.threads)
    parser.add_argument("--keyframe-interval", type=float, default=KEYFRAME_SECONDS)
    parser.add_argument(
        "--keyframe-frames",
        type=int,
        default=KEYFRAME_FRAMES,
        help="a keyframe also after this many frames (0: by time only, the rule before issue 14)",
    )
    parser.add_argument("--max-width", type=int, default=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--fps", type=float, default=5.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--reference", type=Path)
    parser.add_argument("--reference-every", type=float, default=5.0)
    add_encoder_args(parser)
    args = parser.parse_args(argv)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    grabber = MssGrabber(0)
    encoder = ScreenEncoder(
        args.out,
        fps=args.fps,
        keyframe_interval=args.keyframe_interval,
        keyframe_frames=args.keyframe_frames,
        max_width=args.max_width,
        settings=settings_from(args),
    )
    period = 1.0 / args.fps
    start = time.monotonic()
    ticks = grabbed = 0
    changes = ChangeDetector()
    next_ref = 0.0
    first_grab: float | None = None
    refs: list[int] = []
    while True:
        tick_at = start + ticks * period
        if tick_at - start >= args.duration:
            break
        time.sleep(max(0.0, tick_at - time.monotonic()))
        grabbed_at = time.monotonic()
        if first_grab is None:
            first_grab = grabbed_at  # pts 0 is the first frame, as in the capture session
        pts = round((grabbed_at - first_grab) * 1000)
        image = grabber.grab()
        grabbed += 1
        ticks += 1
        if not changes.changed(image):
            encoder.mark_unchanged(pts)
            continue
        encoder.encode(image, pts)
        if args.reference is not None and pts / 1000 >= next_ref:
            args.reference.mkdir(parents=True, exist_ok=True)
            np.save(args.reference / f"{pts:08d}.npy", image)
            refs.append(pts)
            next_ref += args.reference_every
    encoder.close()
    grabber.close()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    capture_cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    print(
        json.dumps(
            {
                "ticks": ticks,
                "encoded": encoder.frames,
                "repeats": encoder.repeats,
                "bytes": args.out.stat().st_size,
                "capture_cpu_s": round(capture_cpu, 3),
                "size": encoder.size,
                "references": refs,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
