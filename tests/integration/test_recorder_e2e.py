"""The recorder service as a subprocess against an in-test fake Tandem server.

The fake server speaks the real protocol (tandem_protocol envelopes over /api/events, the real
enrolment and upload endpoints of docs/api.md) and runs its clock 1000 s ahead of this machine's, so
the recorder must stamp frames via its NTP-style offset for the assertions to hold.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response, WebSocket, WebSocketDisconnect
from test_recorder_capture import ColourChanger, start_xvfb

from tandem_protocol.events import Envelope, parse_envelope
from tests.ports import free_port

REPO = Path(__file__).resolve().parents[2]
OFFSET = 1000.0
TOKEN = "tok-recorder-1"
ENROL_CODE = "ABCDE-FGHJK-LMNPQ-RSTUV-WXYZ2"

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="needs Xvfb and POSIX signals"),
    pytest.mark.e2e,  # Xvfb and the recorder as a subprocess: outside the fast selection
]


def server_now() -> float:
    return time.time() + OFFSET


class FakeServer:
    def __init__(self) -> None:
        self.app = FastAPI()
        self.statuses: list[dict[str, Any]] = []
        self.uploads: list[tuple[str, dict[str, str], bytes]] = []
        self.pings = 0
        self.call: dict[str, Any] | None = None
        self._ws: WebSocket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._seq = 0
        self._cond = threading.Condition()
        self._routes()

    def _routes(self) -> None:
        app = self.app

        @app.post("/api/recorders/enroll")
        async def enroll(body: dict[str, Any]) -> Any:
            if body.get("code") != ENROL_CODE:
                return Response(status_code=401, content=b'{"error":"invalid_enrolment_code","message":"no"}')
            user = {"id": 1, "username": "ann", "role": "agent", "full_name": "Ann Agent"}
            return {"token": TOKEN, "expires_at": server_now() + 86400, "user": user}

        @app.put("/api/interactions/{iid}/screen")
        async def upload(iid: str, request: Request) -> Response:
            if request.headers.get("authorization") != f"Bearer {TOKEN}":
                return Response(status_code=401)
            body = await request.body()
            if hashlib.sha256(body).hexdigest() != request.headers.get("x-tandem-sha256"):
                return Response(status_code=400, content=b'{"error":"checksum_mismatch","message":"x"}')
            with self._cond:
                stored = next((u for u in self.uploads if u[0] == iid), None)
                if stored is not None:
                    sha = hashlib.sha256(stored[2]).hexdigest()
                    return Response(
                        status_code=409,
                        content=b'{"error":"already_uploaded","message":"x","sha256":"%s"}' % sha.encode(),
                    )
                self.uploads.append((iid, dict(request.headers), body))
                self._cond.notify_all()
            return Response(status_code=201, content=b'{"key":"k","size":%d}' % len(body))

        @app.websocket("/api/events")
        async def events(ws: WebSocket) -> None:
            if ws.headers.get("authorization") != f"Bearer {TOKEN}":
                await ws.close(code=1008)
                return
            await ws.accept()
            self._loop, self._ws = asyncio.get_running_loop(), ws
            await self._send(ws, "state", {"agent": {"id": 1, "username": "ann"}, "call": self.call})
            try:
                while True:
                    env = parse_envelope(await ws.receive_text())
                    if env.type == "time.ping":
                        t1 = server_now()
                        pong = {"t0": env.data["t0"], "t1": t1, "t2": server_now()}
                        await self._send(ws, "time.pong", pong)
                        with self._cond:
                            self.pings += 1
                            self._cond.notify_all()
                    elif env.type == "screen.status":
                        with self._cond:
                            self.statuses.append(env.data)
                            self._cond.notify_all()
            except WebSocketDisconnect:
                self._ws = None

    async def _send(self, ws: WebSocket, kind: str, data: dict[str, Any] | None) -> None:
        self._seq += 1
        await ws.send_text(Envelope(type=kind, data=data or {}, seq=self._seq, at=server_now()).to_json())

    def command(self, kind: str, iid: str, **extra: Any) -> float:
        at = server_now()
        assert self._loop is not None and self._ws is not None, "recorder not connected"
        data = {"interaction_id": iid, "at": at, **extra}
        asyncio.run_coroutine_threadsafe(self._send(self._ws, kind, data), self._loop).result(5)
        return at

    def wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        with self._cond:
            assert self._cond.wait_for(predicate, timeout), f"timed out waiting for {what}"

    def wait_status(self, iid: str, state: str, timeout: float = 5.0) -> dict[str, Any]:
        self.wait(
            lambda: any(s["interaction_id"] == iid and s["state"] == state for s in self.statuses),
            timeout,
            f"{state} ack for {iid}",
        )
        return next(s for s in self.statuses if s["interaction_id"] == iid and s["state"] == state)


@pytest.fixture
def fake() -> Iterator[tuple[FakeServer, str]]:
    server = FakeServer()
    port = free_port()
    uv = uvicorn.Server(uvicorn.Config(server.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        assert time.monotonic() < deadline, "fake server did not start"
        time.sleep(0.05)
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        thread.join(10)


@pytest.fixture
def display() -> Iterator[str]:
    proc, name = start_xvfb()
    try:
        yield name
    finally:
        proc.terminate()
        proc.wait(5)


def _cli(args: list[str], display: str, **kw: Any) -> subprocess.Popen[str]:
    env = {**os.environ, "DISPLAY": display, "PYTHONPATH": str(REPO)}
    env.pop("TANDEM_RECORDER_SERVER", None)
    return subprocess.Popen(
        [sys.executable, "-m", "recorder_service.main", *args],
        cwd=REPO,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        **kw,
    )


def _login(url: str, keyring: Path, display: str) -> None:
    """The recorder enrols with a one-time code from IT (no password login yields its token)."""
    proc = _cli(
        ["login", "--server", url, "--enroll-code-stdin", "--keyring-file", str(keyring)],
        display,
        stdin=subprocess.PIPE,
    )
    out, _ = proc.communicate(ENROL_CODE + "\n", timeout=30)
    assert proc.returncode == 0, out
    assert "Enrolled" in out and "Ann Agent" in out and TOKEN not in out
    # The opt-in plaintext keyring: base64, not encryption.
    assert base64.b64encode(TOKEN.encode()).decode() in keyring.read_text()


def _run(url: str, tmp: Path, display: str) -> subprocess.Popen[str]:
    return _cli(
        [
            "run",
            "--server",
            url,
            "--fps",
            "5",
            "--spool",
            str(tmp / "spool"),
            "--keyring-file",
            str(tmp / "kr.cfg"),
            "--log-level",
            "DEBUG",
        ],
        display,
    )


def _decoded_server_times(body: bytes, started_at: float, tmp: Path) -> list[float]:
    path = tmp / "got.mp4"
    path.write_bytes(body)
    with av.open(str(path)) as container:
        return [started_at + (f.pts or 0) / 1000 for f in container.decode(video=0)]


def _call(iid: str) -> dict[str, Any]:
    return {
        "interaction_id": iid,
        "call_id": "c1",
        "dn": "1001",
        "caller": "555",
        "callee": "1001",
        "phase": "active",
        "voice": "recording",
        "screen": "recording",
        "paused": False,
        "started_at": server_now(),
    }


def test_start_pause_resume_stop_upload(fake: tuple[FakeServer, str], display: str, tmp_path: Path) -> None:
    server, url = fake
    _login(url, tmp_path / "kr.cfg", display)
    proc = _run(url, tmp_path, display)
    try:
        with ColourChanger(display):
            server.wait(lambda: server.pings >= 1, 20, "first time.ping")
            time.sleep(0.3)
            start_at = server.command("screen.start", "int-1", fps=5)
            ack = server.wait_status("int-1", "recording")
            assert abs(ack["at"] - server_now()) < 2  # acks are in server time
            time.sleep(2.0)
            pause_at = server.command("screen.pause", "int-1")
            server.wait_status("int-1", "paused")
            server.command("screen.pause", "int-1")  # duplicate: acked again
            server.wait(lambda: sum(s["state"] == "paused" for s in server.statuses) >= 2, 5, "2nd ack")
            time.sleep(2.0)
            resume_at = server.command("screen.resume", "int-1")
            time.sleep(0.2)
            server.wait(lambda: sum(s["state"] == "recording" for s in server.statuses) >= 2, 5, "resume ack")
            time.sleep(2.0)
            stop_at = server.command("screen.stop", "int-1")
            server.wait_status("int-1", "stopped", timeout=15)
        server.wait(lambda: len(server.uploads) == 1, 20, "upload")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert TOKEN not in out  # the token is never logged
    iid, headers, body = server.uploads[0]
    assert iid == "int-1" and headers["content-type"] == "video/mp4"
    assert headers["x-tandem-sha256"] == hashlib.sha256(body).hexdigest()
    started_at = float(headers["x-tandem-started-at"])
    assert start_at - 0.5 <= started_at <= start_at + 1.0  # server clock, not the local one
    times = _decoded_server_times(body, started_at, tmp_path)
    assert times == sorted(times)
    assert not [t for t in times if pause_at <= t < resume_at], (pause_at, resume_at, times)
    assert len([t for t in times if t < pause_at]) >= 6 and len([t for t in times if t >= resume_at]) >= 6
    assert times[-1] == pytest.approx(stop_at, abs=0.01)


def test_killed_mid_capture_partial_file_uploaded_on_restart(
    fake: tuple[FakeServer, str], display: str, tmp_path: Path
) -> None:
    server, url = fake
    _login(url, tmp_path / "kr.cfg", display)
    proc = _run(url, tmp_path, display)
    try:
        with ColourChanger(display):
            server.wait(lambda: server.pings >= 1, 20, "first time.ping")
            time.sleep(0.3)
            server.call = _call("int-2")
            start_at = server.command("screen.start", "int-2", fps=5)
            server.wait_status("int-2", "recording")
            time.sleep(4.5)  # > one 2 s fragment plus the 1 s hold-back
    finally:
        proc.kill()
        proc.communicate(timeout=10)
    manifest = (tmp_path / "spool" / "int-2.json").read_text()
    assert '"capturing"' in manifest and not server.uploads
    server.statuses.clear()
    proc = _run(url, tmp_path, display)  # state still says int-2 is recording
    try:
        server.wait(lambda: len(server.uploads) == 1, 20, "upload of the partial file")
        server.wait_status("int-2", "stopped")  # not restarted: one upload per interaction
    except AssertionError as exc:
        proc.kill()
        raise AssertionError(f"{exc}\nrecorder output:\n{proc.communicate(timeout=10)[0]}") from exc
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    _, headers, body = server.uploads[0]
    started_at = float(headers["x-tandem-started-at"])
    assert abs(started_at - start_at) < 1.0
    times = _decoded_server_times(body, started_at, tmp_path)
    assert len(times) >= 8 and times == sorted(times)
    assert times[-1] - times[0] >= 1.5
