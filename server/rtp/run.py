"""Runs: the G.711 fast path of an ``RtpSession``'s receive loop.

Almost every packet of a live call continues the one before it exactly: same source address,
SSRC, payload type and size; a timestamp exactly one packet further on; and no padding,
extension or CSRC. The session spots such a packet from its first 12 bytes, comparing them with
what ``RunBuffer`` was armed with (inline, on its hot path), and appends it to the current run
without parsing, decoding or placing it. ``take`` then hands the whole run to the decoder and
the timeline in one piece. A run is bounded (``RUN_MAX_PACKETS``), so the buffer never grows
without limit.

Pure logic: no sockets, no clock. The run stays contiguous by construction; the session places
it before it handles any packet that is not a continuation, so the timeline sees packets in the
order they arrived. It also asks ``placed_recently`` whether such a packet repeats one already
placed as part of a run: packet by packet, the timeline would have called that a duplicate.
"""

from __future__ import annotations

import collections
import struct
from typing import NamedTuple

RUN_MAX_PACKETS = 16  # 320 ms of 20-ms packets: well inside the timeline's reorder/flush holds
_RECENT_RUNS = 64  # runs remembered for duplicate detection (>= 1.3 s of audio)
_MASK = 0xFFFFFFFF
_HEADER = 12
TIMESTAMP_SSRC = struct.Struct("!II")  # at offset 4 of the fixed header


class Run(NamedTuple):
    ssrc: int
    timestamp: int  # of the first packet
    payload: bytes  # every packet's payload, in order
    packets: int
    arrival: float  # of the first packet


class RunBuffer:
    """The current run of one stream, and the few runs placed before it.

    The session reads ``source``/``size``/``second_octet``/``ssrc``/``next_timestamp`` directly
    on its hot path (attribute reads are cheaper than a method call); ``None`` as ``source``
    means disarmed: no datagram can match.
    """

    __slots__ = (
        "_recent",
        "first_arrival",
        "first_timestamp",
        "next_timestamp",
        "packets",
        "second_octet",
        "size",
        "source",
        "ssrc",
        "step",
    )

    def __init__(self) -> None:
        self.source: object = None
        self.size = -1
        self.second_octet = -1
        self.ssrc = -1
        self.next_timestamp = -1
        self.step = 0
        self.packets: list[bytes] = []
        self.first_timestamp = 0
        self.first_arrival = 0.0
        self._recent: collections.deque[tuple[int, int, int]] = collections.deque(maxlen=_RECENT_RUNS)

    def arm(self, source: object, size: int, payload_type: int, ssrc: int, timestamp: int, step: int) -> None:
        """A plain packet (version 2, no padding/extension/CSRC, no marker needed) of ``size``
        bytes carrying ``step`` timestamp units was placed in order: its continuation may join a
        run. Call only with the current run empty (placed)."""
        if self.packets:
            raise RuntimeError("arm() with a run still pending: place it first")
        self.source = source
        self.size = size
        self.second_octet = payload_type  # no marker bit: a continuation never starts a talkspurt
        self.ssrc = ssrc
        self.step = step
        self.next_timestamp = (timestamp + step) & _MASK

    def disarm(self) -> None:
        self.source = None

    def append(self, datagram: bytes, timestamp: int, arrival: float) -> bool:
        """Add a continuation (checked by the caller); True once the run is full."""
        packets = self.packets
        if not packets:
            self.first_timestamp = timestamp
            self.first_arrival = arrival
        packets.append(datagram)
        self.next_timestamp = (timestamp + self.step) & _MASK
        return len(packets) >= RUN_MAX_PACKETS

    @property
    def pending(self) -> int:
        return len(self.packets)

    def take(self) -> Run | None:
        """The current run, removed and remembered; None if empty."""
        packets = self.packets
        if not packets:
            return None
        self.packets = []
        count = len(packets)
        self._recent.append((self.ssrc, self.first_timestamp, count * self.step))
        payload = b"".join([datagram[_HEADER:] for datagram in packets])
        return Run(self.ssrc, self.first_timestamp, payload, count, self.first_arrival)

    def placed_recently(self, ssrc: int, timestamp: int) -> bool:
        """Whether a packet at ``timestamp`` was already placed as part of a recent run."""
        for run_ssrc, first, span in self._recent:
            if run_ssrc == ssrc and (timestamp - first) & _MASK < span:
                return True
        return False
