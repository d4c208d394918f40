"""Disjoint RTP port sub-ranges, one per worker (pure).

Each worker binds only in its own sub-range, so workers never race for a port. A sub-range starts
on an even port and holds whole RTP/RTCP pairs; the last one may end on an even port whose RTCP
port is ``high + 1``, exactly as ``server.rtp.ports`` treats the whole range.
"""

from __future__ import annotations


def split_port_range(port_range: tuple[int, int], parts: int) -> list[tuple[int, int] | None]:
    """``parts`` inclusive sub-ranges of ``port_range`` (as even as whole pairs allow); ``None``
    for a part left without a pair when the range has fewer pairs than parts."""
    if parts < 1:
        raise ValueError(f"cannot split a port range into {parts} parts")
    low, high = port_range
    first = low + (low % 2)
    pairs = max(0, (high - first) // 2 + 1)
    result: list[tuple[int, int] | None] = []
    for part in range(parts):
        start, stop = part * pairs // parts, (part + 1) * pairs // parts  # pair indexes [start, stop)
        if start == stop:
            result.append(None)
        else:
            result.append((first + 2 * start, min(high, first + 2 * stop - 1)))
    return result
