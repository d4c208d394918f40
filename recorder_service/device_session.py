"""The recorder as a device of its PC: enrolled once with an enrolment token (``tet_…``), it keeps
a device credential of its own and records whoever is logged in on the PC's desktop.

The desktop hands over a pairing ticket on the local endpoint (pairing_ipc.py); the recorder
presents credential + ticket to ``POST /api/devices/pair`` and gets a recorder token for that
agent's session. Each binding runs one recorder session (``run_service``) with that token; a new
pairing or an unpairing finalises the running session (its capture stopped and spooled) and the
next binding starts a fresh one. The server closes the channel of an ended binding itself, so no
screen command for an agent who left reaches this PC.

Each agent has his own spool directory under the spool root: a session uploads only its own
agent's segments (with his token; the server refuses another agent's interaction), and what an
agent left in the spool is uploaded when he is paired on this PC again, never lost or misfiled.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from dataclasses import dataclass
from pathlib import Path

import httpx

from recorder_service import host_identity, problem_report
from recorder_service.credentials import DeviceCredential
from recorder_service.errors import CredentialsError, EnrolmentRefusedError, ServerUnreachableError
from recorder_service.pairing_ipc import PairingError, PairingRequest, PairingServer
from recorder_service.spool import Spool
from recorder_service.updater.in_recorder import SelfUpdate
from recorder_service.updater.policy import Activity

log = logging.getLogger(__name__)

ENROLMENT_PREFIX = "tet_"
_TIMEOUT = httpx.Timeout(connect=10.0, read=30.0, write=30.0, pool=10.0)


def is_enrolment_token(value: str) -> bool:
    return value.strip().startswith(ENROLMENT_PREFIX)


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
        return str(body.get("message") or body.get("error") or body)
    except ValueError:
        return response.text[:200]


def enrol_device(server_url: str, token: str, hostname: str | None = None, os_user: str | None = None) -> str:
    """Enrol this PC with an enrolment token; returns the device credential (shown to no one).
    ``os_user``: who asked (the PC's device broker enrols for a user's recorder); default: us."""
    body = {
        "token": token.strip(),
        "hostname": hostname or socket.gethostname(),
        "os_user": host_identity.os_user() if os_user is None else os_user,
    }
    try:
        with httpx.Client(timeout=_TIMEOUT) as client:
            response = client.post(f"{server_url}/api/devices/enroll", json=body)
    except httpx.HTTPError as exc:
        raise ServerUnreachableError(f"cannot reach {server_url}: {exc}") from exc
    if response.status_code != 200:
        raise EnrolmentRefusedError(
            f"device enrolment refused (HTTP {response.status_code}): {_message(response)}"
        )
    return str(response.json()["credential"])


@dataclass
class Binding:
    agent: str
    token: str


class DeviceRunner:
    """One recorder session per binding, switched by the desktop's pair/unpair requests."""

    def __init__(
        self,
        device: DeviceCredential,
        spool_root: Path,
        *,
        fps: float,
        monitor: int,
        self_update: SelfUpdate | None = None,
    ) -> None:
        self.server_url = device.server_url
        self._device = device  # in this user's keyring, or held by the PC's broker
        self._spool_root = spool_root
        self._fps = fps
        self._monitor = monitor
        self._self_update = self_update  # publishes activity, re-executes into a new version when idle
        self.binding: Binding | None = None
        self._changed = asyncio.Event()
        self._session_stop: asyncio.Event | None = None
        self._switching = False

    async def handle(self, request: PairingRequest) -> str:
        """The pairing endpoint's handler: pair or unpair with the server, then switch sessions."""
        try:
            reply = await asyncio.to_thread(self._device.call, request.op, request.ticket)
        except CredentialsError as exc:
            log.error("%s: %s", request.op, exc)
            raise PairingError(str(exc)) from exc
        if reply.status not in (200, 204):
            message = f"the server refused ({reply.status}): {reply.message()}"
            log.error("%s %s", request.op, message)
            problem_report.record_pair_refusal(reply.status, reply.body, message)  # a revoked device
            raise PairingError(message)
        if request.op == "pair":
            data = reply.body
            self.binding = Binding(str(data["agent_username"]), str(data["token"]))
            log.info("paired: recording %s on this PC", self.binding.agent)
            problem_report.started()  # a credential refused before is over
        else:
            log.info("unpaired: %s logged out", self.binding.agent if self.binding else "nobody")
            self.binding = None
        self._switch()
        return self.binding.agent if self.binding else ""

    def spool_dir(self, agent: str) -> Path:
        """The agent's own spool directory (his name made safe for a path)."""
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", agent).lstrip(".") or "_"
        return self._spool_root / "agents" / safe

    def _switch(self) -> None:
        self._switching = True
        self._changed.set()
        if self._session_stop is not None:
            self._session_stop.set()

    async def _wait_unbound(self, stop: asyncio.Event) -> bool:
        """Nobody logged in: wait for a binding or ``stop``. Meanwhile the recorder is idle for the
        updater, and re-executes into a new version at once (True) -- no session to wait for."""
        self._changed.clear()
        tasks = {asyncio.create_task(self._changed.wait()), asyncio.create_task(stop.wait())}
        hook, hook_stop = self._self_update, asyncio.Event()
        hook_task = None
        if hook is not None:
            hook.hold = False
            idle = Activity("idle", in_call=False, pending_segments=0, uploading=False)
            hook_task = asyncio.create_task(hook.run(lambda: (idle, False), hook_stop))
            tasks.add(asyncio.create_task(hook_stop.wait()))
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        if hook_task is not None:
            hook_stop.set()
            await hook_task
        return hook is not None and hook.exec_program is not None

    async def run(self, socket_path: Path, stop: asyncio.Event) -> None:
        from recorder_service.service import _install_signal_handlers, run_service

        loop = asyncio.get_running_loop()
        endpoint = PairingServer(socket_path, self.handle)
        await endpoint.start()
        if self._self_update is not None:  # unbound, listening is all it does (updater/health.py)
            self._self_update.mark_healthy()
        try:
            while not stop.is_set():
                _install_signal_handlers(loop, stop)  # run_service took them for its own session
                binding = self.binding
                if binding is None:
                    if await self._wait_unbound(stop):
                        stop.set()  # a new version is installed: main re-executes into it
                    continue
                self._switching = False
                self._session_stop = asyncio.Event()
                if self._self_update is not None:  # an agent is paired: move only after his logout
                    self._self_update.hold = True
                await run_service(
                    self.server_url,
                    lambda token=binding.token: token,  # type: ignore[misc]
                    Spool(self.spool_dir(binding.agent)),
                    fps=self._fps,
                    monitor=self._monitor,
                    stop=self._session_stop,
                    self_update=self._self_update,
                )
                self._session_stop = None
                if not self._switching:  # SIGTERM/SIGINT, not a new binding: the recorder stops
                    stop.set()
        finally:
            await endpoint.close()
