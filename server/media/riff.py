"""WAV (RIFF) header parsing without codecs.

The voice recorder writes its WAV incrementally, so a file left by a crash may carry a data size of
0 or 0xFFFFFFFF, or one larger than the bytes on disk. The parser trusts the bytes on disk in that
case: the recording is playable up to its last whole sample frame.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

from server.errors import ProbeError

WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_ALAW = 0x0006
WAVE_FORMAT_MULAW = 0x0007
WAVE_FORMAT_EXTENSIBLE = 0xFFFE

_MAX_CHUNKS = 64  # a real WAV has a handful; more means garbage we should not walk through
_MAX_FMT_SIZE = 1024
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


@dataclass(frozen=True)
class WavInfo:
    format_tag: int  # WAVE_FORMAT_* (the sub-format for WAVE_FORMAT_EXTENSIBLE)
    channels: int
    rate: int
    bits_per_sample: int
    block_align: int
    data_offset: int  # byte offset of the first sample frame
    frames: int  # whole sample frames present

    @property
    def duration(self) -> float:
        return self.frames / self.rate


def _parse_fmt(body: bytes) -> tuple[int, int, int, int, int]:
    if len(body) < 16:
        raise ProbeError(f"fmt chunk too short ({len(body)} bytes)")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body, 0)
    if tag == WAVE_FORMAT_EXTENSIBLE:
        # cbSize(2) validBits(2) channelMask(4) then the sub-format GUID, whose first 2 bytes are the tag
        if len(body) < 26:
            raise ProbeError("WAVE_FORMAT_EXTENSIBLE fmt chunk too short")
        (tag,) = struct.unpack_from("<H", body, 24)
    if channels < 1 or rate < 1 or block_align < 1:
        raise ProbeError(f"invalid fmt: channels={channels} rate={rate} block_align={block_align}")
    return tag, channels, rate, block_align, bits


def parse_wav(fp: BinaryIO, file_size: int) -> WavInfo:
    """Read the RIFF chunk headers of ``fp`` (positioned anywhere) and describe the audio data."""
    fp.seek(0)
    head = fp.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise ProbeError("not a RIFF/WAVE file")
    fmt: tuple[int, int, int, int, int] | None = None
    pos = 12
    for _ in range(_MAX_CHUNKS):
        fp.seek(pos)
        header = fp.read(8)
        if len(header) < 8:
            break
        chunk_id, size = header[:4], struct.unpack("<I", header[4:])[0]
        body_start = pos + 8
        if chunk_id == b"fmt ":
            if size > _MAX_FMT_SIZE:
                raise ProbeError(f"fmt chunk implausibly large ({size} bytes)")
            fmt = _parse_fmt(fp.read(size))
        elif chunk_id == b"data":
            if fmt is None:
                raise ProbeError("data chunk before fmt chunk")
            tag, channels, rate, block_align, bits = fmt
            available = max(0, file_size - body_start)
            length = available if size in _UNKNOWN_SIZES or size > available else size
            return WavInfo(tag, channels, rate, bits, block_align, body_start, length // block_align)
        pos = body_start + size + (size & 1)  # chunks are padded to an even length
    raise ProbeError("no data chunk found" if fmt is not None else "no fmt chunk found")
