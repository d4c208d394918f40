"""Independent SIP peers for the end-to-end tests: Debian's baresip (a real softphone, driven
through its ``ctrl_tcp`` module) and a long SIPp call. Each runs as a real subprocess on
loopback and is stopped at teardown.

baresip 1.0 speaks netstring-framed JSON on ``ctrl_tcp``: commands
``{"command", "params", "token"}``, answers ``{"response": true, "ok", "data", "token"}`` and
events ``{"event": true, "type", ...}``. The decoder here is pure and bounded so a confused
peer fails the test with a clear message instead of hanging it.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import socket
import subprocess
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tests.e2e.harness import ROOT, stop_process, wait_started
from tests.ports import free_port, free_ports

BARESIP_MODULES = Path("/usr/lib/baresip/modules")
MAX_NETSTRING = 64 * 1024  # ctrl_tcp messages are a few hundred bytes


class PeerError(Exception):
    """A peer process or its control channel did not behave as the test needs."""


class NetstringError(PeerError):
    """Bytes on the control channel are not a netstring (``<len>:<payload>,``)."""


def encode_netstring(payload: bytes) -> bytes:
    return b"%d:%s," % (len(payload), payload)


class NetstringDecoder:
    """Splits a byte stream into netstring payloads; refuses malformed or oversized frames."""

    def __init__(self, limit: int = MAX_NETSTRING) -> None:
        self._buffer = bytearray()
        self._limit = limit

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        out: list[bytes] = []
        while True:
            colon = self._buffer.find(b":")
            if colon < 0:
                if len(self._buffer) > len(str(self._limit)):
                    raise NetstringError(f"no length prefix in {bytes(self._buffer[:20])!r}")
                return out
            digits = bytes(self._buffer[:colon])
            if not digits.isdigit() or len(digits) > len(str(self._limit)):
                raise NetstringError(f"bad netstring length {digits[:20]!r}")
            length = int(digits)
            if length > self._limit:
                raise NetstringError(f"netstring of {length} bytes exceeds {self._limit}")
            end = colon + 1 + length
            if len(self._buffer) <= end:
                return out
            if self._buffer[end : end + 1] != b",":
                raise NetstringError("netstring not terminated by ','")
            out.append(bytes(self._buffer[colon + 1 : end]))
            del self._buffer[: end + 1]


def write_tone_wav(path: Path, frequency: float, seconds: float, rate: int = 8000) -> None:
    """A 16-bit mono sine WAV at half scale: the audio baresip's ``aufile`` source sends."""
    t = np.arange(round(seconds * rate)) / rate
    samples = (0.5 * 32767 * np.sin(2 * math.pi * frequency * t)).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())


def baresip_config(
    ctrl_port: int, audio_source: Path, rtp_base: int, tls_ca: Path | None = None, srtp: bool = False
) -> str:
    """A config that loads only G.711, the file source and the control modules, on loopback.

    No audio device is opened: the recorder answers ``recvonly``, so nothing is played.
    baresip 1.0 always opens UDP, TCP and TLS (it has no ``sip_transports`` key); a call goes
    over TLS when its URI says ``;transport=tls``. ``tls_ca`` becomes ``sip_cafile``, but
    baresip 1.0 on libre 1.1 does not verify the server's certificate with it (measured: a call
    to a server whose certificate that CA did not sign is placed all the same; ``sip_verify_server``
    came in later baresip releases)."""
    lines = [
        ("poll_method", "epoll"),
        ("net_interface", "127.0.0.1"),
        ("sip_listen", "127.0.0.1:0"),
        ("audio_source", f"aufile,{audio_source}"),
        ("audio_player", "aufile,/dev/null"),
        ("audio_alert", "aufile,/dev/null"),
        ("ausrc_srate", "8000"),
        ("ausrc_channels", "1"),
        ("rtp_ports", f"{rtp_base}-{rtp_base + 199}"),
        ("module_path", str(BARESIP_MODULES)),
        ("module", "g711.so"),
        ("module", "aufile.so"),
        ("module_app", "account.so"),
        ("module_app", "menu.so"),
        ("module_app", "ctrl_tcp.so"),
        ("ctrl_tcp_listen", f"127.0.0.1:{ctrl_port}"),
    ]
    if tls_ca is not None:
        lines.append(("sip_cafile", str(tls_ca)))
    if srtp:  # SDES-SRTP (RFC 4568); an account then asks for it with ;mediaenc=srtp-mand
        lines.append(("module", "srtp.so"))
    return "".join(f"{key}\t{value}\n" for key, value in lines)


@dataclass
class Baresip:
    """A running baresip with its control connection; messages are kept in arrival order."""

    proc: subprocess.Popen[bytes]
    sock: socket.socket
    log_path: Path
    messages: list[dict[str, Any]] = field(default_factory=list)
    _decoder: NetstringDecoder = field(default_factory=NetstringDecoder)
    _token: int = 0

    def command(self, name: str, params: str = "", timeout: float = 10) -> dict[str, Any]:
        """Run a menu command; returns its response, or raises if baresip says it failed."""
        self._token += 1
        token = f"t{self._token}"
        body = json.dumps({"command": name, "params": params, "token": token}).encode()
        self.sock.sendall(encode_netstring(body))
        response = self.wait_for(lambda m: m.get("response") is True and m.get("token") == token, timeout)
        if not response.get("ok"):
            raise PeerError(f"baresip refused {name} {params}: {response}\n{self.log()}")
        return response

    def event(self, kind: str, timeout: float) -> dict[str, Any]:
        return self.wait_for(lambda m: m.get("event") is True and m.get("type") == kind, timeout)

    def wait_for(self, match: Any, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for message in self.messages[seen:]:
                if match(message):
                    return message
            seen = len(self.messages)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PeerError(
                    f"baresip: no matching message in {timeout:g} s; got {self.messages}\n{self.log()}"
                )
            if self.proc.poll() is not None:
                raise PeerError(f"baresip exited ({self.proc.returncode}):\n{self.log()}")
            self._receive(min(remaining, 0.2))

    def _receive(self, timeout: float) -> None:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return
        if not data:
            raise PeerError(f"baresip closed its control connection:\n{self.log()}")
        for payload in self._decoder.feed(data):
            try:
                message = json.loads(payload)
            except ValueError as exc:
                raise PeerError(f"baresip sent non-JSON {payload[:200]!r}") from exc
            if isinstance(message, dict):
                self.messages.append(message)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@contextlib.contextmanager
def run_baresip(
    workdir: Path,
    audio_source: Path,
    display_name: str,
    user: str,
    tls_ca: Path | None = None,
    mediaenc: str | None = None,
) -> Iterator[Baresip]:
    """Start baresip with its own config dir and one unregistered account ``display <sip:user@127.0.0.1>``
    (``tls_ca``: see ``baresip_config``; ``mediaenc``: the account's media encryption, e.g.
    ``srtp-mand`` for SDES-SRTP only)."""
    if shutil.which("baresip") is None or not (BARESIP_MODULES / "ctrl_tcp.so").exists():
        raise AssertionError("baresip is required (Debian: baresip-core; scripts/system-packages test)")
    config_dir = workdir / "baresip"
    config_dir.mkdir(parents=True, exist_ok=True)
    ctrl_port = free_port()
    rtp_base = free_ports(200)
    srtp = mediaenc is not None and mediaenc.startswith("srtp")
    (config_dir / "config").write_text(baresip_config(ctrl_port, audio_source, rtp_base, tls_ca, srtp))
    encryption = f";mediaenc={mediaenc}" if mediaenc else ""
    (config_dir / "accounts").write_text(f'"{display_name}" <sip:{user}@127.0.0.1>;regint=0{encryption}\n')
    log_path = workdir / "baresip.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            ["baresip", "-f", str(config_dir), "-s"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
    sock: socket.socket | None = None
    try:

        def connected() -> socket.socket | None:
            try:
                return socket.create_connection(("127.0.0.1", ctrl_port), timeout=1)
            except OSError:
                return None

        def output() -> str:
            return log_path.read_text(errors="replace")[-6000:]

        sock = wait_started(proc, connected, "baresip's ctrl_tcp socket", output)
        assert sock is not None
        yield Baresip(proc, sock, log_path)
    finally:
        if sock is not None:
            sock.close()
        stop_process(proc, timeout=5)


def speech_ulaw_wav(path: Path, seconds: float = 6.0) -> None:
    """8 kHz μ-law WAV of the server's speech-like test signal, for SIPp's ``rtp_stream``."""
    from server.sim.speech import speech_like_pcm

    if shutil.which("sox") is None:
        raise AssertionError("sox is required (scripts/system-packages test)")
    raw = path.with_suffix(".raw")
    speech_like_pcm(seconds).astype("<i2").tofile(raw)
    subprocess.run(
        [
            "sox",
            "-t",
            "raw",
            "-r",
            "8000",
            "-e",
            "signed",
            "-b",
            "16",
            "-c",
            "1",
            str(raw),
            "-e",
            "u-law",
            str(path),
        ],
        check=True,
        capture_output=True,
    )


@contextlib.contextmanager
def sipp_call(workdir: Path, sip_port: int, dn: str, call_ms: int) -> Iterator[subprocess.Popen[bytes]]:
    """One SIPp call of ``call_ms`` to ``dn`` streaming speech.wav; killed at teardown if still running."""
    if shutil.which("sipp") is None:
        raise AssertionError("sipp is required (Debian: sip-tester)")
    speech_ulaw_wav(workdir / "speech.wav")
    proc = subprocess.Popen(
        [
            "sipp",
            f"127.0.0.1:{sip_port}",
            "-sf",
            str(ROOT / "tests" / "sipp" / "uac_call_duration.xml"),
            "-s",
            dn,
            "-m",
            "1",
            "-d",
            str(call_ms),
            "-i",
            "127.0.0.1",
            "-mi",
            "127.0.0.1",
            "-mp",
            str(free_ports(4)),
            "-timeout",
            str(call_ms // 1000 + 30),
            "-nostdin",
        ],
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
