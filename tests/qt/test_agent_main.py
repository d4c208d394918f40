"""``tandem-agent --auto-login`` as a process: logs in without typing, logs out on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)
REPO = Path(__file__).resolve().parents[2]


class FakeRest(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, str | None, bytes]] = []
    lock = threading.Lock()

    def _record(self) -> bytes:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.lock:
            self.seen.append((self.command, self.path, self.headers.get("Authorization"), body))
        return body

    def _json(self, status: int, payload: object) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self._record()
        if self.path == "/api/auth/login":
            user = {"id": 1, "username": "alice", "role": "agent", "dn": "4711"}
            self._json(200, {"token": "tok-main", "expires_at": time.time() + 3600, "user": user})
        elif self.path == "/api/auth/logout":
            self.send_response(204)
            self.end_headers()
        else:
            self._json(404, {"error": "not_found", "message": "no"})

    def do_GET(self) -> None:
        self._record()
        if self.path == "/api/agent/call":
            self._json(200, None)
        else:  # the event channel: this fake has none, the desktop keeps retrying
            self._json(404, {"error": "not_found", "message": "no"})

    def log_message(self, format: str, *args: object) -> None:
        pass


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_auto_login_then_sigterm_logs_out() -> None:
    FakeRest.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeRest)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agent_app.main",
            "--server",
            url,
            "--user",
            "alice",
            "--dn",
            "4711",
            "--password-stdin",
            "--auto-login",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=REPO,
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write(b"secret\n")
        proc.stdin.close()
        wait_for(lambda: any(p == "/api/agent/call" for _, p, _, _ in FakeRest.seen))
        login = next(s for s in FakeRest.seen if s[1] == "/api/auth/login")
        expected = {"username": "alice", "password": "secret", "dn": "4711", "client": "desktop"}
        assert json.loads(login[3]) == expected
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        server.shutdown()
        server.server_close()
    output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    if proc.stdout:
        proc.stdout.close()
    assert code == 0, output
    logout = [s for s in FakeRest.seen if s[1] == "/api/auth/logout"]
    assert len(logout) == 1 and logout[0][2] == "Bearer tok-main", output


def test_auto_login_without_password_is_a_usage_error() -> None:
    env = {k: v for k, v in os.environ.items() if k != "TANDEM_AGENT_PASSWORD"}
    env["PYTHONPATH"] = str(REPO)
    result = subprocess.run(
        [sys.executable, "-m", "agent_app.main", "--user", "a", "--dn", "1", "--auto-login"],
        capture_output=True,
        env=env,
        cwd=REPO,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2 and b"--auto-login needs" in result.stderr
