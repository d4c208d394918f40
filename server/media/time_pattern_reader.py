"""The server-time test pattern: what is drawn in each frame, and how to read it back.

The pattern is an 8×8 grid of black/white blocks: 48 bits of milliseconds since the Unix epoch on
the server clock, then a CRC-16 of them, so a frame caught between two redraws (or showing
something else) reads as ``None`` rather than as a wrong time. The end-to-end tests draw it on the
agent screen (tests/e2e/time_pattern.py); the A/V sync checker (server/media/sync_check.py) reads
it from a muxed recording. Pure: numpy only.
"""

from __future__ import annotations

import binascii
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

COLS, ROWS = 8, 8
MS_BITS = 48
CRC_BITS = 16
BITS = MS_BITS + CRC_BITS
assert COLS * ROWS == BITS
# A block's mean luma must be clearly dark or clearly light; anything between (a blend of two
# patterns, another picture) makes the frame unreadable rather than misread.
DARK, LIGHT = 80, 176


def crc(ms: int) -> int:
    return binascii.crc_hqx(ms.to_bytes(6, "big"), 0xFFFF)


def encode(ms: int) -> list[bool]:
    """The 64 blocks, row by row, True = white: ``ms`` (most significant bit first), then its CRC."""
    if not 0 <= ms < 1 << MS_BITS:
        raise ValueError(f"{ms} does not fit in {MS_BITS} bits")
    word = (ms << CRC_BITS) | crc(ms)
    return [bool((word >> (BITS - 1 - i)) & 1) for i in range(BITS)]


def decode_bits(bits: Sequence[bool]) -> int | None:
    """``ms`` from 64 blocks, or None when the check value does not match."""
    if len(bits) != BITS:
        raise ValueError(f"{BITS} bits expected, got {len(bits)}")
    word = 0
    for bit in bits:
        word = (word << 1) | int(bit)
    ms, check = word >> CRC_BITS, word & ((1 << CRC_BITS) - 1)
    return ms if crc(ms) == check else None


def render(ms: int, width: int, height: int) -> npt.NDArray[np.uint8]:
    """The pattern for ``ms`` as a luma image (what the window shows)."""
    image = np.zeros((height, width), dtype=np.uint8)
    for i, bit in enumerate(encode(ms)):
        r, c = divmod(i, COLS)
        if bit:
            y0, y1 = round(r * height / ROWS), round((r + 1) * height / ROWS)
            x0, x1 = round(c * width / COLS), round((c + 1) * width / COLS)
            image[y0:y1, x0:x1] = 255
    return image


def read_gray(gray: npt.NDArray[np.uint8]) -> int | None:
    """The drawn server time (ms) in a luma image of the whole screen (any size: the grid is in
    proportions, so a downscaled recording reads too), or None. Each block is judged by the mean
    of its middle half, away from the edges where a lossy encoder smears neighbours together."""
    h, w = gray.shape[:2]
    bits: list[bool] = []
    for r in range(ROWS):
        y0, y1 = int((r + 0.25) * h / ROWS), int((r + 0.75) * h / ROWS)
        for c in range(COLS):
            x0, x1 = int((c + 0.25) * w / COLS), int((c + 0.75) * w / COLS)
            mean = float(gray[y0:y1, x0:x1].mean())
            if DARK < mean < LIGHT:
                return None
            bits.append(mean >= LIGHT)
    return decode_bits(bits)


def read_frame(frame: object) -> int | None:
    """The drawn server time (ms) in a decoded PyAV ``VideoFrame``, or None."""
    gray = frame.to_ndarray(format="gray")  # type: ignore[attr-defined]
    return read_gray(gray)
