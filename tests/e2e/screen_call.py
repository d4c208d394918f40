"""A real call with a real screen recording, for the screen acceptance test and the
Done → playable benchmark: the server (``harness.run_server``), an Xvfb screen showing the
server-time pattern (``time_pattern``), the recorder service enrolled and running through an
``EventDelayProxy``, agent1 logged in through the API with its desktop event channel (no
desktop), and a SIPp call to its DN with a REST pause, ACW and Done — then the stored segments and
the muxed file read back frame by frame.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import av
import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from server.media.segment_join import muxed_name
from tests.e2e.harness import (
    ROOT,
    ServerProcess,
    file_tail,
    run_recorder,
    run_server,
    stop_process,
    wait_started,
    wait_until,
)
from tests.e2e.time_pattern import pattern_window, read_frame
from tests.e2e.ws_delay_proxy import EventDelayProxy, Held
from tests.ports import free_ports

SCENARIO = ROOT / "tests" / "sipp" / "uac_call_duration.xml"
AGENT, DN = "agent1", "1001"
CLOCK_USER = "clock"  # the pattern window's own agent login, for its time.ping exchange
CLOCK_DN = "1999"


@dataclass(frozen=True)
class Frame:
    stamp: float  # server time the recording gives the frame (segment started_at + pts)
    drawn: float | None  # server time drawn in the picture, None when unreadable
    segment: str  # "run/seq" (or "muxed")
    first: bool  # first frame of its segment
    last: bool  # last frame of its segment


@dataclass
class CallRun:
    interaction: dict[str, Any]
    done_at: float  # server time of Done (the API's acw_ended_at)
    playable_after: float  # seconds from the Done request to a decoded GET of the whole muxed file
    first_mux: str  # name of the first muxed file served after Done (complete or not)
    first_mux_after: float
    complete_mux: str  # name of the one made from every segment
    segments: list[Frame]  # every stored segment's frames, in time order
    muxed: list[Frame]
    held: Held | None  # the delayed pause command, when one was delayed
    pause_answer: dict[str, Any]


class AgentChannel:
    """agent1's desktop event channel, read by a thread."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._lock = threading.Lock()
        self.envelopes: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._read, name="agent-events", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            for message in self._ws:
                with self._lock:
                    self.envelopes.append(json.loads(message))

    def interaction_started(self, after: int) -> str | None:
        with self._lock:
            for env in self.envelopes[after:]:
                if env["type"] == "call.started":
                    return str(env["data"]["interaction_id"])
        return None

    def count(self) -> int:
        with self._lock:
            return len(self.envelopes)

    def has(self, kind: str, interaction_id: str) -> bool:
        with self._lock:
            return any(
                e["type"] == kind and e["data"].get("interaction_id") == interaction_id
                for e in self.envelopes
            )


@dataclass
class Stack:
    server: ServerProcess
    proxy: EventDelayProxy
    agent_token: str
    channel: AgentChannel
    recorder_log: Path
    pattern_log: Path
    work: Path
    clock_accuracy: float = 0.0  # ± s the recorder reported for its offset before the calls

    def api(self, method: str, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.agent_token}"}
        return httpx.request(method, f"{self.server.url}{path}", headers=headers, timeout=60, **kw)

    def logs(self) -> str:
        return f"server log:\n{self.server.log()}\nrecorder log:\n{self.recorder_log.read_text()[-6000:]}"


@contextlib.contextmanager
def bare_xvfb(width: int, height: int) -> Iterator[str]:
    if shutil.which("Xvfb") is None:
        raise AssertionError("Xvfb is required (Debian: xvfb)")
    number = next(
        n
        for n in range(400, 700)
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists()
    )
    errors = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        ["Xvfb", f":{number}", "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=errors,
    )
    try:
        wait_started(proc, Path(f"/tmp/.X11-unix/X{number}").exists, "Xvfb socket", lambda: file_tail(errors))
        yield f":{number}"
    finally:
        stop_process(proc)
        errors.close()


@contextlib.contextmanager
def screen_stack(
    work: Path,
    *,
    fps: float = 5,
    segment_seconds: float = 10,
    width: int = 800,
    height: int = 600,
    pattern_period: float = 0.005,
) -> Iterator[Stack]:
    for tool in ("sipp", "sox", "Xvfb"):
        if shutil.which(tool) is None:
            raise AssertionError(f"{tool} is required (the test command installs it)")
    _speech_wav(work / "speech.wav")
    with run_server(
        work / "server",
        extra_users=[(CLOCK_USER, "agent", "Blue")],
        TANDEM_SERVER_ACW_LIMIT_SECONDS="3600",
    ) as server:
        with server.client("admin") as admin:
            r = admin.put("/api/admin/sampling", json={"percentage": 100, "team_overrides": {}})
            assert r.status_code == 200, r.text
            policy = {"fps": fps, "segment_seconds": segment_seconds, "heartbeat_seconds": 2}
            r = admin.put("/api/admin/recorder-policy", json=policy)
            assert r.status_code == 200, r.text
        host, port = server.url.split("//", 1)[1].split(":")
        with (
            bare_xvfb(width, height) as display,
            pattern_window(
                display,
                server.url,
                server.token(CLOCK_USER, client="desktop", dn=CLOCK_DN),
                work / "pattern",
                pattern_period,
            ) as pattern_log,
            EventDelayProxy(host, int(port)) as proxy,
            run_recorder(
                dataclasses.replace(server, url=proxy.url), AGENT, display, work / "recorder"
            ) as rec_log,
        ):
            token = server.token(AGENT, client="desktop", dn=DN)
            ws_url = server.url.replace("http://", "ws://", 1)
            with connect(
                f"{ws_url}/api/events?client=desktop",
                additional_headers={"Authorization": f"Bearer {token}"},
                open_timeout=10,
            ) as ws:
                stack = Stack(server, proxy, token, AgentChannel(ws), rec_log, pattern_log, work)
                with server.client("supervisor") as sup:
                    wait_until(
                        lambda: any(
                            a["dn"] == DN and {"desktop", "recorder"} <= set(a["connected"])
                            for a in sup.get("/api/agents").json()
                        ),
                        60,
                        "agent channel and recorder connected",
                    )
                stack.clock_accuracy = wait_until(lambda: _clock_settled(server), 120, "the recorder's clock")
                yield stack


CLOCK_SETTLED = 0.003


def _clock_settled(server: ServerProcess) -> float | None:
    """The recorder's reported clock accuracy once it is within ``CLOCK_SETTLED``. Right after
    connecting the recorder knows its offset from one exchange only (the next comes 10 s later),
    and on a loaded machine that one's round trip can be 30 ms: ±15 ms until the next. A recorder
    runs all day before its calls; the test waits for what it would have by then."""
    with server.client("admin") as admin:
        recorders = admin.get("/api/admin/fleet").json()["recorders"]
    accuracy = [
        r["clock_accuracy"] for r in recorders if r["agent"] == AGENT and r["clock_accuracy"] is not None
    ]
    return accuracy[0] if accuracy and accuracy[0] <= CLOCK_SETTLED else None


def run_call(
    stack: Stack,
    *,
    call_seconds: float,
    pause_after: float,
    pause_seconds: float,
    acw_seconds: float,
    delay_pause: float = 0.0,
) -> CallRun:
    """One SIPp call of ``call_seconds`` to agent1: a REST pause ``pause_after`` seconds into it
    for ``pause_seconds``, BYE, ACW for ``acw_seconds``, Done; waits for the muxed file."""
    seen = stack.channel.count()
    sipp = _sipp(stack, call_seconds)
    try:
        iid = wait_until(
            lambda: stack.channel.interaction_started(seen), 30, "call.started on the agent channel"
        )
        wait_until(lambda: stack.channel.has("screen.start", iid), 10, "screen.start")
        _let_pass(pause_after)
        held = stack.proxy.delay_next("screen.pause", delay_pause) if delay_pause else None
        r = stack.api("POST", f"/api/interactions/{iid}/pause")
        # A pause that reaches the recorder later than the server waits for its ack (1 s): the
        # voice is paused and the agent told the screen did not confirm (504), truthfully.
        late = r.status_code == 504 and r.json()["error"] == "screen_not_confirmed" and delay_pause > 1
        assert r.status_code == 200 or late, r.text
        pause_answer = {"status": r.status_code, **r.json()}
        if held is not None:
            assert held.done.wait(delay_pause + 30), "the delayed screen.pause never went on"
        _let_pass(pause_seconds)
        r = stack.api("POST", f"/api/interactions/{iid}/resume")
        assert r.status_code == 200, r.text
        out, _ = sipp.communicate(timeout=call_seconds + 120)
        assert sipp.returncode == 0, out.decode(errors="replace")[-3000:]
    finally:
        stop_process(sipp)
    wait_until(lambda: stack.channel.has("call.ended", iid), 30, "call.ended (ACW)")
    _let_pass(acw_seconds)
    done_requested = time.monotonic()
    r = stack.api("POST", f"/api/interactions/{iid}/done")
    assert r.status_code == 200, r.text
    sup_token = stack.server.token("supervisor")
    first: dict[str, float] = {}
    try:
        muxed_bytes, answered = wait_until(
            lambda: _playable(stack, iid, sup_token, first), 600, "the whole muxed file playable", step=0.05
        )
    except AssertionError:
        raise AssertionError(stack.logs()) from None
    playable_after = answered - done_requested
    inter = stack.api("GET", f"/api/interactions/{iid}", token=sup_token).json()
    muxed_path = stack.work / f"{iid}-muxed.mp4"
    muxed_path.write_bytes(muxed_bytes)
    rows = _media_started(stack.server.data_dir, iid)
    return CallRun(
        interaction=inter,
        done_at=float(inter["acw_ended_at"]),
        playable_after=playable_after,
        first_mux=min(first.items(), key=lambda kv: kv[1])[0],
        first_mux_after=min(first.values()) - done_requested,
        complete_mux=Path(rows["muxed_key"]).name,
        segments=segment_frames(stack.server.data_dir, iid),
        muxed=file_frames(muxed_path, rows["muxed"], "muxed"),
        held=held,
        pause_answer=pause_answer,
    )


def _playable(stack: Stack, iid: str, token: str, first: dict[str, float]) -> tuple[bytes, float] | None:
    """The muxed file and when its GET answered, once it is whole — made from every segment the
    recorder made (each run's seqs 0… up to its final one, none cut away here) — and it decodes
    (checked after the time is taken: a player starts before decoding it all). The first muxed
    file seen, complete or not, is noted in ``first`` (name → monotonic time)."""
    r = stack.api("GET", f"/api/interactions/{iid}/media/muxed", token=token)
    answered = time.monotonic()
    if r.status_code != 200:
        return None
    with sqlite3.connect(stack.server.data_dir / "tandem.db") as db:
        (key,) = db.execute(
            "SELECT storage_key FROM media_files WHERE interaction_id = ? AND kind = 'muxed'", (iid,)
        ).fetchone()
        rows = db.execute(
            "SELECT run, seq, sha256, final FROM screen_segments WHERE interaction_id = ?", (iid,)
        ).fetchall()
    first.setdefault(Path(key).name, answered)
    runs = {run for run, *_ in rows}
    finals = {run: seq for run, seq, _, final in rows if final}
    complete = runs == set(finals) and all(
        sorted(seq for r_, seq, *_ in rows if r_ == run) == list(range(finals[run] + 1)) for run in runs
    )
    segments = [SimpleNamespace(run=run, seq=seq, sha256=sha) for run, seq, sha, _ in rows]
    if not complete or Path(key).name != muxed_name(segments):  # type: ignore[arg-type]
        return None
    path = stack.work / f"{iid}-probe.mp4"
    path.write_bytes(r.content)
    with av.open(str(path)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames, f"the muxed file {key} has no decodable frame"
    return r.content, answered


def _let_pass(seconds: float) -> None:
    end = time.monotonic() + seconds
    wait_until(lambda: time.monotonic() >= end, seconds + 30, f"{seconds:g} s to pass", step=0.05)


def _sipp(stack: Stack, call_seconds: float) -> subprocess.Popen[bytes]:
    cmd = ["sipp", f"127.0.0.1:{stack.server.sip_port}", "-sf", str(SCENARIO), "-s", DN, "-m", "1"]
    cmd += ["-d", str(int(call_seconds * 1000)), "-i", "127.0.0.1", "-mi", "127.0.0.1"]
    cmd += ["-mp", str(free_ports(4)), "-timeout", str(int(call_seconds + 90)), "-nostdin"]
    cmd += ["-trace_err", "-error_file", str(stack.work / "sipp_errors.log")]
    return subprocess.Popen(cmd, cwd=stack.work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _speech_wav(path: Path) -> None:
    """8 kHz μ-law WAV of the server's speech-like test signal, for SIPp's rtp_stream."""
    from server.sim.speech import speech_like_pcm

    path.parent.mkdir(parents=True, exist_ok=True)
    raw = path.with_suffix(".raw")
    speech_like_pcm(6.0).astype("<i2").tofile(raw)
    sox = ["sox", "-t", "raw", "-r", "8000", "-e", "signed", "-b", "16", "-c", "1", str(raw)]
    subprocess.run([*sox, "-e", "u-law", str(path)], check=True)


def _media_started(data_dir: Path, iid: str) -> dict[str, Any]:
    with sqlite3.connect(data_dir / "tandem.db") as db:
        rows = db.execute(
            "SELECT kind, started_at, storage_key FROM media_files WHERE interaction_id = ?", (iid,)
        )
        out: dict[str, Any] = {}
        for kind, started, key in rows:
            out[kind], out[f"{kind}_key"] = float(started), key
        return out


def segment_frames(data_dir: Path, iid: str) -> list[Frame]:
    """Every stored segment's frames on the server clock, in time order."""
    with sqlite3.connect(data_dir / "tandem.db") as db:
        rows = db.execute(
            "SELECT run, seq, storage_key, started_at FROM screen_segments WHERE interaction_id = ?"
            " ORDER BY first_frame_at, run, seq",
            (iid,),
        ).fetchall()
    frames: list[Frame] = []
    for run, seq, key, started in rows:
        frames += file_frames(data_dir / "storage" / key, float(started), f"{run}/{seq}")
    return frames


def file_frames(path: Path, started_at: float, name: str) -> list[Frame]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        base = stream.time_base
        assert base is not None, f"{path}: video stream without a time base"
        decoded = [(started_at + float((f.pts or 0) * base), read_frame(f)) for f in container.decode(stream)]
    return [
        Frame(stamp, None if ms is None else ms / 1000, name, i == 0, i == len(decoded) - 1)
        for i, (stamp, ms) in enumerate(decoded)
    ]
