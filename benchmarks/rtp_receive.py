"""Micro-benchmark: RTP packets per second through one ``RtpSession``'s receive path.

Feeds pre-built 20 ms packets straight into ``RtpSession._on_datagram`` (for G.711 the run fast
path: header check and append, and one decode + timeline + write per run of up to 16 packets;
otherwise parse, payload-type check, decode, timeline, writer into a temporary WAV), with a fake
clock advancing 20 ms per packet so the timeline emits as it would in a live call. No sockets:
this is the per-packet CPU cost the event loop pays on top of the datagram read. Also times each
stage alone to show where it goes. Figures are CPU time of this process
(``time.process_time``), so other load on the machine disturbs them less than wall-clock time
would.

    /tmp/venv/bin/python benchmarks/rtp_receive.py [--packets 100000] [--codec PCMU] [--rate 16000]

With ``--sockets N`` it instead opens N real sessions on loopback (on ``--loop uvloop`` or
``asyncio``) and a sender subprocess sends each a 20 ms PCMU packet every 20 ms (N × 50 packets/s)
for ``--seconds``; it reports this process's CPU time per received packet, event loop, socket
reads, ticks and WAV syncs included, and how many packets were lost.

The server's target is ~1000 concurrent two-stream calls, i.e. 100k packets/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from server.rtp.codecs import codec_by_name
from server.rtp.decoder import PayloadDecoder
from server.rtp.packet import RtpPacket
from server.rtp.session import RtpSession
from server.voice.timeline import VoiceTimeline
from server.voice.wav_writer import WavWriter

T0 = 1_000_000.0
SOURCE = ("127.0.0.1", 40000)


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def build_packets(codec: str, count: int) -> list[bytes]:
    audio = codec_by_name(codec)
    rng = np.random.default_rng(1)
    samples = audio.audio_rate // 50  # 20 ms
    noise = rng.integers(-8000, 8000, 50 * samples, dtype=np.int16)
    encoded = audio.encode(noise)  # in one piece: G.722 is stateful
    size = len(encoded) // 50
    frames = [encoded[k * size : (k + 1) * size] for k in range(50)]
    timestamp_step = audio.clock_rate // 50  # 20 ms of the RTP clock
    return [
        RtpPacket(
            audio.payload_type, i & 0xFFFF, (1000 + timestamp_step * i) & 0xFFFFFFFF, 0x1234, frames[i % 50]
        ).serialize()
        for i in range(count)
    ]


def report(name: str, count: int, seconds: float) -> None:
    print(f"{name:<28} {count / seconds:>12,.0f} packets/s {seconds / count * 1e6:>8.2f} µs/packet")


async def bench_session(codec: str, packets: list[bytes], directory: Path, rate: int | None) -> float:
    clock = FakeClock()
    session = await RtpSession.open(
        "127.0.0.1",
        (46000, 46999),
        directory / "session.wav",
        codec,
        sample_rate=rate,
        clock=clock,
        tick_interval=3600,
    )
    session.start(T0)
    receive = session._on_datagram
    started = time.process_time()
    for index, data in enumerate(packets):
        clock.now = T0 + index * 0.02
        receive(data, SOURCE)
    elapsed = time.process_time() - started
    await session.close(T0 + len(packets) * 0.02)
    assert session.stats.written == len(packets), session.stats
    return elapsed


def timed(action: Callable[[], None]) -> float:
    started = time.process_time()
    action()
    return time.process_time() - started


def bench_stages(codec: str, packets: list[bytes], directory: Path, rate: int | None) -> dict[str, float]:
    decoder = PayloadDecoder(codec_by_name(codec), rate)
    parsed = [RtpPacket.parse(d) for d in packets]
    decoded = [decoder.decode(p.ssrc, p.timestamp, p.payload) for p in parsed]
    out: dict[str, float] = {}

    def run_parse() -> None:
        for data in packets:
            RtpPacket.parse(data)

    def run_decode() -> None:
        fresh = PayloadDecoder(codec_by_name(codec), rate)
        for p in parsed:
            fresh.decode(p.ssrc, p.timestamp, p.payload)

    out["parse"] = timed(run_parse)
    out["decode"] = timed(run_decode)
    timeline = VoiceTimeline(T0, sample_rate=decoder.output_rate, timestamp_scale=decoder.timestamp_scale)
    chunks: list[np.ndarray] = []

    def run_timeline() -> None:
        for index, (packet, samples) in enumerate(zip(parsed, decoded, strict=True)):
            for chunk in timeline.push(packet.ssrc, packet.timestamp, samples, T0 + index * 0.02).chunks:
                chunks.append(chunk.samples)

    out["timeline"] = timed(run_timeline)
    writer = WavWriter(directory / "writer.wav", sample_rate=decoder.output_rate)

    def run_writer() -> None:
        for samples in chunks[: len(packets)]:
            writer.write(samples)

    out["writer"] = timed(run_writer)
    writer.close()
    return out


_SENDER = """
import socket, struct, sys, time
host, ports, seconds = sys.argv[1], [int(p) for p in sys.argv[2].split(",")], float(sys.argv[3])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
packet = bytearray(struct.pack("!BBHII", 0x80, 0, 0, 0, 0x1234) + bytes([0x7F]) * 160)
start = time.monotonic()
sent = 0
for tick in range(round(seconds / 0.02)):
    delay = start + tick * 0.02 - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    struct.pack_into("!HI", packet, 2, tick & 0xFFFF, (tick * 160) & 0xFFFFFFFF)
    for port in ports:
        sock.sendto(packet, (host, port))
        sent += 1
print(sent)
"""


async def bench_sockets(count: int, seconds: float, directory: Path) -> tuple[int, int, float, float]:
    """(sent, received, user and system CPU seconds of this process while receiving)."""
    sessions = [
        await RtpSession.open("127.0.0.1", (40000, 49999), directory / f"s{k}.wav", "PCMU")
        for k in range(count)
    ]
    started_at = time.time()
    for session in sessions:
        session.start(started_at)
    ports = ",".join(str(s.port) for s in sessions)
    before = os.times()
    sender = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _SENDER, "127.0.0.1", ports, str(seconds), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await sender.communicate()
    await asyncio.sleep(0.2)  # the last packets still in the socket buffers
    after = os.times()
    for session in sessions:
        await session.close(time.time())
    received = sum(s.stats.written for s in sessions)
    return int(out), received, after.user - before.user, after.system - before.system


def main_sockets(count: int, seconds: float, loop: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if loop == "uvloop":
            import uvloop

            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                sent, received, user, system = runner.run(bench_sockets(count, seconds, Path(tmp)))
        else:
            sent, received, user, system = asyncio.run(bench_sockets(count, seconds, Path(tmp)))
    print(f"{count} PCMU sessions on {loop}, {seconds:g} s, {count * 50:,} packets/s offered:")
    print(f"  sent {sent:,}, recorded {received:,} ({sent - received:,} lost)")
    for name, cpu in (("user", user), ("system", system), ("total", user + system)):
        per_packet = cpu / max(received, 1) * 1e6
        share = cpu / seconds
        print(f"  receiver {name:<6} CPU {cpu:5.2f} s = {per_packet:6.2f} µs/packet, {share:4.0%} of a core")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=100_000)
    parser.add_argument("--codec", default="PCMU")
    parser.add_argument("--rounds", type=int, default=3, help="best of this many session runs")
    parser.add_argument("--rate", type=int, default=None, help="voice file rate (default: the codec's)")
    parser.add_argument("--sockets", type=int, default=0, help="real sessions on loopback instead")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    args = parser.parse_args()
    if args.sockets:
        main_sockets(args.sockets, args.seconds, args.loop)
        return
    packets = build_packets(args.codec, args.packets)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        best = float("inf")
        for round_ in range(args.rounds):
            for name in ("session.wav", "writer.wav"):
                (directory / name).unlink(missing_ok=True)
            best = min(best, asyncio.run(bench_session(args.codec, packets, directory, args.rate)))
            if round_ == 0:
                stages = bench_stages(args.codec, packets, directory, args.rate)
    into = f" into a {args.rate} Hz file" if args.rate else ""
    print(f"{args.codec}{into}, {args.packets:,} packets of 20 ms, one session, best of {args.rounds}:")
    report("RtpSession._on_datagram", args.packets, best)
    for name, seconds in stages.items():
        report(f"  stage: {name}", args.packets, seconds)


if __name__ == "__main__":
    main()
