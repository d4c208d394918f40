"""The masking fill without OpenCV: held byte for byte to ``cv2.rectangle(..., cv2.FILLED)``, which
it replaced (opencv stays in the dev extra for this comparison only), over random and edge-case
rectangles on BGRA, BGR and grey frames; and the recorder's import graph free of cv2 (so the
recorder bundle does not carry it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from recorder_service.masking import BLACK, MaskPlan, Rect, apply_mask

ROOT = Path(__file__).resolve().parents[2]


def with_opencv(frame: np.ndarray, rects: list[Rect], *, full: bool = False) -> np.ndarray:
    """What the recorder did before: a contiguous copy, cv2.rectangle FILLED per rectangle."""
    out = np.array(frame, order="C", copy=True)
    height, width = out.shape[:2]
    for x, y, w, h in [(0, 0, width, height)] if full else rects:
        cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), BLACK, thickness=cv2.FILLED)
    return out


def random_frame(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    # Values 1..254: no pixel is black or opaque by chance, so a missed or extra pixel shows.
    return rng.integers(1, 255, shape, dtype=np.uint8)


def edge_rects(width: int, height: int) -> list[Rect]:
    return [
        (0, 0, 1, 1),
        (width - 1, height - 1, 1, 1),  # the last pixel
        (-5, -7, 10, 12),  # negative corner: only the part on the frame
        (-1, 0, 1, height),  # wholly left of the frame
        (width, 0, 3, 3),  # wholly right of it
        (0, height, width, 2),  # wholly below it
        (width - 2, height - 3, 50, 50),  # partly off the bottom right
        (-10, -10, width + 20, height + 20),  # over the whole frame and beyond
        (3, 2, 7, 5),  # odd width and height
        (1, 1, width - 2, 1),  # one row
        (2, 0, 1, height),  # one column
    ]


SHAPES = [(1080, 1920, 4), (23, 37, 4), (1, 1, 4), (31, 17, 3), (29, 41)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_the_fill_equals_opencv_byte_for_byte(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(sum(shape))
    height, width = shape[:2]
    plans: list[list[Rect]] = [[r] for r in edge_rects(width, height)] + [edge_rects(width, height)]
    for _ in range(150):
        n = int(rng.integers(1, 6))
        plans.append(
            [
                (
                    int(rng.integers(-width, 2 * width)),
                    int(rng.integers(-height, 2 * height)),
                    int(rng.integers(1, 2 * width + 1)),
                    int(rng.integers(1, 2 * height + 1)),
                )
                for _ in range(n)
            ]
        )
    frame = random_frame(rng, shape)
    for rects in plans:
        mine = frame.copy()
        out = apply_mask(mine, MaskPlan(tuple(rects)))
        assert out is mine
        expected = with_opencv(frame, rects)
        assert out.tobytes() == expected.tobytes(), rects
    full = apply_mask(frame.copy(), MaskPlan(full=True))
    assert full.tobytes() == with_opencv(frame, [], full=True).tobytes()


def test_the_fill_on_a_strided_and_a_read_only_frame() -> None:
    """A view into a bigger buffer (not contiguous) and a read-only grab: masked on a copy, the
    original untouched, the result what opencv drew on a contiguous copy."""
    rng = np.random.default_rng(7)
    big = random_frame(rng, (60, 90, 4))
    view = big[5:50, 3:80]  # writable but not C-contiguous
    before = big.copy()
    rects: list[Rect] = [(-3, 4, 20, 9), (70, 40, 30, 30)]
    out = apply_mask(view, MaskPlan(tuple(rects)))
    assert out.flags.c_contiguous and out.tobytes() == with_opencv(view, rects).tobytes()
    assert (big == before).all()
    frozen = random_frame(rng, (20, 30, 4))
    frozen.flags.writeable = False
    out = apply_mask(frozen, MaskPlan(((1, 1, 5, 5),)))
    assert out is not frozen and out.tobytes() == with_opencv(frozen, [(1, 1, 5, 5)]).tobytes()


def test_empty_rectangles_mask_nothing_and_full_masks_bgr_too() -> None:
    """Width or height ≤ 0 (``plan_mask`` never makes one): nothing painted (opencv would swap the
    corners and paint a strip); ``full`` on a BGR or grey frame blacks out every byte."""
    frame = random_frame(np.random.default_rng(3), (10, 12, 4))
    for rect in [(2, 2, 0, 5), (2, 2, 5, 0), (5, 5, -3, 2), (5, 5, 2, -3)]:
        assert (apply_mask(frame.copy(), MaskPlan((rect,))) == frame).all()
    for shape in [(10, 12, 3), (10, 12)]:
        out = apply_mask(random_frame(np.random.default_rng(4), shape), MaskPlan(full=True))
        assert not out.any()
    with pytest.raises(ValueError, match="5 channels"):
        apply_mask(np.ones((4, 4, 5), dtype=np.uint8), MaskPlan(full=True))


def test_the_recorder_never_imports_opencv() -> None:
    """The recorder bundle is what PyInstaller's import graph reaches from the recorder's entry:
    cv2 must not be in it (172 MB of the bundle for one fill)."""
    code = (
        "import sys, recorder_service.main, recorder_service.service, recorder_service.frame_pipeline;"
        "print('cv2' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "False", out.stderr
