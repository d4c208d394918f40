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
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
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


@dataclass(frozen=True)
class Stored:
    """A segment the fake server received whole, checksum verified."""

    interaction_id: str
    meta: dict[str, str]
    body: bytes

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.interaction_id, self.meta["run"], int(self.meta["seq"]))

    @property
    def started_at(self) -> float:
        return float(self.meta["started_at"])


class FakeServer:
    def __init__(self) -> None:
        self.app = FastAPI()
        self.statuses: list[dict[str, Any]] = []
        self.uploads: list[Stored] = []
        self._partial: dict[str, tuple[str, dict[str, str], int, bytearray]] = {}
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

        @app.post("/api/interactions/{iid}/screen/segments")
        async def create(iid: str, request: Request) -> Response:
            if request.headers.get("authorization") != f"Bearer {TOKEN}":
                return Response(status_code=401)
            meta = {}
            for pair in (request.headers.get("upload-metadata") or "").split(","):
                if pair.strip():
                    key, _, value = pair.strip().partition(" ")
                    meta[key] = base64.b64decode(value).decode()
            with self._cond:
                stored = next(
                    (u for u in self.uploads if u.key == (iid, meta["run"], int(meta["seq"]))), None
                )
                if stored is not None:
                    sha = hashlib.sha256(stored.body).hexdigest()
                    return JSONResponse({"error": "already_uploaded", "message": "x", "sha256": sha}, 409)
                uid = uuid.uuid4().hex
                self._partial[uid] = (iid, meta, int(request.headers["upload-length"]), bytearray())
            return Response(
                status_code=201, headers={"Location": f"/api/uploads/{uid}", "Upload-Offset": "0"}
            )

        @app.head("/api/uploads/{uid}")
        async def head(uid: str) -> Response:
            if uid not in self._partial:
                return Response(status_code=404)
            _, _, length, data = self._partial[uid]
            return Response(
                status_code=200, headers={"Upload-Offset": str(len(data)), "Upload-Length": str(length)}
            )

        @app.patch("/api/uploads/{uid}")
        async def patch(uid: str, request: Request) -> Response:
            if uid not in self._partial:
                return Response(status_code=404)
            iid, meta, length, data = self._partial[uid]
            if int(request.headers["upload-offset"]) != len(data):
                return JSONResponse({"error": "offset_mismatch"}, 409, {"Upload-Offset": str(len(data))})
            data += await request.body()
            headers = {"Upload-Offset": str(len(data))}
            if len(data) == length:
                sha = hashlib.sha256(data).hexdigest()
                if sha != meta["sha256"]:
                    return JSONResponse({"error": "checksum_mismatch", "message": "x"}, 422)
                with self._cond:
                    del self._partial[uid]
                    self.uploads.append(Stored(iid, meta, bytes(data)))
                    self._cond.notify_all()
                headers["X-Tandem-Sha256"] = sha
            return Response(status_code=204, headers=headers)

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


def _frame_times(stored: Stored, tmp: Path) -> list[float]:
    path = tmp / f"{stored.meta['run']}-{stored.meta['seq']}.mp4"
    path.write_bytes(stored.body)
    with av.open(str(path)) as container:
        return [stored.started_at + (f.pts or 0) / 1000 for f in container.decode(video=0)]


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


POLICY = {"fps": 5, "segment_seconds": 5}


def test_segments_uploaded_during_the_call_and_a_late_pause_cut(
    fake: tuple[FakeServer, str], display: str, tmp_path: Path
) -> None:
    """Segments go up while the call lasts; a pause whose command comes 2 s after its time leaves
    no frame inside it in anything uploaded, and the ack says what was cut."""
    server, url = fake
    _login(url, tmp_path / "kr.cfg", display)
    proc = _run(url, tmp_path, display)
    try:
        with ColourChanger(display):
            server.wait(lambda: server.pings >= 1, 20, "first time.ping")
            time.sleep(0.3)
            start_at = server.command("screen.start", "int-1", policy=POLICY)
            ack = server.wait_status("int-1", "recording")
            assert abs(ack["at"] - server_now()) < 2  # acks are in server time
            # A 5-s segment is finished, held 5 s for a late pause, then uploaded mid-call.
            server.wait(lambda: len(server.uploads) >= 1, 30, "a segment uploaded during the call")
            pause_at = server_now() - 2.0  # delivered 2 s late on purpose
            server.command("screen.pause", "int-1", at=pause_at)
            paused = server.wait_status("int-1", "paused")
            assert paused["detail"].startswith("cut ") and "after the pause" in paused["detail"], paused
            time.sleep(1.0)
            resume_at = server.command("screen.resume", "int-1")
            server.wait(lambda: sum(s["state"] == "recording" for s in server.statuses) >= 2, 5, "resume ack")
            time.sleep(2.0)
            stop_at = server.command("screen.stop", "int-1")
            server.wait_status("int-1", "stopped", timeout=15)
            server.wait(
                lambda: any(u.meta.get("final") in ("1", "true") for u in server.uploads), 30, "last segment"
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert TOKEN not in out  # the token is never logged
    uploads = sorted(server.uploads, key=lambda u: int(u.meta["seq"]))
    assert len({u.meta["run"] for u in uploads}) == 1 and len(uploads) >= 3
    # Sequence numbers rise; one may be missing: a segment that lay wholly inside the pause.
    assert len({int(u.meta["seq"]) for u in uploads}) == len(uploads)
    assert start_at - 0.5 <= uploads[0].started_at <= start_at + 1.0  # server clock, not the local one
    times = [t for u in uploads for t in _frame_times(u, tmp_path)]
    assert times == sorted(times)
    assert not [t for t in times if pause_at <= t < resume_at], (pause_at, resume_at)
    # (xsetroot repaints about every 0.2 s; fewer frames on a loaded machine: unchanged ones are skipped)
    assert len([t for t in times if t < pause_at]) >= 8 and len([t for t in times if t >= resume_at]) >= 3
    assert times[-1] == pytest.approx(stop_at, abs=0.01)


def test_killed_mid_call_loses_at_most_2_s_and_the_call_goes_on_in_a_new_run(
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
            server.command("screen.start", "int-2", policy=POLICY)
            server.wait_status("int-2", "recording")
            time.sleep(3.5)
            killed_at = server_now()
            proc.kill()
            proc.communicate(timeout=10)
            assert not server.uploads
            server.statuses.clear()
            proc = _run(url, tmp_path, display)  # state says int-2 is still recording
            server.wait_status("int-2", "recording", timeout=30)  # capture resumed at once
            restarted_at = server_now()
            time.sleep(2.0)
            server.call = None
            stop_at = server.command("screen.stop", "int-2")
            server.wait_status("int-2", "stopped", timeout=15)
            server.wait(
                lambda: (
                    len({u.meta["run"] for u in server.uploads}) == 2
                    and all(
                        any(u.meta["final"] in ("1", "true") for u in server.uploads if u.meta["run"] == run)
                        for run in {u.meta["run"] for u in server.uploads}
                    )
                ),
                30,
                "both runs' segments, each ending with a final one",
            )
    except AssertionError as exc:
        proc.kill()
        raise AssertionError(f"{exc}\nrecorder output:\n{proc.communicate(timeout=10)[0]}") from exc
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    runs = sorted({u.meta["run"] for u in server.uploads})  # run ids sort by start time
    first = [t for u in server.uploads if u.meta["run"] == runs[0] for t in _frame_times(u, tmp_path)]
    second = [t for u in server.uploads if u.meta["run"] == runs[1] for t in _frame_times(u, tmp_path)]
    print(f"kill -9 lost {killed_at - max(first):.2f} s")
    assert killed_at - max(first) <= 2.0, f"lost {killed_at - max(first):.2f} s"  # kill -9 loses ≤ 2 s
    assert len(first) >= 5 and first == sorted(first)
    assert killed_at < min(second) <= restarted_at + 1.0 and second == sorted(second)
    assert max(second) == pytest.approx(stop_at, abs=0.01)


def test_spool_quota_stops_capture_with_an_alarm_and_resumes_nothing_corrupted(
    fake: tuple[FakeServer, str], display: str, tmp_path: Path
) -> None:
    server, url = fake
    _login(url, tmp_path / "kr.cfg", display)
    proc = _run(url, tmp_path, display)
    ballast = tmp_path / "spool" / "ballast.bin"
    try:
        with ColourChanger(display):
            server.wait(lambda: server.pings >= 1, 20, "first time.ping")
            server.command("screen.start", "int-3", policy={**POLICY, "spool_max_mb": 64})
            server.wait_status("int-3", "recording")
            time.sleep(1.5)
            with ballast.open("wb") as fh:  # something else fills the spool past its maximum
                fh.truncate(65 * 1024 * 1024)
            alarm = server.wait_status("int-3", "failed", timeout=15)
            assert alarm["detail"].startswith("spool_full:") and "64 MB maximum" in alarm["detail"], alarm
            time.sleep(1.5)
            ballast.unlink()
            server.wait(
                lambda: any(s["state"] == "recording" and "resumed" in s["detail"] for s in server.statuses),
                15,
                "capture resumed",
            )
            resumed = next(s for s in server.statuses if "resumed" in s["detail"])
            time.sleep(1.5)
            server.command("screen.stop", "int-3")
            server.wait_status("int-3", "stopped", timeout=15)
            server.wait(lambda: any(u.meta.get("final") == "1" for u in server.uploads), 30, "last segment")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert "spool_full" in out  # logged as well
    uploads = sorted(server.uploads, key=lambda u: int(u.meta["seq"]))
    assert len(uploads) == 2  # the segment the quota closed, and the one after space returned
    times = [_frame_times(u, tmp_path) for u in uploads]  # every segment decodes: nothing corrupted
    assert all(times) and times[0][-1] < alarm["at"] + 0.1 and times[1][0] >= resumed["at"] - 1.5
    assert times[1][0] - times[0][-1] >= 1.0  # no capture while the spool was full: a gap
