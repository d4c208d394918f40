"""Find the playable prefix of a fragmented MP4 cut short by a crash.

A killed recorder leaves ``ftyp``, ``moov`` and complete ``moof``+``mdat`` pairs, then possibly a
half-written fragment. Uploading the torn tail would make the server reject the file as
truncated, so recovery cuts the file at the end of the last complete fragment. Pure: works on a
binary stream, parses box headers defensively (sizes checked against what is left).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

from recorder_service.errors import Mp4StructureError


@dataclass(frozen=True, slots=True)
class Box:
    kind: str
    offset: int
    size: int


def top_level_boxes(stream: BinaryIO, total: int) -> list[Box]:
    """Complete top-level boxes from the start; stops at the first torn or malformed header."""
    boxes: list[Box] = []
    offset = 0
    while offset + 8 <= total:
        stream.seek(offset)
        header = stream.read(8)
        if len(header) < 8:
            break
        size, raw_kind = struct.unpack(">I4s", header)
        header_len = 8
        if size == 1:
            ext = stream.read(8)
            if len(ext) < 8:
                break
            size = struct.unpack(">Q", ext)[0]
            header_len = 16
        elif size == 0:
            size = total - offset  # "extends to end of file": only trustworthy for the last box
        if size < header_len or offset + size > total:
            break
        try:
            kind = raw_kind.decode("ascii")
        except UnicodeDecodeError:
            break
        boxes.append(Box(kind, offset, size))
        offset += size
    return boxes


def playable_length(stream: BinaryIO, total: int) -> int:
    """Byte length of the prefix ending after the last complete ``moof``+``mdat`` pair.

    ``Mp4StructureError`` if there is no ``ftyp``/``moov`` head or no complete fragment.
    """
    boxes = top_level_boxes(stream, total)
    kinds = [b.kind for b in boxes]
    if "ftyp" not in kinds[:1] or "moov" not in kinds:
        raise Mp4StructureError("no ftyp/moov at the start: not an MP4 written by the recorder")
    end = 0
    pending_moof = False
    for box in boxes:
        if box.kind == "moof":
            pending_moof = True
        elif box.kind == "mdat" and pending_moof:
            pending_moof = False
            end = box.offset + box.size
        elif box.kind == "mfra" and end:
            end = box.offset + box.size  # a cleanly closed file also has the random-access index
    if end == 0:
        raise Mp4StructureError("no complete fragment: the capture ended before its first frames were saved")
    return end
