"""The processes of a run: the Tandem server, SIPp, and a sampler of their CPU and memory.

Each process is started here and stopped by its own pid; CPU and memory come from
``/proc/<pid>/stat`` and ``/proc/<pid>/status``: all threads of the process and its live child
processes (the server encodes voice formats in a child process).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
TICKS = os.sysconf("SC_CLK_TCK")


class ProcessError(Exception):
    """A process of the run did not start or stop as it should."""


def free_port(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def family(pid: int) -> list[int]:
    """``pid`` and its live descendants (the server's encoder process, SIPp has none)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out


def cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user + system) of ``pid`` and its live descendants."""
    own = _stat(pid)
    if own is None:
        return None
    total = 0.0
    for member in family(pid):
        fields = own if member == pid else _stat(member)
        if fields is not None:
            total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def rss_mib(pid: int) -> float | None:
    """Resident memory of ``pid`` and its live descendants, MiB."""
    total, found = 0.0, False
    for member in family(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
                    found = True
        except OSError:
            continue
    return total if found else None


def machine_busy_seconds() -> float:
    """CPU seconds spent not idle since boot, all cores (for what else ran beside the benchmark)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / TICKS


def udp_receive_errors() -> int:
    """Datagrams the kernel dropped, machine-wide, because a socket's buffer was full."""
    lines = [
        line.split() for line in Path("/proc/net/snmp").read_text().splitlines() if line.startswith("Udp:")
    ]
    header, values = lines[0], lines[1]
    return int(values[header.index("RcvbufErrors")])


@dataclass
class Sample:
    at: float
    cpu: float  # cumulative CPU seconds
    rss: float  # MiB


@dataclass
class Sampler:
    """Samples a process once a second in a thread until stopped."""

    pid: int
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            cpu, rss = cpu_seconds(self.pid), rss_mib(self.pid)
            if cpu is not None and rss is not None:
                self.samples.append(Sample(time.monotonic(), cpu, rss))
            self._stop.wait(1.0)

    def cpu_percent(self, start: float, end: float) -> float | None:
        """Mean CPU % (100 = one core) between two monotonic times."""
        inside = [s for s in self.samples if start <= s.at <= end]
        if len(inside) < 2:
            return None
        first, last = inside[0], inside[-1]
        return 100.0 * (last.cpu - first.cpu) / (last.at - first.at)

    def peak_cpu_percent(self, window: float = 5.0) -> float | None:
        best = None
        for i, s in enumerate(self.samples):
            later = [t for t in self.samples[i:] if t.at - s.at >= window]
            if later:
                value = 100.0 * (later[0].cpu - s.cpu) / (later[0].at - s.at)
                best = value if best is None or value > best else best
        return best

    def max_rss(self) -> float | None:
        return max((s.rss for s in self.samples), default=None)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def start_profiler(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling ``pid`` and its children (the RTP workers; each thread while not idle) into
    collapsed stacks at ``out``."""
    py_spy = Path(sys.executable).with_name("py-spy")
    if not py_spy.exists():
        raise ProcessError(f"--profile needs py-spy next to {sys.executable} (pip install py-spy)")
    return subprocess.Popen(
        [str(py_spy), "record", "-p", str(pid), "-o", str(out), "--format", "raw", "-r", "50",
         "--threads", "--nonblocking", "--subprocesses"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def stop_profiler(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    sip_port: int
    http_url: str
    log_path: Path

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


def server_env(data_dir: Path, http_port: int, sip_port: int, rtp_ports: tuple[int, int]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_SERVER_")}
    env.update(
        {
            "TANDEM_SERVER_DATA_DIR": str(data_dir),
            "TANDEM_SERVER_HTTP_PORT": str(http_port),
            "TANDEM_SERVER_SIP_PORT": str(sip_port),
            "TANDEM_SERVER_RTP_PORT_MIN": str(rtp_ports[0]),
            "TANDEM_SERVER_RTP_PORT_MAX": str(rtp_ports[1]),
            # Load comes from one host (SIPp), far above the default per-source dialog cap.
            "TANDEM_SERVER_SIP_MAX_DIALOGS_PER_SOURCE": "1000000",
            "TANDEM_SERVER_SCREEN_PERCENTAGE": "0",  # voice only: no recorder in this benchmark
            "TANDEM_SERVER_ACW_LIMIT_SECONDS": "1",  # an agent's DN is free again soon after BYE
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


def start_server(data_dir: Path, rtp_ports: tuple[int, int], timeout: float = 60.0) -> Server:
    http_port, sip_port = free_port(), free_port(socket.SOCK_DGRAM)
    env = server_env(data_dir, http_port, sip_port, rtp_ports)
    log_path = data_dir / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "run"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(proc, sip_port, f"http://127.0.0.1:{http_port}", log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ProcessError(f"server exited early:\n{server.log_tail()}")
        try:
            if httpx.get(f"{server.http_url}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop_process(proc)
    raise ProcessError(f"server not healthy after {timeout:g} s:\n{server.log_tail()}")
