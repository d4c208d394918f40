"""Kernel-stamped capture of the RTP sent on the loopback interface, and the beeps in it.

An ``AF_PACKET`` socket on ``lo`` (root only) with ``SO_TIMESTAMPNS``: each datagram comes with
the time the kernel handed it to the interface (CLOCK_REALTIME, the clock the server's time is
read from on this machine), so a reader thread that is slow on a loaded machine delays nothing
it measures. A classic BPF filter keeps only IPv4/UDP in the kernel (the screen uploads on the
same interface are TCP), and only the sender's copy of each datagram is kept (loopback shows a
datagram twice: going out and coming in).

The beeps' true server times are taken from the sender's own sample clock, recovered from these
stamps: a sender that is scheduled late sends a packet late, so the low end of (send stamp − RTP
time) over the whole stream is its offset when on time, and a beep's server time is that offset
plus its onset in RTP time. One offset for the stream, as a phone's audio clock runs steadily and
the server places a stream by its RTP timestamps from one anchor: a SIPp that falls behind for
seconds under load (seen: 10–15 ms for 20 s) sends its beeps late, but they still belong where
its timestamps put them. The low end is the 5th percentile, not the minimum: SIPp sends the odd
packet some 10 ms ahead of its usual schedule (seen: one of 1500), and one such packet would move
the whole clock. SIPp's clock rate was within 25 ppm of the system's (1 ms over 40 s), so no rate is
fitted. The send stamp of the packet that carried the onset is kept too (it includes the sender's
scheduling delay, for the log).
"""

from __future__ import annotations

import contextlib
import ctypes
import socket
import struct
import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from server.media.beep_onsets import beep_onsets
from server.voice.g711 import ulaw_decode

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SOL_PACKET, PACKET_STATISTICS = 263, 6  # linux/if_packet.h (not in the socket module)
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SO_ATTACH_FILTER = 26
RATE = 8000  # PCMU
ON_TIME_PERCENTILE = 5  # of (send stamp − RTP time): the sender's schedule (module docstring)


def _filter(ports: range) -> list[tuple[int, int, int, int]]:
    """Classic BPF: IPv4 (ethertype at 12) carrying UDP (protocol at 23) to a port in ``ports``
    (at IP header length + 16), whole packet; anything else dropped in the kernel."""
    return [
        (0x28, 0, 0, 12),  # ldh [12]
        (0x15, 0, 7, 0x0800),  # jeq IPv4 ? next : drop
        (0x30, 0, 0, 23),  # ldb [23]
        (0x15, 0, 5, 17),  # jeq UDP ? next : drop
        (0xB1, 0, 0, 14),  # ldxb 4*([14]&0xf): the IP header's length
        (0x48, 0, 0, 16),  # ldh [x+16]: UDP destination port
        (0x35, 0, 2, ports.start),  # jge start ? next : drop
        (0x25, 1, 0, ports.stop - 1),  # jgt last ? drop : accept
        (0x06, 0, 0, 0x40000),  # ret accept
        (0x06, 0, 0, 0),  # ret drop
    ]


class _SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


@dataclass(frozen=True)
class RtpPacket:
    sent: float  # kernel stamp, s (CLOCK_REALTIME)
    src_port: int
    dst_port: int
    payload_type: int
    seq: int
    timestamp: int
    ssrc: int
    payload: bytes


@dataclass
class Capture:
    packets: list[RtpPacket] = field(default_factory=list)
    dropped: int = 0  # datagrams the kernel dropped from the socket's queue (must stay 0)


def parse(frame: bytes, sent: float) -> RtpPacket | None:
    """An RTP packet from an Ethernet frame of IPv4/UDP, or None for anything else."""
    if len(frame) < 14 + 20 + 8 + 12 or frame[12:14] != b"\x08\x00":
        return None
    ihl = (frame[14] & 0x0F) * 4
    if frame[23] != 17:
        return None
    udp = 14 + ihl
    src, dst = struct.unpack_from("!HH", frame, udp)
    rtp = udp + 8
    b0, b1, seq, ts, ssrc = struct.unpack_from("!BBHII", frame, rtp)
    if b0 >> 6 != 2:  # not RTP (SIP is text: its first byte is a letter)
        return None
    header = 12 + 4 * (b0 & 0x0F)
    if b0 & 0x10:  # header extension
        (words,) = struct.unpack_from("!H", frame, rtp + header + 2)
        header += 4 + 4 * words
    return RtpPacket(sent, src, dst, b1 & 0x7F, seq, ts, ssrc, frame[rtp + header :])


@contextlib.contextmanager
def capture_lo(to_ports: range) -> Iterator[Capture]:
    """Capture the RTP sent on ``lo`` to ``to_ports`` while the block runs (the packets are in
    the result after). Other tests on this machine send RTP on lo too: only ours is kept."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    try:
        code = _filter(to_ports)
        insns = (_SockFilter * len(code))(*(_SockFilter(*i) for i in code))
        prog = _SockFprog(len(code), insns)
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, bytes(prog))
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
        sock.bind(("lo", 0))
        sock.settimeout(0.2)
        result = Capture()
        stop = threading.Event()

        def read() -> None:
            while not stop.is_set():
                try:
                    data, anc, _flags, addr = sock.recvmsg(2048, socket.CMSG_SPACE(16))
                except TimeoutError:
                    continue
                if addr[2] != PACKET_OUTGOING:
                    continue
                sent = None
                for level, kind, value in anc:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                        sec, nsec = struct.unpack("qq", value[:16])
                        sent = sec + nsec / 1e9
                if sent is None:
                    raise AssertionError("the capture socket gave no kernel timestamp")
                if (packet := parse(data, sent)) is not None:
                    result.packets.append(packet)

        thread = threading.Thread(target=read, name="rtp-capture", daemon=True)
        thread.start()
        try:
            yield result
        finally:
            stop.set()
            thread.join(5)
            # PACKET_STATISTICS: (packets, drops) since the last read.
            stats = sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
            result.dropped = struct.unpack("II", stats)[1]
    finally:
        sock.close()


@dataclass(frozen=True)
class Beep:
    server_time: float  # from the sender's sample clock (see the module's docstring)
    packet_sent: float  # kernel send stamp of the packet carrying the onset + the onset's offset in it
    start_lead: float  # s the stream's earliest packet of its first START_WINDOW was ahead of that clock


# The server anchors a stream on its earliest arrival within its reorder window after the first
# packet (server/voice/timeline.py, 60 ms): if the sender's first packets go out ahead of its later
# schedule, the whole voice sits that much early — the expected skew, for the log.
START_WINDOW = 0.06


def stream_beeps(packets: list[RtpPacket], to_ports: range) -> list[Beep]:
    """The beeps in the one PCMU stream (ssrc, source port) sent to ``to_ports`` (the server's
    RTP ports: other tests on the machine send RTP on lo too) that carries any, at their true
    server times."""
    streams: dict[tuple[int, int], list[RtpPacket]] = defaultdict(list)
    for p in packets:
        if p.payload_type == 0 and p.payload and p.dst_port in to_ports:
            streams[(p.ssrc, p.src_port)].append(p)
    found = []
    for stream in streams.values():
        beeps = _beeps(sorted(stream, key=lambda p: (p.timestamp - stream[0].timestamp) % (1 << 32)))
        if beeps:
            found.append(beeps)
    if len(found) != 1:
        raise AssertionError(f"{len(found)} captured PCMU streams carry beeps; expected exactly one")
    return found[0]


def _beeps(stream: list[RtpPacket]) -> list[Beep]:
    ts0 = stream[0].timestamp
    rtp = np.array([(p.timestamp - ts0) % (1 << 32) for p in stream], dtype=np.int64)
    sent = np.array([p.sent for p in stream])
    end = int(rtp.max()) + max(len(p.payload) for p in stream)
    pcm = np.zeros(end)
    for at, p in zip(rtp, stream, strict=True):
        pcm[at : at + len(p.payload)] = ulaw_decode(p.payload)
    offsets = sent - rtp / RATE  # server time of RTP time 0 by each packet; late ones read later
    clock = float(np.percentile(offsets, ON_TIME_PERCENTILE))
    start_lead = clock - float(offsets[rtp / RATE <= START_WINDOW].min())
    out = []
    for onset in beep_onsets(pcm, RATE):
        carrier = int(np.searchsorted(rtp, onset * RATE, side="right")) - 1
        out.append(
            Beep(
                server_time=clock + onset,
                packet_sent=float(sent[carrier]) + onset - float(rtp[carrier]) / RATE,
                start_lead=start_lead,
            )
        )
    return out
