"""SIPp alone: what the load generator costs at a concurrency when nothing records the calls.

    /tmp/venv/bin/python benchmarks/voice_load/sipp_alone.py --calls 20 --ramp-seconds 2 --plateau 3
    /tmp/venv/bin/python benchmarks/voice_load/sipp_alone.py --calls 1000 --ramp-seconds 50 --plateau 30
    /tmp/venv/bin/python benchmarks/voice_load/sipp_alone.py --calls 1000 --ramp-seconds 50 \\
        --plateau 30 --sipp-realtime 10 --json /tmp/sipp-alone-1000.json

The load is run.py's ramp step for ``--calls`` (the same SIPp process and scenario, all calls
overlapping for ``--plateau`` seconds), but the calls are answered by a second SIPp
(``sink_uas.xml``) whose SDP sends every call's two legs to the same two UDP ports, bound here
with a tiny receive buffer and never read: the kernel drops the datagrams, standing in for the
recorder. Printed: calls attempted / succeeded / failed, peak concurrency, CPU of both SIPp
processes and of the whole machine (which includes anything else running), datagrams that
reached the sink against those sent, and calls on the fallback media path. Needs root (SIPp's
pcap play uses a raw socket) and ``sipp`` (Debian sip-tester 3.6.1).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script from anywhere

from benchmarks.voice_load.processes import (
    ProcessError,
    Sampler,
    free_port,
    machine_busy_seconds,
    stop_process,
    udp_receive_errors,
)
from benchmarks.voice_load.run import concurrent_plan
from benchmarks.voice_load.sipp_load import prepare, read_stats, run_load

UAS_SCENARIO = Path(__file__).resolve().parent / "sink_uas.xml"
HOST = "127.0.0.1"


def port_pair(rcvbuf: int = 0) -> tuple[socket.socket, socket.socket]:
    """Two UDP sockets bound to an even port P and P + 2 on HOST (``rcvbuf``: SO_RCVBUF, 0 leaves it)."""
    for _ in range(200):
        port = free_port(socket.SOCK_DGRAM, HOST) & ~1
        pair = (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
        )
        try:
            for offset, sock in enumerate(pair):
                if rcvbuf:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # kernel minimum ~4.5 KB
                sock.bind((HOST, port + 2 * offset))
            return pair
        except OSError:
            for sock in pair:
                sock.close()
    raise ProcessError(f"no free UDP port pair on {HOST}")


def sink_datagrams(sink: tuple[socket.socket, socket.socket]) -> int:
    """Datagrams that reached the sink: dropped (buffer full, ``drops`` in /proc/net/udp) + queued."""
    inodes = {os.fstat(sock.fileno()).st_ino for sock in sink}
    dropped = sum(
        int(fields[-1])
        for fields in (line.split() for line in Path("/proc/net/udp").read_text().splitlines()[1:])
        if int(fields[9]) in inodes
    )
    queued = 0
    for sock in sink:
        sock.setblocking(False)
        try:
            while sock.recv(2048):
                queued += 1
        except BlockingIOError:
            pass
    return dropped + queued


def start_uas(workdir: Path, sink_port: int) -> tuple[subprocess.Popen[bytes], int]:
    """The answering SIPp on HOST, listening once this returns; its SIP port."""
    shutil.copy(UAS_SCENARIO, workdir / UAS_SCENARIO.name)
    echo = port_pair()  # SIPp binds -mp and -mp + 2 for RTP echo (unused): a free pair, not 6000
    echo_port = echo[0].getsockname()[1]
    for sock in echo:
        sock.close()
    port = free_port(socket.SOCK_DGRAM, HOST)
    command = [
        "sipp", "-sf", str(workdir / UAS_SCENARIO.name), "-i", HOST, "-p", str(port), "-t", "u1",
        "-mi", HOST, "-mp", str(echo_port),
        "-set", "sink_port", str(sink_port), "-set", "sink_port2", str(sink_port + 2),
        "-buff_size", str(4 * 1024 * 1024), "-nostdin",
        "-trace_err", "-error_file", str(workdir / "uas_errors.log"),
        "-trace_stat", "-stf", str(workdir / "uas_stats.csv"), "-fd", "1",
    ]  # fmt: skip
    (workdir / "uas_command.txt").write_text(" ".join(command) + "\n")
    with open(workdir / "uas_stdout.log", "wb") as out:
        proc = subprocess.Popen(
            command, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proc.poll() is None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                return proc, port  # taken: SIPp is listening
        time.sleep(0.1)
    stop_process(proc)
    raise ProcessError(f"UAS SIPp not listening on {HOST}:{port}: see {workdir / 'uas_stdout.log'}")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}%"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, required=True, help="concurrent calls to reach")
    parser.add_argument("--ramp-seconds", type=float, default=20.0, help="seconds to start the calls")
    parser.add_argument("--plateau", type=float, default=10.0, help="seconds all the calls overlap")
    parser.add_argument(
        "--sipp-realtime",
        type=int,
        default=0,
        metavar="PRIORITY",
        help="run the load SIPp (not the UAS) under SCHED_FIFO at this priority (chrt; 0: normal)",
    )
    parser.add_argument(
        "--workdir", type=Path, help="where SIPp's files go (default: a new temporary directory)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tandem-sipp-alone-"))
    plan = replace(concurrent_plan(args.calls, args.ramp_seconds, args.plateau), realtime=args.sipp_realtime)
    print(
        f"sipp_alone: {plan.calls} calls at {plan.rate:g}/s, {plan.media_ms / 1000:g} s of media per leg, "
        f"work directory {workdir}; {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        flush=True,
    )
    prepare(workdir, plan, ["1001"])
    sink = port_pair(rcvbuf=4096)
    uas, uas_port = start_uas(workdir, sink[0].getsockname()[1])
    uas_sampler = Sampler(uas.pid).start()
    try:
        udp_before, busy_before = udp_receive_errors(), machine_busy_seconds()
        load = run_load(plan, workdir, uas_port, timeout=plan.calls / plan.rate + plan.media_ms / 1000 + 120)
        udp_errors = udp_receive_errors() - udp_before
        machine_cpu = 100 * (machine_busy_seconds() - busy_before) / (load.ended - load.started)
    finally:
        uas_sampler.stop()
        stop_process(uas)
    reached = sink_datagrams(sink)
    for sock in sink:
        sock.close()
    _, uas_ok, uas_failed, uas_peak = read_stats(workdir / "uas_stats.csv")
    expected = plan.calls * plan.packets * 2  # both legs of every call
    uac_mean, uac_peak = load.sampler.cpu_percent(load.started, load.ended), load.sampler.peak_cpu_percent()
    uas_mean, uas_peak_cpu = uas_sampler.cpu_percent(load.started, load.ended), uas_sampler.peak_cpu_percent()
    load_average = os.getloadavg()[0]
    print(
        f"  UAC SIPp: exit {load.returncode}; calls attempted {load.created}, succeeded {load.succeeded}, "
        f"failed {load.failed}; peak concurrent {load.peak_concurrent}; "
        f"on the fallback media path {len(load.fallbacks)}"
    )
    print(f"  UAC SIPp CPU mean {_pct(uac_mean)}, peak 5 s {_pct(uac_peak)}  (100% = one core)")
    print(
        f"  UAS SIPp CPU mean {_pct(uas_mean)}, peak 5 s {_pct(uas_peak_cpu)}; "
        f"calls completed {uas_ok}, failed {uas_failed}, peak concurrent {uas_peak}"
    )
    print(
        f"  machine busy CPU mean {machine_cpu:.0f}% (all processes, 200% = both cores), "
        f"load average {load_average:.2f}"
    )
    print(
        f"  sink: {reached} datagrams reached it (dropped there or queued) of {expected} sent "
        f"(calls x packets x 2 legs); UDP RcvbufErrors machine-wide +{udp_errors}",
        flush=True,
    )
    if load.returncode != 0 and (tail := load.errors_tail(1500)):
        print("  UAC SIPp errors (tail):\n    " + tail.replace("\n", "\n    "))
    if args.json:
        figures = {
            "calls": plan.calls, "rate": plan.rate, "media_seconds": plan.media_ms / 1000,
            "sipp_realtime": plan.realtime, "sipp_returncode": load.returncode,
            "attempted": load.created, "succeeded": load.succeeded, "failed": load.failed,
            "peak_concurrent": load.peak_concurrent, "fallbacks": len(load.fallbacks),
            "uac_cpu_mean": uac_mean, "uac_cpu_peak": uac_peak, "uac_rss_max": load.sampler.max_rss(),
            "uas_cpu_mean": uas_mean, "uas_cpu_peak": uas_peak_cpu,
            "uas_succeeded": uas_ok, "uas_failed": uas_failed, "uas_peak_concurrent": uas_peak,
            "machine_cpu_mean": machine_cpu, "load_average": load_average,
            "sink_datagrams": reached, "expected_datagrams": expected, "udp_rcvbuf_errors": udp_errors,
        }  # fmt: skip
        args.json.write_text(json.dumps(figures, indent=2))
    ok = load.returncode == 0 and load.succeeded == plan.calls and not load.fallbacks
    return 0 if ok and reached == expected else 1


if __name__ == "__main__":
    sys.exit(main())
