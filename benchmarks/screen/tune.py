"""Offline encoder tuning: record a workload once (every tick of a live capture: changed frames
kept as raw BGRA), then replay it through ``ScreenEncoder`` with each candidate setting and print
encode CPU (process time of the replay), bytes and SSIM against the recorded frames.
Deterministic input, so settings compare without the noise of a live desktop; the live runner
(``run.py``) then checks the chosen one against ffmpeg.

    python -m benchmarks.screen.tune record heavy /tmp/screen-heavy --duration 30
    python -m benchmarks.screen.tune replay /tmp/screen-heavy --preset superfast --crf 28 ...
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import av
import numpy as np

from benchmarks.screen.ours import add_encoder_args, settings_from
from benchmarks.screen.quality import ssim_y
from benchmarks.screen.xsession import desktop, xvfb
from recorder_service.capture import MssGrabber, frame_digest
from recorder_service.encoder import ScreenEncoder


def record(workload: str, out: Path, duration: float, fps: float) -> None:
    out.mkdir(parents=True, exist_ok=True)
    ticks: list[tuple[int, bool]] = []
    with xvfb() as display, desktop(display, workload, duration):
        os.environ["DISPLAY"] = display
        grabber = MssGrabber(0)
        start = time.monotonic()
        last: int | None = None
        for i in range(int(duration * fps)):
            time.sleep(max(0.0, start + i / fps - time.monotonic()))
            pts = round((time.monotonic() - start) * 1000)
            image = grabber.grab()
            digest = frame_digest(image)
            changed = digest != last
            last = digest
            if changed:
                np.save(out / f"{pts:08d}.npy", image)
            ticks.append((pts, changed))
        grabber.close()
    (out / "ticks.json").write_text(json.dumps(ticks))


def replay(src: Path, out: Path, args: argparse.Namespace) -> dict[str, object]:
    ticks = [(int(p), bool(c)) for p, c in json.loads((src / "ticks.json").read_text())]
    frames = {p: np.load(src / f"{p:08d}.npy") for p, c in ticks if c}
    encoder = ScreenEncoder(
        out,
        fps=args.fps,
        keyframe_interval=args.keyframe_interval,
        keyframe_frames=args.keyframe_frames,
        max_width=args.max_width,
        settings=settings_from(args),
    )
    cpu = time.process_time()
    for pts, changed in ticks:
        if changed:
            encoder.encode(frames[pts], pts)
        else:
            encoder.mark_unchanged(pts)
    encoder.close()
    cpu = time.process_time() - cpu
    duration_h = (ticks[-1][0] + 1000 / args.fps) / 3_600_000
    size = out.stat().st_size
    # SSIM of every 10th changed frame against what was recorded (luma, 8×8 windows)
    sample = sorted(frames)[::10]
    scores = []
    with av.open(str(out)) as container:
        for frame in container.decode(video=0):
            if frame.pts in sample:
                ref = frames[frame.pts][..., 2::-1]  # BGRA → RGB
                got = frame.to_ndarray(format="rgb24", width=ref.shape[1], height=ref.shape[0])
                scores.append(ssim_y(ref, got))
    with av.open(str(out)) as container:
        keyframes = sum(1 for packet in container.demux(video=0) if packet.is_keyframe)
    return {
        "frames": encoder.frames,
        "keyframes": keyframes,
        "repeats": encoder.repeats,
        "cpu_s": round(cpu, 2),
        "bytes": size,
        "MB_per_h": round(size / 1e6 / duration_h, 1),
        "ssim_min": round(min(scores), 4),
        "ssim_mean": round(sum(scores) / len(scores), 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("workload")
    rec.add_argument("dir", type=Path)
    rec.add_argument("--duration", type=float, default=60.0)
    rec.add_argument("--fps", type=float, default=5.0)
    rep = sub.add_parser("replay")
    rep.add_argument("dir", type=Path)
    rep.add_argument("--out", type=Path, default=Path("/tmp/screen-tune.mp4"))
    rep.add_argument("--fps", type=float, default=5.0)
    add_encoder_args(rep)
    args = parser.parse_args(argv)
    if args.cmd == "record":
        record(args.workload, args.dir, args.duration, args.fps)
    else:
        print(json.dumps(replay(args.dir, args.out, args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
