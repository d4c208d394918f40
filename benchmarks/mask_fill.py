"""The masking fill: numpy (``recorder_service.masking.apply_mask``) against the
``cv2.rectangle(..., cv2.FILLED)`` it replaced, on a 1920×1080 BGRA frame with 1, 3 and 5 masked
rectangles (windows of typical sizes, some partly off the frame) and a whole-frame black-out.

Process CPU time per frame, rounds A B A B … (A = opencv, B = numpy) so that a neighbour's load on
the shared machine falls on both alike; the median of the rounds is printed. opencv is in the dev
extra only (the recorder no longer uses it).

    # from the repository root:
    .venv/bin/python -m benchmarks.mask_fill --rounds 6 --frames 300
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import cv2
import numpy as np

from recorder_service.masking import BLACK, MaskPlan, Rect, apply_mask

WIDTH, HEIGHT = 1920, 1080
WINDOWS: list[Rect] = [
    (300, 200, 900, 700),  # a card-payment form
    (1500, 800, 600, 400),  # partly off the right and bottom edges
    (10, 20, 300, 40),  # a region rule: a clock or a name bar
    (-50, 500, 700, 500),  # partly off the left edge
    (961, 33, 517, 303),  # odd sizes
]


def opencv_fill(frame: np.ndarray, plan: MaskPlan) -> None:
    rects = [(0, 0, WIDTH, HEIGHT)] if plan.full else plan.rects
    for x, y, w, h in rects:
        cv2.rectangle(frame, (x, y), (x + w - 1, y + h - 1), BLACK, thickness=cv2.FILLED)


def numpy_fill(frame: np.ndarray, plan: MaskPlan) -> None:
    apply_mask(frame, plan)


def cpu_ms_per_frame(fill: Callable[[np.ndarray, MaskPlan], None], plan: MaskPlan, frames: int) -> float:
    frame = np.random.default_rng(1).integers(0, 255, (HEIGHT, WIDTH, 4), dtype=np.uint8)
    start = time.process_time()
    for _ in range(frames):
        fill(frame, plan)
    return (time.process_time() - start) / frames * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6, help="A B pairs per case")
    parser.add_argument("--frames", type=int, default=300, help="frames per timed run")
    args = parser.parse_args()
    cases = [(f"{n} rect{'s' if n > 1 else ''}", MaskPlan(tuple(WINDOWS[:n]))) for n in (1, 3, 5)]
    cases.append(("whole frame", MaskPlan(full=True)))
    print(f"{WIDTH}x{HEIGHT} BGRA, {args.frames} frames per run, {args.rounds} A/B rounds, median ms CPU")
    print(f"{'case':<12} {'opencv (A)':>11} {'numpy (B)':>10} {'B/A':>6}")
    for name, plan in cases:
        a: list[float] = []
        b: list[float] = []
        for _ in range(args.rounds):
            a.append(cpu_ms_per_frame(opencv_fill, plan, args.frames))
            b.append(cpu_ms_per_frame(numpy_fill, plan, args.frames))
        ma, mb = statistics.median(a), statistics.median(b)
        print(f"{name:<12} {ma:>11.4f} {mb:>10.4f} {mb / ma:>6.2f}")


if __name__ == "__main__":
    main()
