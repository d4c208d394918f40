"""The PC's device broker (device_broker.py) and its clients, the pure parts: the wire format,
its limits, which device credential a user's recorder uses, who the peer is, and how the
credential file is written.

Wire: one JSON line each way over the broker's local socket (``/run/tandem/device.sock``).
Request ``{"op": "pair", "ticket": "tkt_..."}`` or ``{"op": "unpair"}`` -- the only two calls that
need the device credential, and nothing else: the broker is not a proxy. Reply: the server's
answer ``{"status": 200, "body": {...}, "server_url": "..."}``, or ``{"error": "..."}`` when the
broker could not ask the server at all (bad request, no enrolment token, server unreachable,
enrolment refused).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

MAX_LINE = 4096  # a request is ~60 bytes; a reply carries one token
OPS = ("pair", "unpair")
DEFAULT_SOCKET = Path("/run/tandem/device.sock")
SOCKET_ENV = "TANDEM_DEVICE_BROKER_SOCKET"  # tests, and the installer test's chroot
DEFAULT_STATE_DIR = Path("/var/lib/tandem")
CREDENTIAL_FILE = "device-credential"


class BrokerError(ValueError):
    """A request or reply the broker (or its client) will not act on; the message says why."""


@dataclass(frozen=True, slots=True)
class BrokerRequest:
    op: str
    ticket: str = ""


@dataclass(frozen=True, slots=True)
class DeviceReply:
    """The server's answer to a device call (status and JSON body), wherever it was made."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)

    def message(self) -> str:
        return str(self.body.get("message") or self.body.get("error") or self.body)


def _json_line(line: bytes, what: str) -> dict[str, Any]:
    if len(line) > MAX_LINE:
        raise BrokerError(f"{what} longer than {MAX_LINE} bytes")
    try:
        data = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BrokerError(f"{what} is not a JSON line: {exc}") from exc
    if not isinstance(data, dict):
        raise BrokerError(f"{what} is not a JSON object")
    return data


def parse_request(line: bytes) -> BrokerRequest:
    data = _json_line(line, "request")
    op = data.get("op")
    if op not in OPS:
        raise BrokerError(f"op must be one of {', '.join(OPS)}")
    if set(data) - {"op", "ticket"}:
        raise BrokerError(f"unknown fields {sorted(set(data) - {'op', 'ticket'})}")
    ticket = data.get("ticket", "")
    if op == "pair" and (not isinstance(ticket, str) or not ticket.startswith("tkt_") or len(ticket) > 200):
        raise BrokerError("pair needs the ticket from POST /api/agent/pairing-ticket")
    return BrokerRequest(str(op), str(ticket) if op == "pair" else "")


def encode_request(request: BrokerRequest) -> bytes:
    body: dict[str, str] = {"op": request.op}
    if request.op == "pair":
        body["ticket"] = request.ticket
    return json.dumps(body).encode() + b"\n"


def encode_reply(reply: DeviceReply | None, server_url: str = "", error: str = "") -> bytes:
    if reply is None:
        return json.dumps({"error": error or "the device broker failed"}).encode() + b"\n"
    return json.dumps({"status": reply.status, "body": reply.body, "server_url": server_url}).encode() + b"\n"


def parse_reply(line: bytes) -> tuple[DeviceReply, str]:
    """The server's reply and the server it came from; BrokerError for the broker's own refusal."""
    if not line:
        raise BrokerError("the device broker closed the connection without answering")
    data = _json_line(line.rstrip(b"\n"), "the device broker's reply")
    if "error" in data:
        raise BrokerError(str(data["error"]))
    status, body = data.get("status"), data.get("body")
    if not isinstance(status, int) or not isinstance(body, dict):
        raise BrokerError("the device broker's reply has no status and body")
    return DeviceReply(status, body), str(data.get("server_url", ""))


def user_name(uid: int | None, lookup: Callable[[int], str] | None = None) -> str | None:
    """The peer's OS user name (for the server's fleet page and logs); None: no peer credentials."""
    if uid is None or uid < 0:
        return None
    if lookup is None:
        import pwd

        def lookup(u: int) -> str:
            return pwd.getpwuid(u).pw_name

    try:
        return lookup(uid)
    except KeyError:  # a uid without a passwd entry (a container, a deleted account)
        return f"uid {uid}"


Source = Literal["local", "broker", "enrol"]


def credential_source(has_local: bool, broker_socket: bool) -> Source:
    """Which device credential a user's recorder uses. A credential already in the user's keyring
    (enrolled before the broker existed, dev and test installs) stays in use; otherwise the PC's
    broker if it listens; otherwise the recorder enrols itself with the enrolment token (no
    package, or Windows, where there is no broker yet)."""
    if has_local:
        return "local"
    if broker_socket:
        return "broker"
    return "enrol"


def broker_socket_path(env: dict[str, str] | None = None) -> Path:
    env = dict(os.environ) if env is None else env
    return Path(env[SOCKET_ENV]) if env.get(SOCKET_ENV) else DEFAULT_SOCKET


def write_private(path: Path, data: bytes) -> None:
    """Write ``path`` atomically, mode 0600 from its first byte: a crash leaves the old file or the
    new one, never half of one, and there is no moment another user could open it."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@dataclass(frozen=True, slots=True)
class StoredCredential:
    server_url: str
    credential: str


def encode_credential(stored: StoredCredential) -> bytes:
    return json.dumps({"server_url": stored.server_url, "credential": stored.credential}).encode()


def decode_credential(data: bytes, source: str) -> StoredCredential:
    try:
        raw = json.loads(data.decode("utf-8"))
        return StoredCredential(str(raw["server_url"]), str(raw["credential"]))
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BrokerError(f"{source} is damaged ({exc}); remove it to enrol this PC again") from exc
