"""Processes for the end-to-end tests: the server, an Xvfb screen with changing content, the
recorder service. Each is a real subprocess on free loopback ports, stopped at teardown."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from tests.ports import ServerPorts, claim_block, free_port, server_ports

__all__ = ["free_port"]  # re-exported for the e2e helpers: one source of ports for every test

ROOT = Path(__file__).resolve().parents[2]


def wait_until(
    predicate: Callable[[], Any],
    timeout: float,
    what: str,
    step: float = 0.1,
    pump: Callable[[], None] | None = None,
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pump is not None:
            pump()
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


# How long a child process (the server, Xvfb, baresip, …) may take to become ready. Generous: on a
# loaded 2-core CI machine the server's migrations and imports took more than the 30 s once allowed
# (~1 run in 17); a process that has exited is reported at once, not at the deadline.
STARTUP_SECONDS = 120.0


def wait_started(
    proc: subprocess.Popen[bytes],
    ready: Callable[[], Any],
    what: str,
    output: Callable[[], str],
    timeout: float = STARTUP_SECONDS,
    step: float = 0.1,
) -> Any:
    """Poll ``ready`` until it answers truthy (returned), failing fast if ``proc`` exits first.

    Either failure names the process's exit code or that it is still running, and the tail of
    ``output`` (its log), so a CI failure says why without a rerun."""

    deadline = time.monotonic() + timeout
    while True:
        code = proc.poll()
        if code is not None:
            raise AssertionError(
                f"{what}: the process exited with code {code} before it was ready; its output:\n{output()}"
            )
        value = ready()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout:g} s waiting for {what} (process {proc.pid} still running); "
                f"its output:\n{output()}"
            )
        time.sleep(step)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL if it does not go; never leaves the process behind."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@dataclass
class ServerProcess:
    url: str
    sip_port: int
    data_dir: Path
    creds: dict[str, dict[str, str]]
    proc: subprocess.Popen[bytes]
    log_path: Path

    def token(self, username: str, **extra: Any) -> str:
        r = httpx.post(
            f"{self.url}/api/auth/login",
            json={"username": username, "password": self.creds[username]["password"], **extra},
        )
        r.raise_for_status()
        return str(r.json()["token"])

    def client(self, username: str, **extra: Any) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.token(username, **extra)}"},
            timeout=30,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


def server_env(data_dir: Path, ports: ServerPorts, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_SERVER_")}
    env.update(
        {
            "TANDEM_SERVER_DATA_DIR": str(data_dir),
            "TANDEM_SERVER_HTTP_PORT": str(ports.http),
            "TANDEM_SERVER_SIP_PORT": str(ports.sip),
            "TANDEM_SERVER_RTP_PORT_MIN": str(ports.rtp[0]),
            "TANDEM_SERVER_RTP_PORT_MAX": str(ports.rtp[1]),
            # A SIGTERM from stop_process must end within its 10 s before SIGKILL, even with a
            # call still up (the server's default drain is 30 s); tests of draining set their own.
            "TANDEM_SERVER_DRAIN_SECONDS": "5",
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update(extra)
    return env


def tandem_server(cmd: str) -> list[str]:
    return [sys.executable, "-m", "server.cli", *cmd.split()]


@contextlib.contextmanager
def run_server(
    data_dir: Path,
    extra_users: tuple[tuple[str, str, str], ...] | list[tuple[str, str, str]] = (),
    **settings: str,
) -> Iterator[ServerProcess]:
    """Start ``tandem-server run``; demo users plus ``extra_users`` (username, role, team).

    Its ports are one block of ``tests.ports`` held until it has stopped: HTTP, SIP (UDP and TCP),
    TLS (SIP + 1, where configured) and RTP can meet neither each other nor another test's."""
    block = claim_block()
    try:
        with _run_server(data_dir, extra_users, server_ports(block), **settings) as server:
            yield server
    finally:
        block.release()


@contextlib.contextmanager
def _run_server(
    data_dir: Path,
    extra_users: tuple[tuple[str, str, str], ...] | list[tuple[str, str, str]],
    ports: ServerPorts,
    **settings: str,
) -> Iterator[ServerProcess]:
    env = server_env(data_dir, ports, **settings)
    out = subprocess.run(
        tandem_server("demo-setup --json"), env=env, cwd=ROOT, capture_output=True, check=True
    )
    creds: dict[str, dict[str, str]] = json.loads(out.stdout)
    for username, role, team in extra_users:
        password = f"{username}-password-1"
        subprocess.run(
            tandem_server(f"create-user --username {username} --role {role} --team {team} --password-stdin"),
            env=env,
            cwd=ROOT,
            input=f"{password}\n".encode(),
            check=True,
            capture_output=True,
        )
        creds[username] = {"password": password, "role": role}
    log_path = data_dir / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(tandem_server("run"), env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    server = ServerProcess(f"http://127.0.0.1:{ports.http}", ports.sip, data_dir, creds, proc, log_path)
    try:
        wait_started(proc, lambda: _healthy(server), "server health", server.log)
        yield server
    finally:
        stop_process(proc)


def _healthy(server: ServerProcess) -> bool:
    try:
        return httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def file_tail(file: IO[bytes], size: int = 3000) -> str:
    """The last ``size`` bytes written to ``file`` (a child's stderr: a file, never a pipe that
    could fill and block it), for a failure message. Read with pread: the child shares the file's
    offset, and moving it would make the child write over its own output."""
    end = os.fstat(file.fileno()).st_size
    start = max(0, end - size)
    return os.pread(file.fileno(), end - start, start).decode(errors="replace")


@contextlib.contextmanager
def xvfb_with_changing_content(width: int = 800, height: int = 600) -> Iterator[str]:
    """An Xvfb display whose root window changes colour several times a second."""
    if shutil.which("Xvfb") is None or shutil.which("xsetroot") is None:
        raise AssertionError("Xvfb and xsetroot are required (Debian: xvfb, x11-xserver-utils)")
    number = next(
        n
        for n in range(120, 400)
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists()
    )
    display = f":{number}"
    errors = tempfile.TemporaryFile()
    xvfb = subprocess.Popen(
        ["Xvfb", display, "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp", "-noreset"],
        stdout=subprocess.DEVNULL,
        stderr=errors,
    )
    stop = threading.Event()
    env = {**os.environ, "DISPLAY": display}

    def paint() -> None:
        colours = ["#c0392b", "#27ae60", "#2980b9", "#f39c12", "#8e44ad", "#16a085"]
        i = 0
        while not stop.is_set():
            subprocess.run(
                ["xsetroot", "-solid", colours[i % len(colours)]],
                env=env,
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            i += 1
            stop.wait(0.25)

    try:
        socket = Path(f"/tmp/.X11-unix/X{number}")
        wait_started(xvfb, socket.exists, "Xvfb socket", lambda: file_tail(errors))
        painter = threading.Thread(target=paint, daemon=True)
        painter.start()
        yield display
    finally:
        stop.set()
        stop_process(xvfb)
        errors.close()


@contextlib.contextmanager
def run_recorder(server: ServerProcess, username: str, display: str, workdir: Path) -> Iterator[Path]:
    """Enrol the recorder (a one-time code from the admin API; token in a file keyring) and run it
    on ``display``. Yields its log path."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    env.update(
        {
            "DISPLAY": display,
            "PYTHONPATH": str(ROOT),
            "TANDEM_RECORDER_KEYRING_FILE": str(workdir / "keyring.cfg"),
        }
    )
    cmd = [sys.executable, "-m", "recorder_service.main"]
    with server.client("admin") as admin:
        r = admin.post("/api/admin/recorders/enrolments", json={"username": username})
        r.raise_for_status()
        code = str(r.json()["code"])
    subprocess.run(
        [*cmd, "login", "--server", server.url, "--enroll-code-stdin"],
        env=env,
        input=(code + "\n").encode(),
        check=True,
        capture_output=True,
    )
    log_path = workdir / "recorder.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [*cmd, "run", "--server", server.url, "--spool", str(workdir / "spool")],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield log_path
    finally:
        stop_process(proc)
