"""Voice load benchmark: concurrent two-stream G.711 SIPREC calls from SIPp, recorded by a real
Tandem server on this machine, every recording checked (lost packets, file length, audio span).

    /tmp/venv/bin/python benchmarks/voice_load/run.py --smoke              # 5 calls, < 1 min
    /tmp/venv/bin/python benchmarks/voice_load/run.py --ramp               # largest concurrency that passes
    /tmp/venv/bin/python benchmarks/voice_load/run.py --calls 3000 --rate 10 --duration 10

Each step starts a fresh server (own data directory, agents created in its database with
full-time DNs, screen sampling 0 %), runs one SIPp process as the load, waits until every
answered call's voice file is stored, then judges each call (``verify.py``). Figures printed:
calls attempted / answered / recorded / correct, lost packets, file length error, peak
concurrency, CPU and memory of the server and of SIPp. Needs root (SIPp's pcap play uses a raw
socket) and ``sipp`` (Debian sip-tester 3.6.1).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script from anywhere

from benchmarks.voice_load.agents import create_load_agents
from benchmarks.voice_load.collect import Recordings
from benchmarks.voice_load.media import PACKET_MS
from benchmarks.voice_load.processes import (
    Sampler,
    machine_busy_seconds,
    start_profiler,
    start_server,
    stop_process,
    stop_profiler,
    udp_receive_errors,
)
from benchmarks.voice_load.sipp_load import LoadPlan, peer_call_ms, prepare, run_load
from benchmarks.voice_load.verify import Expected, Summary, summarise
from server.settings import load_settings

DEFAULT_STEPS = "50,100,200,400,600,800,1000,1200,1600"
RTP_PORTS = (20000, 28999)  # below the kernel's ephemeral range: room for 2,250 calls
SCRATCH = Path("/dev/shm")  # tmpfs for SIPp's files while it runs (run_step)


@dataclass
class StepResult:
    label: str
    calls: int
    rate: float
    media_seconds: float
    passed: bool
    summary: dict[str, object]
    server_cpu_mean: float | None
    server_cpu_peak: float | None
    server_rss_max: float | None
    sipp_cpu_mean: float | None
    sipp_cpu_peak: float | None
    sipp_rss_max: float | None
    udp_rcvbuf_errors: int
    store_wait_seconds: float
    sipp_returncode: int
    fallbacks: int
    other_cpu_mean: float | None  # everything else on the machine during the SIPp run, % of one core
    load_average: float  # 1-minute load average when the SIPp run ended


def _fmt(value: float | None, unit: str) -> str:
    return "n/a" if value is None else f"{value:.0f}{unit}"


def run_step(label: str, plan: LoadPlan, agents: int, root: Path, args: argparse.Namespace) -> StepResult:
    plan = replace(plan, tail_ms=args.tail_ms, extra_args=tuple(args.sipp_arg), realtime=args.sipp_realtime)
    data_dir = root / label / "data"
    # SIPp's files (captures, logs, statistics) on tmpfs while it runs: its log writes must not
    # wait behind the server's fsyncs on the same disk (a slow write delays its main loop, and so
    # the 200 OK it reads and the BYE it sends). Copied next to the step's data afterwards.
    kept = root / label / "sipp"
    workdir = Path(tempfile.mkdtemp(prefix="tandem-sipp-", dir=SCRATCH)) if SCRATCH.is_dir() else kept
    print(
        f"\n== {label}: {plan.calls} calls at {plan.rate:g}/s, at most {plan.limit} at once, "
        f"{plan.media_ms / 1000:g} s of media per leg",
        flush=True,
    )
    dns = create_load_agents(data_dir, agents, voice_formats=args.voice_formats)
    prepare(workdir, plan, dns)
    server = start_server(data_dir, RTP_PORTS)
    server_sampler = Sampler(server.proc.pid).start()
    profiler = start_profiler(server.proc.pid, root / label / "server-profile.txt") if args.profile else None
    recordings = Recordings(load_settings(None, data_dir=data_dir))
    try:
        udp_before, busy_before = udp_receive_errors(), machine_busy_seconds()
        timeout = plan.calls / plan.rate + plan.media_ms / 1000 + 120
        load = run_load(plan, workdir, server.sip_port, timeout)
        udp_errors = udp_receive_errors() - udp_before
        machine_cpu = 100 * (machine_busy_seconds() - busy_before) / (load.ended - load.started)
        load_average = os.getloadavg()[0]
        store_wait = recordings.wait_stored(load.pid, timeout=max(120.0, plan.calls * 0.5))
        server_sampler.stop()
        if profiler is not None:
            stop_profiler(profiler)
        peer = peer_call_ms(workdir, load.pid)
        records = [replace(r, peer_call_ms=peer.get(r.call_id)) for r in recordings.records(load.pid)]
    finally:
        server_sampler.stop()
        if profiler is not None:
            stop_profiler(profiler)
        recordings.close()
        stop_process(server.proc)
        if workdir != kept:
            shutil.copytree(workdir, kept, dirs_exist_ok=True)
            shutil.rmtree(workdir, ignore_errors=True)
    load.workdir = kept
    summary, verdicts = summarise(
        records,
        Expected(plan.packets),
        max(load.created, plan.calls),
        load.succeeded,
        load.failed,
        load.fallbacks,
    )
    result = StepResult(
        label=label,
        calls=plan.calls,
        rate=plan.rate,
        media_seconds=plan.media_ms / 1000,
        passed=summary.passed and load.returncode == 0,
        summary=asdict(summary),
        server_cpu_mean=server_sampler.cpu_percent(load.started, load.ended),
        server_cpu_peak=server_sampler.peak_cpu_percent(),
        server_rss_max=server_sampler.max_rss(),
        sipp_cpu_mean=load.sampler.cpu_percent(load.started, load.ended),
        sipp_cpu_peak=load.sampler.peak_cpu_percent(),
        sipp_rss_max=load.sampler.max_rss(),
        udp_rcvbuf_errors=udp_errors,
        store_wait_seconds=store_wait,
        sipp_returncode=load.returncode,
        fallbacks=len(load.fallbacks),
        other_cpu_mean=None,
        load_average=load_average,
    )
    ours = [c for c in (result.server_cpu_mean, result.sipp_cpu_mean) if c is not None]
    result.other_cpu_mean = max(0.0, machine_cpu - sum(ours)) if len(ours) == 2 else None
    _print_step(result, summary, load.peak_concurrent, len(load.fallbacks))
    if summary.problems:
        bad = [v for v in verdicts if not v.ok][:5]
        for v in bad:
            print(f"    e.g. {v.call_id}: {'; '.join(v.problems)}")
    if load.returncode != 0 and (tail := load.errors_tail(1500)):
        print("  SIPp errors (tail):\n    " + tail.replace("\n", "\n    "))
    failed = {v.call_id: v.problems for v in verdicts if not v.ok}
    (root / label / "result.json").write_text(
        json.dumps({**asdict(result), "failed_calls": failed}, indent=2)
    )
    if not args.keep:
        shutil.rmtree(data_dir, ignore_errors=True)
    return result


def _print_step(r: StepResult, summary: Summary, sipp_peak: int, fallbacks: int) -> None:
    print(f"  {'PASS' if r.passed else 'FAIL'} ({r.label})")
    for line in summary.lines():
        print(f"  {line}")
    print(
        f"  SIPp: exit {r.sipp_returncode}, peak concurrent calls {sipp_peak}, "
        f"calls on the fallback media path {fallbacks}"
    )
    print(
        f"  server CPU mean {_fmt(r.server_cpu_mean, '%')}, peak 5 s {_fmt(r.server_cpu_peak, '%')}, "
        f"RSS max {_fmt(r.server_rss_max, ' MiB')}  (100% = one core)"
    )
    print(
        f"  SIPp   CPU mean {_fmt(r.sipp_cpu_mean, '%')}, peak 5 s {_fmt(r.sipp_cpu_peak, '%')}, "
        f"RSS max {_fmt(r.sipp_rss_max, ' MiB')}"
    )
    print(
        f"  other processes on the machine: CPU mean {_fmt(r.other_cpu_mean, '%')}, "
        f"load average {r.load_average:.2f} (2 cores)"
    )
    print(
        f"  UDP receive-buffer drops (machine-wide) {r.udp_rcvbuf_errors}; "
        f"voice files stored {r.store_wait_seconds:.0f} s after SIPp ended",
        flush=True,
    )


def concurrent_plan(n: int, ramp_seconds: float, plateau_seconds: float) -> LoadPlan:
    """N calls started over ``ramp_seconds``, each lasting so that all N overlap for the plateau."""
    rate = max(1.0, n / ramp_seconds)
    media_seconds = n / rate + plateau_seconds
    return LoadPlan(calls=n, rate=round(rate, 2), limit=n, packets=round(media_seconds * 1000 / PACKET_MS))


def ramp(args: argparse.Namespace, root: Path) -> list[StepResult]:
    """Step up until a step loses packets or calls (a hard failure); steps that only miss the
    file length tolerance are reported and the ramp goes on. Then bisect between the largest
    lossless step and the first hard failure ``--refine`` times."""
    results: list[StepResult] = []

    def step(n: int) -> StepResult:
        r = run_step(f"ramp-{n}", concurrent_plan(n, args.ramp_seconds, args.plateau), n, root, args)
        results.append(r)
        return r

    hard: int | None = None
    for n in (int(s) for s in args.steps.split(",")):
        if not _lossless(step(n)):
            hard = n
            break
    for _ in range(args.refine):
        low = max((r.calls for r in results if _lossless(r)), default=0)
        if hard is None or hard - low <= max(10, hard // 20):
            break
        n = (low + hard) // 2
        if not _lossless(step(n)):
            hard = n
    _print_ramp(results, hard)
    return results


def _lossless(r: StepResult) -> bool:
    s = r.summary
    return r.sipp_returncode == 0 and s["recorded"] == s["attempted"] and s["lost_packets"] == 0


def _print_ramp(results: list[StepResult], hard: int | None) -> None:
    print("\n== ramp result (tolerance ±20 ms)")
    print(
        f"  {'calls':>6} {'result':<9} {'lost':>6} {'in tol.':>8} {'len err max':>12} {'server CPU':>11} "
        f"{'SIPp CPU':>9} {'others':>7} {'RSS':>8}"
    )
    for r in sorted(results, key=lambda r: r.calls):
        s = r.summary
        verdict = "PASS" if r.passed else ("lossless" if _lossless(r) else "FAIL")
        errors = s["length_error_ms"]
        worst = f"{max(errors, key=abs):+.1f} ms" if isinstance(errors, (list, tuple)) else "n/a"
        print(
            f"  {r.calls:>6} {verdict:<9} {s['lost_packets']:>6} "
            f"{s['within_tolerance']:>4}/{s['attempted']:<4}"
            f"{worst:>12} {_fmt(r.server_cpu_peak, '%'):>11} {_fmt(r.sipp_cpu_peak, '%'):>9} "
            f"{_fmt(r.other_cpu_mean, '%'):>7} {_fmt(r.server_rss_max, ' MiB'):>8}"
        )
    passing = [r.calls for r in results if r.passed]
    lossless = [r.calls for r in results if _lossless(r)]
    print(
        f"  largest step passing (zero loss, every file within ±20 ms): {max(passing) if passing else 'none'}"
    )
    print(f"  largest step with zero loss and every call recorded: {max(lossless) if lossless else 'none'}")
    if hard is not None:
        first = next(r for r in results if r.calls == hard)
        problems = first.summary["problems"]
        why = ", ".join(f"{k} ({v})" for k, v in problems.items()) if isinstance(problems, dict) else ""
        print(f"  first step losing packets or calls: {hard} — {why or 'SIPp failed'}")
    print("  (CPU columns: peak 5 s, 100% = one core; others: mean CPU of other processes on the machine)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--smoke", action="store_true", help="5 calls, 3 s each")
    mode.add_argument("--ramp", action="store_true", help="step the concurrency up until a step fails")
    mode.add_argument("--calls", type=int, help="this many calls at --rate, each --duration long")
    parser.add_argument("--rate", type=float, default=10.0, help="calls per second (with --calls)")
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds of media per call (with --calls)"
    )
    parser.add_argument("--steps", default=DEFAULT_STEPS, help="concurrency steps for --ramp")
    parser.add_argument(
        "--ramp-seconds", type=float, default=20.0, help="--ramp: seconds to start a step's calls"
    )
    parser.add_argument(
        "--plateau", type=float, default=10.0, help="--ramp: seconds all of a step's calls overlap"
    )
    parser.add_argument(
        "--refine", type=int, default=2, help="--ramp: bisection steps after the first failure"
    )
    parser.add_argument(
        "--workdir", type=Path, help="where data and logs go (default: a new temporary directory)"
    )
    parser.add_argument("--keep", action="store_true", help="keep each step's server data (recordings)")
    parser.add_argument("--json", type=Path, help="also write all step results here")
    parser.add_argument(
        "--voice-formats",
        type=lambda v: [f for f in v.split(",") if f and f != "none"],
        help="encodings of each call besides the WAV: none, or e.g. mp3_16k_stereo (default: the server's)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the server (collapsed stacks per step)"
    )
    parser.add_argument(
        "--tail-ms", type=int, default=0, help="pause between the end of the media and the BYE"
    )
    parser.add_argument("--sipp-arg", action="append", default=[], help="one more SIPp option (repeat)")
    parser.add_argument(
        "--sipp-realtime",
        type=int,
        default=0,
        metavar="PRIORITY",
        help="run SIPp under SCHED_FIFO at this priority (chrt), so its media and BYE timing do "
        "not wait behind the server for a CPU (0: normal scheduling)",
    )
    args = parser.parse_args(argv)

    root = args.workdir or Path(tempfile.mkdtemp(prefix="tandem-voice-load-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"voice_load: work directory {root}; {time.strftime('%Y-%m-%d %H:%M:%S %Z')}", flush=True)
    if args.smoke:
        results = [run_step("smoke", LoadPlan(calls=5, rate=5, limit=5, packets=150), 5, root, args)]
    elif args.ramp:
        results = ramp(args, root)
    else:
        limit = max(20, int(3 * args.rate * args.duration))
        plan = LoadPlan(
            calls=args.calls, rate=args.rate, limit=limit, packets=round(args.duration * 1000 / PACKET_MS)
        )
        results = [run_step(f"calls-{args.calls}-rate-{args.rate:g}", plan, limit, root, args)]
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    if args.ramp:
        return 0  # a ramp ends in a failing step by design
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
