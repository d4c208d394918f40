"""One SIPp process as the load: ``siprec_load.xml`` at a call rate, with a concurrency limit
and a call count, both legs' RTP from the same process. Its per-second statistics (-trace_stat)
give the calls created, succeeded and failed, and the peak concurrency SIPp saw."""

from __future__ import annotations

import csv
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.voice_load.media import PACKET_MS, write_leg_media
from benchmarks.voice_load.processes import ProcessError, Sampler, free_port, stop_process

SCENARIO = Path(__file__).resolve().parent / "siprec_load.xml"
MEDIA_IP = "127.0.0.2"  # only SIPp's media uses it: its raw pcap sockets get no copies of other UDP


@dataclass(frozen=True, slots=True)
class LoadPlan:
    calls: int
    rate: float  # new calls per second
    limit: int  # at most this many calls at once
    packets: int  # per stream; the call lasts packets × 20 ms after the answer
    tail_ms: int = 0  # extra pause between the end of the media and the BYE
    extra_args: tuple[str, ...] = ()  # more SIPp options
    realtime: int = 0  # SCHED_FIFO priority for SIPp and its media threads (0: the normal scheduler)

    @property
    def media_ms(self) -> int:
        return self.packets * PACKET_MS


@dataclass(slots=True)
class LoadResult:
    pid: int
    returncode: int
    created: int
    succeeded: int
    failed: int
    peak_concurrent: int
    fallbacks: frozenset[str]  # Call-IDs whose answer ports were too far apart for a pair capture
    started: float  # monotonic
    ended: float
    sampler: Sampler
    workdir: Path

    def errors_tail(self, chars: int = 3000) -> str:
        path = self.workdir / "sipp_errors.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def _media_port() -> int:
    """An even port on MEDIA_IP free together with port + 2 (rtp_stream and pcap source)."""
    for _ in range(200):
        port = free_port(socket.SOCK_DGRAM, MEDIA_IP) & ~1
        try:
            with (
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a,
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b,
            ):
                a.bind((MEDIA_IP, port))
                b.bind((MEDIA_IP, port + 2))
            return port
        except OSError:
            continue
    raise ProcessError(f"no free media port pair on {MEDIA_IP}")


def sipp_command(plan: LoadPlan, workdir: Path, server_port: int) -> list[str]:
    # Real-time priority: SIPp is the reference clock of the media and of the BYE, and on the
    # server's two cores its threads otherwise wait behind the server's for a CPU (ms each).
    prefix = ["chrt", "--fifo", str(plan.realtime)] if plan.realtime > 0 else []
    return [
        *prefix,
        "sipp",
        f"127.0.0.1:{server_port}",
        "-sf", str(workdir / SCENARIO.name),
        "-inf", str(workdir / "dns.csv"),
        "-t", "u1",
        "-i", "127.0.0.1",
        "-p", str(free_port(socket.SOCK_DGRAM)),
        "-mi", MEDIA_IP,
        "-mp", str(_media_port()),
        "-r", f"{plan.rate:g}",
        "-rp", "1000",
        "-l", str(plan.limit),
        "-m", str(plan.calls),
        "-d", str(plan.media_ms + plan.tail_ms),
        "-buff_size", str(4 * 1024 * 1024),
        "-rtp_buffsize", str(4 * 1024 * 1024),
        "-nostdin",
        "-trace_err", "-error_file", str(workdir / "sipp_errors.log"),
        "-trace_stat", "-stf", str(workdir / "sipp_stats.csv"), "-fd", "1",
        "-trace_screen", "-screen_file", str(workdir / "sipp_screen.log"),
        "-trace_logs", "-log_file", str(workdir / "sipp_logs.log"),
        "-trace_shortmsg",  # each SIP message with its µs time: peer_call_ms
        *plan.extra_args,
    ]  # fmt: skip


def prepare(workdir: Path, plan: LoadPlan, dns: list[str]) -> None:
    """The scenario, its audio (next to it, where SIPp looks) and the DNs, in ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copy(SCENARIO, workdir / SCENARIO.name)
    write_leg_media(workdir, plan.packets)
    (workdir / "dns.csv").write_text("SEQUENTIAL\n" + "".join(f"{dn};\n" for dn in dns), encoding="ascii")


def read_stats(path: Path) -> tuple[int, int, int, int]:
    """(calls created, succeeded, failed, peak concurrent) from SIPp's -trace_stat CSV."""
    if not path.exists():
        return 0, 0, 0, 0
    with open(path, newline="", encoding="latin-1") as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))
    if not rows:
        return 0, 0, 0, 0
    last = rows[-1]

    def number(row: dict[str, str], key: str) -> int:
        try:
            return int(row.get(key) or 0)
        except ValueError:
            return 0

    peak = max(number(r, "CurrentCall") for r in rows)
    return (
        number(last, "TotalCallCreated"),
        number(last, "SuccessfulCall(C)"),
        number(last, "FailedCall(C)"),
        peak,
    )


def run_load(plan: LoadPlan, workdir: Path, server_port: int, timeout: float) -> LoadResult:
    if shutil.which("sipp") is None:
        raise ProcessError("sipp is required (Debian: sip-tester)")
    command = sipp_command(plan, workdir, server_port)
    (workdir / "sipp_command.txt").write_text(" ".join(command) + "\n")
    with open(workdir / "sipp_stdout.log", "wb") as out:
        proc = subprocess.Popen(
            command, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    sampler = Sampler(proc.pid).start()
    started = time.monotonic()
    try:
        returncode = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        stop_process(proc)
        returncode = -1
    finally:
        sampler.stop()
    ended = time.monotonic()
    created, succeeded, failed, peak = read_stats(workdir / "sipp_stats.csv")
    logs = workdir / "sipp_logs.log"
    fallbacks = frozenset(
        line.split()[1]
        for line in (logs.read_text(errors="replace").splitlines() if logs.exists() else [])
        if line.startswith("fallback ") and len(line.split()) > 1
    )
    return LoadResult(
        proc.pid, returncode, created, succeeded, failed, peak, fallbacks, started, ended, sampler, workdir
    )


def peer_call_ms(workdir: Path, sipp_pid: int) -> dict[str, float]:
    """Call-ID → the call as SIPp timed it, ms: its 200 OK to the INVITE received → its first
    BYE sent, from ``-trace_shortmsg`` (tab-separated: date, time, epoch seconds, S/R, Call-ID,
    CSeq, first line). Calls missing either are left out."""
    path = workdir / f"{SCENARIO.stem}_{sipp_pid}_shortmessages.log"
    if not path.exists():
        return {}
    answered: dict[str, float] = {}
    byes: dict[str, float] = {}
    with open(path, encoding="latin-1") as fh:
        for line in fh:
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 7:
                continue
            try:
                at = float(fields[2])
            except ValueError:
                continue
            direction, call_id, cseq, first = fields[3], fields[4], fields[5], fields[6]
            if direction == "R" and cseq.endswith(" INVITE") and first.startswith("SIP/2.0 200"):
                answered.setdefault(call_id, at)
            elif direction == "S" and cseq.endswith(" BYE") and first.startswith("BYE "):
                byes.setdefault(call_id, at)
    return {cid: 1000.0 * (byes[cid] - at) for cid, at in answered.items() if cid in byes}
