"""The recorder's local pairing endpoint: the agent desktop on the same PC tells the recorder who
logged in (a pairing ticket from ``POST /api/agent/pairing-ticket``) and when he logged out.

Linux: a Unix socket ``$XDG_RUNTIME_DIR/tandem-recorder.sock`` (mode 0600, the directory itself is
the user's own), and every connection's peer is checked with ``SO_PEERCRED``: only a process of
the same user is heard — another user on a shared PC cannot pair the recorder with his login.
Windows: a named pipe ``\\\\.\\pipe\\tandem-recorder-<user>`` with the same check on the client's
user SID (``WindowsPeer``, built on the Win32 API in pairing_win32.py; the comparison is the same
``same_user`` as here, unit-tested on Linux). The pipe's accept loop itself is not written yet.

Protocol: one JSON line each way. ``{"op": "pair", "ticket": "..."}`` or ``{"op": "unpair"}``;
answered ``{"ok": true, "agent": "..."}`` or ``{"ok": false, "error": "..."}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import struct
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

SOCKET_NAME = "tandem-recorder.sock"
MAX_LINE = 4096
OPS = ("pair", "unpair")


@dataclass(frozen=True, slots=True)
class PairingRequest:
    op: str
    ticket: str = ""


class PairingError(ValueError):
    """A request the recorder will not act on; the message goes back to the desktop."""


Handler = Callable[[PairingRequest], Awaitable[str]]  # returns the agent's name (or "")


def socket_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the endpoint listens: the user's runtime directory, which only he can enter."""
    env = os.environ if env is None else env
    runtime = env.get("XDG_RUNTIME_DIR")
    if not runtime:
        raise PairingError("XDG_RUNTIME_DIR is not set: the recorder must run in the user's session")
    return Path(runtime) / SOCKET_NAME


def parse_request(line: bytes) -> PairingRequest:
    try:
        data = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PairingError(f"not a JSON line: {exc}") from exc
    if not isinstance(data, dict) or data.get("op") not in OPS:
        raise PairingError(f"op must be one of {', '.join(OPS)}")
    ticket = data.get("ticket", "")
    if data["op"] == "pair" and (not isinstance(ticket, str) or not ticket.startswith("tkt_")):
        raise PairingError("pair needs the ticket from POST /api/agent/pairing-ticket")
    return PairingRequest(str(data["op"]), str(ticket) if data["op"] == "pair" else "")


def same_user(peer: int | str | None, own: int | str) -> str | None:
    """Why a peer is refused (None: it is the same user). A uid on Linux, a SID on Windows."""
    if peer is None:
        return "the peer's user could not be determined"
    if peer != own:
        return f"refused a pairing request from another user ({peer})"
    return None


def peer_uid(sock: socket.socket) -> int | None:
    """The connecting process's uid from ``SO_PEERCRED`` (Linux)."""
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except (OSError, AttributeError):
        return None
    _pid, uid, _gid = struct.unpack("3i", raw)
    # An unconnected socket (or one not AF_UNIX) answers uid -1: no credentials, not "a user".
    return int(uid) if uid >= 0 and sock.family == socket.AF_UNIX else None


class WindowsPeer(Protocol):
    """The Windows adapter: the SID of the user behind a named-pipe client (pywin32:
    ``GetNamedPipeClientProcessId`` → ``OpenProcessToken`` → ``GetTokenInformation(TokenUser)``)."""

    def client_sid(self, pipe: object) -> str | None: ...

    def own_sid(self) -> str: ...


def windows_refusal(adapter: WindowsPeer, pipe: object) -> str | None:
    return same_user(adapter.client_sid(pipe), adapter.own_sid())


async def answer(line: bytes, peer: int | str | None, own: int | str, handler: Handler) -> dict[str, object]:
    """One request's answer, peer check first (the part both transports share)."""
    refusal = same_user(peer, own)
    if refusal is not None:
        log.warning("pairing endpoint: %s", refusal)
        return {"ok": False, "error": refusal}
    try:
        request = parse_request(line)
        agent = await handler(request)
    except PairingError as exc:
        return {"ok": False, "error": str(exc)}
    return {"ok": True, "agent": agent}


class PairingServer:
    """The Unix-socket endpoint; ``handler`` does the pairing with the server."""

    def __init__(self, path: Path, handler: Handler, own_uid: int | None = None) -> None:
        self.path = path
        self._handler = handler
        self._own = os.getuid() if own_uid is None else own_uid
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        if sys.platform == "win32":  # the named-pipe transport lives in recorder_service/windows
            raise PairingError("the Unix-socket pairing endpoint does not run on Windows")
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a stale socket of an earlier run
        old = os.umask(0o177)  # created 0600: no moment where another user could connect
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        log.info("pairing endpoint on %s", self.path)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            sock = writer.get_extra_info("socket")
            peer = peer_uid(sock) if sock is not None else None
            try:
                line = await asyncio.wait_for(reader.readline(), timeout=10)
            except (TimeoutError, ValueError):
                return
            reply = await answer(line[:MAX_LINE], peer, self._own, self._handler)
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
