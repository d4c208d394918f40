"""Picture quality for the screen benchmark: SSIM (numpy, and ffmpeg's ``ssim`` filter for the
recorded figures) and the crop of text a person looks at."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of an RGB uint8 image, as float64."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    return 0.299 * r + 0.587 * g + 0.114 * b


def _box(x: np.ndarray, k: int) -> np.ndarray:
    """Mean over every k×k window (valid positions), by integral image."""
    s = np.pad(x, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    mean: np.ndarray = (s[k:, k:] - s[:-k, k:] - s[k:, :-k] + s[:-k, :-k]) / (k * k)
    return mean


def ssim_y(ref_rgb: np.ndarray, test_rgb: np.ndarray, k: int = 8) -> float:
    """Mean SSIM of the luma over k×k windows (Wang et al. 2004 constants, uniform window)."""
    x, y = luma(ref_rgb), luma(test_rgb)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = _box(x, k), _box(y, k)
    vx = _box(x * x, k) - mx * mx
    vy = _box(y * y, k) - my * my
    cxy = _box(x * y, k) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


def ssim_ffmpeg(ref_png: Path, test_png: Path) -> dict[str, float]:
    """ffmpeg's ssim filter on two pictures (as yuv444p, so chroma errors count at full size)."""
    result = subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-hide_banner",
            "-i",
            str(ref_png),
            "-i",
            str(test_png),
            "-lavfi",
            "[0:v]format=yuv444p[a];[1:v]format=yuv444p[b];[a][b]ssim",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    m = re.search(r"SSIM Y:([\d.]+).*U:([\d.]+).*V:([\d.]+).*All:([\d.]+)", result.stderr)
    if not m:
        raise RuntimeError(f"no SSIM in ffmpeg's output: {result.stderr[-500:]}")
    return {"y": float(m[1]), "u": float(m[2]), "v": float(m[3]), "all": float(m[4])}
