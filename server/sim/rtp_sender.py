"""A paced RTP sender for tests and the call simulator.

Sends 20 ms G.711 packets (160 samples) on a monotonic schedule computed from the start time,
not from the previous send, so scheduling delays never accumulate into drift. Sequence number,
timestamp and SSRC start random as RFC 3550 requires; the first packet carries the marker bit.
Only ever used towards loopback in this project.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from server.rtp.codecs import codec_by_name
from server.rtp.packet import RtpPacket

PTIME = 0.02
SAMPLES_PER_PACKET = 160


@dataclass(slots=True)
class RtpSendStats:
    packets: int = 0
    bytes: int = 0  # RTP bytes (headers + payload)
    ssrc: int = 0
    first_sequence: int = 0
    first_timestamp: int = 0
    started_at: float = 0.0  # loop.time() of the first packet
    max_lateness: float = 0.0  # worst delay of a send behind its schedule, seconds
    stopped: bool = False  # ``stop`` was set before all audio was sent


class _Sink(asyncio.DatagramProtocol):
    """Ignores anything sent back (RTCP, ICMP errors): this side only sends."""

    def error_received(self, exc: Exception) -> None:
        pass


async def send_rtp(
    local: tuple[str, int] | None,
    remote: tuple[str, int],
    codec: str,
    pcm: npt.NDArray[np.int16],
    stop: asyncio.Event | None = None,
) -> RtpSendStats:
    """Send ``pcm`` (8 kHz int16) to ``remote`` as paced RTP; the last frame is padded with silence."""
    audio = codec_by_name(codec)
    samples = np.asarray(pcm, dtype=np.int16).reshape(-1)
    frames = -(-len(samples) // SAMPLES_PER_PACKET)
    padded = np.zeros(frames * SAMPLES_PER_PACKET, dtype=np.int16)
    padded[: len(samples)] = samples
    stats = RtpSendStats(
        ssrc=secrets.randbits(32), first_sequence=secrets.randbits(16), first_timestamp=secrets.randbits(32)
    )
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_Sink, local_addr=local, remote_addr=remote)
    try:
        start = loop.time()
        stats.started_at = start
        for index in range(frames):
            if stop is not None and stop.is_set():
                stats.stopped = True
                break
            due = start + index * PTIME
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            stats.max_lateness = max(stats.max_lateness, loop.time() - due)
            frame = padded[index * SAMPLES_PER_PACKET : (index + 1) * SAMPLES_PER_PACKET]
            packet = RtpPacket(
                payload_type=audio.payload_type,
                sequence=(stats.first_sequence + index) & 0xFFFF,
                timestamp=(stats.first_timestamp + index * SAMPLES_PER_PACKET) & 0xFFFFFFFF,
                ssrc=stats.ssrc,
                payload=audio.encode(frame),
                marker=index == 0,
            )
            data = packet.serialize()
            transport.sendto(data)
            stats.packets += 1
            stats.bytes += len(data)
    finally:
        transport.close()
    return stats
