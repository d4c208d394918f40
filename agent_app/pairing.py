"""The desktop's side of per-desk pairing: after a login it fetches a pairing ticket for this
session (``POST /api/agent/pairing-ticket``) and hands it to the recorder service on the same PC
over its local endpoint (recorder_service/pairing_ipc.py); before a logout it tells the recorder
to unpair. Both run where login and logout already run — on the desktop's worker thread, never
the Qt thread.

Pairing is best effort for the desktop: a PC without a recorder service, or a recorder enrolled
the old per-agent way, must not stop the agent from logging in. What went wrong is logged, and
the call's screen then shows "no_recorder" as before.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agent_app.api_client import ApiClient
from tandem_protocol.payloads import LoginResponse

log = logging.getLogger(__name__)

SOCKET_NAME = "tandem-recorder.sock"  # the recorder's name for it (recorder_service/pairing_ipc.py)
TIMEOUT_SECONDS = 15.0  # the recorder answers after its own request to the server


def recorder_socket(env: Mapping[str, str] | None = None) -> Path | None:
    env = os.environ if env is None else env
    runtime = env.get("XDG_RUNTIME_DIR")
    return Path(runtime) / SOCKET_NAME if runtime else None


def send(
    request: dict[str, str], path: Path | None = None, timeout: float = TIMEOUT_SECONDS
) -> dict[str, Any]:
    """One request to the recorder's endpoint; its answer. Raises OSError/ValueError."""
    path = path or recorder_socket()
    if path is None or sys.platform == "win32":
        raise OSError("no recorder pairing endpoint on this PC (XDG_RUNTIME_DIR unset or Windows)")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(json.dumps(request).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    answer = json.loads(data.decode("utf-8") or "{}")
    if not isinstance(answer, dict):
        raise ValueError("the recorder's answer is not an object")
    return answer


class PairingApiClient(ApiClient):
    """``ApiClient`` that pairs the PC's recorder after login and unpairs it before logout."""

    socket_path: Path | None = None  # tests point it elsewhere; None: $XDG_RUNTIME_DIR

    def login(self, username: str, password: str, dn: str) -> LoginResponse:
        response = super().login(username, password, dn)
        self.pair_recorder()
        return response

    def logout(self) -> None:
        if self.token is not None:
            self.unpair_recorder()
        super().logout()

    def pair_recorder(self) -> bool:
        try:
            ticket = self._request("POST", "/api/agent/pairing-ticket")
            answer = send({"op": "pair", "ticket": str(ticket["ticket"])}, self.socket_path)
        except Exception as exc:  # best effort: see the module's docstring
            log.warning("recorder not paired with this login: %s", exc)
            return False
        if not answer.get("ok"):
            log.warning("the recorder refused the pairing: %s", answer.get("error"))
            return False
        log.info("recorder paired with this login (%s)", answer.get("agent"))
        return True

    def unpair_recorder(self) -> bool:
        try:
            answer = send({"op": "unpair"}, self.socket_path)
        except (OSError, ValueError) as exc:
            log.info("recorder not told about the logout: %s", exc)
            return False
        return bool(answer.get("ok"))
