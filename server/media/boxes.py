"""Walk the top-level boxes of an ISO BMFF (MP4) file without codecs.

Used to check the layout the server promises browsers: ``moov`` before ``mdat`` (faststart), so
playback and seeking can start after the first bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from server.errors import ProbeError

_MAX_BOXES = 100_000  # fragmented files have two boxes per fragment; bound the walk anyway


@dataclass(frozen=True)
class Box:
    kind: str  # four-character code, e.g. "moov"
    offset: int
    size: int


def iter_top_level_boxes(fp: BinaryIO, file_size: int) -> Iterator[Box]:
    """Yield each top-level box; raise :class:`ProbeError` on a size that cannot be right."""
    pos = 0
    for _ in range(_MAX_BOXES):
        if pos >= file_size:
            return
        fp.seek(pos)
        header = fp.read(8)
        if len(header) < 8:
            raise ProbeError(f"truncated box header at offset {pos}")
        size, raw_kind = struct.unpack(">I4s", header)
        if size == 1:  # 64-bit size follows the type
            ext = fp.read(8)
            if len(ext) < 8:
                raise ProbeError(f"truncated 64-bit box size at offset {pos}")
            (size,) = struct.unpack(">Q", ext)
        elif size == 0:  # box extends to the end of the file
            size = file_size - pos
        if size < 8 or pos + size > file_size:
            raise ProbeError(f"box {raw_kind!r} at offset {pos} has impossible size {size}")
        yield Box(raw_kind.decode("latin-1"), pos, size)
        pos += size
    raise ProbeError(f"more than {_MAX_BOXES} top-level boxes")


def is_faststart(kinds: list[str]) -> bool:
    """True when the movie header comes before the first media data."""
    if "moov" not in kinds or "mdat" not in kinds:
        return False
    return kinds.index("moov") < kinds.index("mdat")
