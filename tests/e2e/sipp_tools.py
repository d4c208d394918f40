"""SIPp for the end-to-end tests: running the scenarios of tests/sipp (with the second SIPREC
stream) against a running server, reading SIPp's message trace, and fetching what the server
recorded. The audio SIPp sends and its measurement live in ``sipp_media``.

SIPp 3.6.1 streams one ``m=audio`` per call with ``rtp_stream`` (the first of the SDP it last
received) and sends the file's bytes as they are, so the audio files are raw 8 kHz μ-law (a WAV's
header would go out as the first packet). The second SIPREC stream is a second SIPp process that
``siprec_*.xml`` starts with ``<exec command>`` once the recorder's answer names its port; see
tests/sipp/siprec_leg.xml.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.harness import ROOT, ServerProcess, run_server, wait_until
from tests.ports import free_port, free_ports

SIPP_DIR = ROOT / "tests" / "sipp"
_TRACE_SEPARATOR = "-" * 47 + " "


class SippError(Exception):
    """SIPp could not be run as the test needs."""


# ---- SIPp's message trace -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TracedMessage:
    time: float  # Unix seconds (SIPp's clock is this machine's, as the server's)
    sent: bool
    text: str

    @property
    def first_line(self) -> str:
        return self.text.split("\n", 1)[0].strip()

    def header(self, name: str) -> str | None:
        head = self.text.split("\n\n", 1)[0]
        for line in head.split("\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None

    @property
    def body(self) -> str:
        return self.text.split("\n\n", 1)[1] if "\n\n" in self.text else ""

    def is_response(self, status: int, method: str) -> bool:
        cseq = (self.header("CSeq") or "").split()
        return self.first_line.startswith(f"SIP/2.0 {status} ") and cseq[-1:] == [method]

    def is_request(self, method: str) -> bool:
        return self.first_line.startswith(f"{method} ")


def parse_trace(text: str) -> list[TracedMessage]:
    """Messages of a ``-trace_msg`` file: a dashed line with the local time, then ``UDP message
    sent (N bytes):`` or ``UDP message received [N] bytes :``, a blank line and the message."""
    messages: list[TracedMessage] = []
    for block in text.replace("\r\n", "\n").split(_TRACE_SEPARATOR)[1:]:
        stamp, _, rest = block.partition("\n")
        kind, _, message = rest.partition("\n\n")
        try:
            when = datetime.strptime(stamp.strip(), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        except ValueError:
            continue
        messages.append(TracedMessage(when, "sent" in kind, message.strip("\n") + "\n"))
    return messages


# ---- running SIPp -------------------------------------------------------------------------------
def free_media_ports(count: int) -> int:
    """An even port P with P, P+1, ... P+count-1 free (SIPp binds -mp and -mp+2; the second
    stream's SIPp the next two), from ``tests.ports``: clear of every server's ports."""
    return free_ports(count)


@dataclass(frozen=True, slots=True)
class SecondStream:
    """The second SIPREC stream: tests/sipp/siprec_leg.xml (stream2.ul) or siprec_leg_pcap.xml
    (stream2.pcap) on a schedule of ms: audio, a gap without RTP, audio again."""

    stream1_ms: int
    gap_ms: int = 0
    stream2_ms: int = 0
    scenario: str = "siprec_leg.xml"

    def variables(self) -> dict[str, int]:
        if self.scenario == "siprec_leg_pcap.xml":
            return {"stream1_ms": self.stream1_ms}
        return {"stream1_ms": self.stream1_ms, "gap_ms": self.gap_ms, "stream2_ms": self.stream2_ms}


@dataclass
class SippResult:
    returncode: int
    output: str
    messages: list[TracedMessage]
    errors: str
    second: list[TracedMessage] = field(default_factory=list)  # the second stream's own trace
    second_log: str = ""

    def received(self, status: int, method: str) -> list[TracedMessage]:
        return [m for m in self.messages if not m.sent and m.is_response(status, method)]

    def sent(self, method: str) -> list[TracedMessage]:
        return [m for m in self.messages if m.sent and m.is_request(method)]

    def describe(self) -> str:
        lines = [f"{'>>' if m.sent else '<<'} {m.time:.3f} {m.first_line}" for m in self.messages]
        return (
            f"SIPp exit {self.returncode}\nmessages:\n"
            + "\n".join(lines)
            + f"\nerrors:\n{self.errors[-3000:]}\nsecond stream:\n{self.second_log[-1500:]}"
        )

    def check(self) -> SippResult:
        if self.returncode != 0:
            raise AssertionError(self.describe())
        return self


def _option_pairs(flag: str, values: Mapping[str, object]) -> list[str]:
    return [item for key, value in values.items() for item in (flag, key, str(value))]


def _second_stream_launcher(work: Path, leg: SecondStream, media_port: int) -> str:
    """A shell script that runs the second stream's SIPp (talking to itself) and records its pid;
    the SIPREC scenario runs it with ``-set rtp_host H -set rtp_port P`` appended."""
    port = free_port(socket.SOCK_DGRAM)
    argv = [
        "sipp",
        f"127.0.0.1:{port}",
        "-p",
        str(port),
        "-sf",
        str(SIPP_DIR / leg.scenario),
        "-m",
        "1",
        "-i",
        "127.0.0.1",
        "-mi",
        "127.0.0.1",
        "-mp",
        str(media_port),
        "-nostdin",
        "-timeout",
        "60",
        "-trace_msg",
        "-message_file",
        str(work / "second.msg"),
        "-trace_err",
        "-error_file",
        str(work / "second.err"),
        *_option_pairs("-set", leg.variables()),
    ]
    script = work / "second_stream.sh"
    script.write_text(
        "#!/bin/sh\n# The second SIPREC stream (see tests/e2e/sipp_tools.py).\n"
        f"echo $$ > {shlex.quote(str(work / 'second.pid'))}\n"
        f"cd {shlex.quote(str(work))}\n"
        f'exec {shlex.join(argv)} "$@" > {shlex.quote(str(work / "second.log"))} 2>&1\n'
    )
    return f"sh {shlex.quote(str(script))}"


def _await_second_stream(work: Path, timeout: float) -> None:
    """Wait for the second stream's SIPp to end on its own; end it (by its pid) if it hangs."""
    pid_file = work / "second.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text().strip() or 0)

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A zombie is gone for our purpose (its parent, SIPp's exec fork, already exited).
        stat = Path(f"/proc/{pid}/stat")
        return stat.exists() and stat.read_text().rsplit(")", 1)[-1].split()[0] == "Z"

    try:
        wait_until(gone, timeout, "the second stream's SIPp to end")
    except AssertionError:
        os.kill(pid, signal.SIGKILL)
        raise


def run_sipp(
    scenario: str,
    server_port: int,
    work: Path,
    *,
    service: str,
    duration_ms: int | None = None,
    keys: Mapping[str, object] | None = None,
    variables: Mapping[str, object] | None = None,
    second: SecondStream | None = None,
    timeout: float = 60,
    transport: str = "u1",
) -> SippResult:
    """Run one call of ``tests/sipp/<scenario>`` against 127.0.0.1:``server_port`` with ``work``
    as SIPp's directory (its audio files go there). ``second`` adds the SIPREC second stream;
    ``transport`` is SIPp's ``-t`` for the signalling (``tn``: TCP; the media is RTP either way)."""
    work.mkdir(parents=True, exist_ok=True)
    base = free_media_ports(8)
    all_keys: dict[str, object] = dict(keys or {})
    if second is not None:
        all_keys["leg_b"] = _second_stream_launcher(work, second, base + 4)
    all_keys.setdefault("leg_b_media_port", base + 4)
    argv = [
        "sipp",
        f"127.0.0.1:{server_port}",
        "-sf",
        str(SIPP_DIR / scenario),
        "-t",
        transport,
        "-s",
        service,
        "-m",
        "1",
        "-i",
        "127.0.0.1",
        "-p",
        str(free_port(socket.SOCK_DGRAM)),
        "-mi",
        "127.0.0.1",
        "-mp",
        str(base),
        "-cid_str",
        f"{work.name}-%u-%p@%s",
        "-nostdin",
        "-timeout",
        f"{timeout:g}",
        "-timeout_error",
        "-trace_msg",
        "-message_file",
        str(work / "main.msg"),
        "-trace_err",
        "-error_file",
        str(work / "main.err"),
        *_option_pairs("-key", all_keys),
        *_option_pairs("-set", variables or {}),
    ]
    if duration_ms is not None:
        argv += ["-d", str(duration_ms)]
    if transport != "u1":  # SIPp refuses TCP when its default socket count exceeds the open-file limit
        argv += ["-max_socket", "100"]
    try:
        proc = subprocess.run(argv, cwd=work, capture_output=True, timeout=timeout + 15)
    except subprocess.TimeoutExpired as exc:
        raise SippError(f"SIPp did not end within {timeout + 15:g} s: {' '.join(argv)}") from exc
    result = SippResult(
        proc.returncode,
        proc.stdout.decode(errors="replace")[-4000:],
        _read_trace(work / "main.msg"),
        _read(work / "main.err"),
    )
    if second is not None:
        _await_second_stream(work, 30)
        result.second = _read_trace(work / "second.msg")
        result.second_log = _read(work / "second.err") + _read(work / "second.log")[-1500:]
    return result


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _read_trace(path: Path) -> list[TracedMessage]:
    return parse_trace(_read(path))


def sipp_call_id(result: SippResult) -> str | None:
    """The Call-ID SIPp used (``-cid_str``), from the first message it sent."""
    sent = [m for m in result.messages if m.sent]
    return sent[0].header("Call-ID") if sent else None


# ---- the recording server under test ------------------------------------------------------------
@dataclass
class Recorder:
    """A running server with ``agent1`` logged in (desktop, no screen) on ``dn``, and an admin."""

    server: ServerProcess
    admin: httpx.Client
    dn: str

    def interaction(self, call_id: str, timeout: float = 20) -> dict[str, Any]:
        """The ended interaction of ``call_id`` once its voice file is stored."""

        def ready() -> dict[str, Any] | None:
            for item in self.admin.get("/api/interactions").json():
                if item["call_id"] == call_id and item["ended_at"] and "voice" in item["media"]:
                    return dict(item)
            return None

        try:
            return dict(wait_until(ready, timeout, f"the recording of call {call_id}"))
        except AssertionError:
            log = self.server.log()
            raise AssertionError(f"no stored recording of {call_id}; server log:\n{log}") from None

    def interactions(self, call_id: str) -> list[dict[str, Any]]:
        return [dict(i) for i in self.admin.get("/api/interactions").json() if i["call_id"] == call_id]

    def assert_nothing_live(self, call_id: str, timeout: float = 5) -> None:
        """No interaction of ``call_id`` is (or, within ``timeout``, stays) ringing or active: the
        server may withdraw a cancelled offer a moment after its 487."""

        def live() -> list[dict[str, Any]]:
            return [i for i in self.interactions(call_id) if i["state"] in ("ringing", "active")]

        try:
            wait_until(lambda: not live(), timeout, f"call {call_id} to leave no live interaction")
        except AssertionError:
            raise AssertionError(f"call {call_id} left live interactions: {live()}") from None

    def voice(self, interaction: dict[str, Any], dest: Path) -> Path:
        r = self.admin.get(f"/api/interactions/{interaction['id']}/media/voice")
        r.raise_for_status()
        dest.write_bytes(r.content)
        return dest


@contextlib.contextmanager
def recorder(data_dir: Path, dn: str = "1001", **settings: str) -> Iterator[Recorder]:
    """Start the server (screen recording off: no recorder service here) and log the agent in."""
    with run_server(data_dir, (), **{"TANDEM_SERVER_SCREEN_PERCENTAGE": "0", **settings}) as server:
        login = {
            "username": "agent1",
            "password": server.creds["agent1"]["password"],
            "client": "desktop",
            "dn": dn,
        }
        httpx.post(f"{server.url}/api/auth/login", json=login, timeout=10).raise_for_status()
        with server.client("admin") as admin:
            yield Recorder(server, admin, dn)
