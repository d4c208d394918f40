"""The audio SIPp plays: one G.711 μ-law RTP stream per call leg, 20 ms packets.

SIPp's pcap play replays a capture's UDP payloads with its timing, rewriting addresses and ports
to the call's; ``rtp_stream`` cuts raw μ-law into 20 ms packets (160 bytes each). Every leg holds
exactly ``packets`` packets: ``packets × 20 ms`` of media sent per leg, the figure every recorded
file is checked against. Each leg is a tone (caller 440 Hz, agent 1 kHz) so a file's channels
can be told apart.

SIPp 3.6.1 sends a capture's first two packets back to back when the first one's pcap timestamp
is zero (``do_sleep`` takes a zero "last" time for "no packet yet" and restarts its clock), then
paces the rest 20 ms apart from the second. These captures start at zero, so each leg looks like
a sender whose first packet is one packet time late: the server places a stream by its earliest
arrivals (``server.voice.timeline``), i.e. from the second packet on, which with SIPp's ~5 ms
from the 200 OK to its first packet puts the audio at the answer ("answer → first audio" about
0.1 ms in the run's figures).

Pure byte building (numpy for the tone, ``server.voice.g711`` for μ-law); no sockets.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from server.voice.g711 import ulaw_encode

SAMPLE_RATE = 8000
PACKET_MS = 20
SAMPLES_PER_PACKET = SAMPLE_RATE * PACKET_MS // 1000
PCMU = 0
CALLER_HZ, AGENT_HZ = 440.0, 1000.0

_PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # LINKTYPE_ETHERNET
_ETHERNET = b"\x00\x00\x00\x00\x00\x02" + b"\x00\x00\x00\x00\x00\x01" + b"\x08\x00"


def tone_ulaw(freq: float, packets: int, level: float = 8000.0) -> bytes:
    """``packets`` × 20 ms of a sine tone, μ-law encoded."""
    t = np.arange(packets * SAMPLES_PER_PACKET) / SAMPLE_RATE
    return ulaw_encode((level * np.sin(2 * np.pi * freq * t)).astype(np.int16))


def rtp_packets(payload: bytes, ssrc: int) -> list[bytes]:
    """Split ``payload`` into 20 ms RTP packets (PT 0, marker on the first)."""
    out = []
    for i in range(len(payload) // SAMPLES_PER_PACKET):
        header = struct.pack(
            "!BBHII",
            0x80,
            (0x80 if i == 0 else 0) | PCMU,
            i & 0xFFFF,
            (i * SAMPLES_PER_PACKET) & 0xFFFFFFFF,
            ssrc,
        )
        out.append(header + payload[i * SAMPLES_PER_PACKET : (i + 1) * SAMPLES_PER_PACKET])
    return out


def _ipv4_udp(payload: bytes, src_port: int, dst_port: int) -> bytes:
    udp = struct.pack("!HHHH", src_port, dst_port, 8 + len(payload), 0) + payload  # checksum 0: none
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(udp),
        0,
        0x4000,
        64,
        17,
        0,
        bytes([127, 0, 0, 1]),
        bytes([127, 0, 0, 1]),
    )
    checksum = _ip_checksum(header)
    return header[:10] + struct.pack("!H", checksum) + header[12:] + udp


def _ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return int(~total & 0xFFFF)  # struct.unpack is untyped


def pcap_bytes(legs: list[tuple[list[bytes], int, int]]) -> bytes:
    """A pcap file, one Ethernet/IPv4/UDP frame per RTP packet; ``legs`` are (packets, source
    port, destination port), packet i of every leg at i × 20 ms."""
    parts = [_PCAP_HEADER]
    for i in range(max(len(packets) for packets, _, _ in legs)):
        micros = i * PACKET_MS * 1000
        for packets, src_port, dst_port in legs:
            if i < len(packets):
                frame = _ETHERNET + _ipv4_udp(packets[i], src_port, dst_port)
                parts.append(
                    struct.pack("<IIII", micros // 1_000_000, micros % 1_000_000, len(frame), len(frame))
                )
                parts.append(frame)
    return b"".join(parts)


PAIR_DELTAS = range(2, 22, 2)  # the scenario's pair_<D>.pcap: second answer port D above the first


def write_leg_media(directory: Path, packets: int) -> None:
    """What the scenario plays, ``packets`` × 20 ms per leg (caller 440 Hz, agent 1 kHz):

    * pair_<D>.pcap: both legs in one capture, the caller's to port 7000 and the agent's to
      7000 + D; SIPp maps 7000 to the answer's first port, so the agent's go D above it;
    * caller.raw (raw μ-law for ``rtp_stream``) and agent.pcap: the fallback's two legs.
    """
    directory.mkdir(parents=True, exist_ok=True)
    caller = rtp_packets(tone_ulaw(CALLER_HZ, packets), 0x0CA11E40)
    agent = rtp_packets(tone_ulaw(AGENT_HZ, packets), 0x0A6E0701)
    for delta in PAIR_DELTAS:
        pair = pcap_bytes([(caller, 6000, 7000), (agent, 6000 + delta, 7000 + delta)])
        (directory / f"pair_{delta}.pcap").write_bytes(pair)
    (directory / "caller.raw").write_bytes(tone_ulaw(CALLER_HZ, packets))
    (directory / "agent.pcap").write_bytes(pcap_bytes([(agent, 6000, 7000)]))
