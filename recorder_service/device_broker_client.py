"""The two places a device recorder's credential can live (credentials.DeviceCredential), and the
rule that picks one for a user's recorder (device_broker_wire.credential_source):

* ``LocalDeviceCredential`` -- the credential in this user's keyring or 0600 file, enrolled by the
  user's own recorder. Kept for dev and test installs, a PC without the package, and Windows
  (which has no broker yet).
* ``BrokerDeviceCredential`` -- the PC's root broker (device_broker.py) holds the credential in a
  root-only file and makes the call for us; every OS user of the PC shares one device.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import httpx

from recorder_service.credentials import DeviceCredential, TokenStore
from recorder_service.device_broker_wire import (
    BrokerError,
    BrokerRequest,
    DeviceReply,
    broker_socket_path,
    credential_source,
    encode_request,
    parse_reply,
)
from recorder_service.errors import CredentialsError
from recorder_service.machine_config import AgentSettings, exposed_token_warning

log = logging.getLogger(__name__)

_TIMEOUT = httpx.Timeout(connect=10.0, read=30.0, write=30.0, pool=10.0)
BROKER_TIMEOUT = 90.0  # the broker may enrol first, then pair: two server calls of up to 30 s
_PATHS = {"pair": "/api/devices/pair", "unpair": "/api/devices/unpair"}


def device_call(
    server_url: str, credential: str, op: str, ticket: str = "", os_user: str = ""
) -> DeviceReply:
    """``POST /api/devices/pair`` (with the ticket, and the OS user it is for when the PC's broker
    asks for another user's recorder) or ``/api/devices/unpair`` with the credential."""
    body = {"ticket": ticket} if op == "pair" else {}
    if op == "pair" and os_user:
        body["os_user"] = os_user
    try:
        with httpx.Client(timeout=_TIMEOUT) as client:
            response = client.post(
                f"{server_url}{_PATHS[op]}", json=body, headers={"Authorization": f"Bearer {credential}"}
            )
    except httpx.HTTPError as exc:
        raise CredentialsError(f"cannot reach {server_url}: {exc}") from exc
    try:
        data = response.json() if response.content else {}
    except ValueError:
        data = {"message": response.text[:200]}
    return DeviceReply(response.status_code, data if isinstance(data, dict) else {"message": str(data)})


class LocalDeviceCredential:
    def __init__(self, server_url: str, credential: str) -> None:
        self.server_url = server_url
        self._credential = credential

    def call(self, op: str, ticket: str = "") -> DeviceReply:
        return device_call(self.server_url, self._credential, op, ticket)


class BrokerDeviceCredential:
    """Asks the PC's device broker on its Unix socket; one connection per call."""

    def __init__(self, server_url: str, path: Path, timeout: float = BROKER_TIMEOUT) -> None:
        self.server_url = server_url
        self.path = path
        self._timeout = timeout

    def call(self, op: str, ticket: str = "") -> DeviceReply:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self._timeout)
                sock.connect(str(self.path))
                sock.sendall(encode_request(BrokerRequest(op, ticket)))
                data = b""
                while not data.endswith(b"\n") and len(data) <= 65536:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            reply, server = parse_reply(data)
        except OSError as exc:
            raise CredentialsError(f"the PC's device broker ({self.path}) did not answer: {exc}") from exc
        except BrokerError as exc:
            raise CredentialsError(f"the PC's device broker: {exc}") from exc
        if server and server != self.server_url:
            # The agent token in the reply is for the broker's server; ours would refuse it.
            raise CredentialsError(
                f"this PC is enrolled with {server} (/etc/tandem/agent.toml), "
                f"but this recorder is set up for {self.server_url}"
            )
        return reply


def device_credential_for(
    store: TokenStore | None, server_url: str, settings: AgentSettings, socket_path: Path | None = None
) -> DeviceCredential:
    """The device credential this user's recorder uses (credential_source's rule); enrols into the
    user's keyring when there is neither a stored credential nor a broker."""
    from recorder_service.device_session import enrol_device

    local = store.device_credential(server_url) if store is not None else None
    path = socket_path or broker_socket_path()
    if warning := exposed_token_warning(settings):
        log.warning("%s", warning)
    source = credential_source(local is not None, path.exists())
    if local is not None:
        log.info("device credential: this user's keyring")
        return LocalDeviceCredential(server_url, local)
    if source == "broker":
        log.info("device credential: held by the PC's device broker (%s)", path)
        return BrokerDeviceCredential(server_url, path)
    if store is None:
        raise CredentialsError(
            f"no device broker on this PC ({path}) and no keyring to keep a device credential in"
        )
    if not settings.enroll_token and settings.root_token_file:
        raise CredentialsError(
            f"this PC's enrolment token is in {settings.root_token_file} (root only) and its device "
            f"broker does not listen on {path}: start it (systemctl start tandem-device.socket)"
        )
    log.info(
        "enrolling this PC with %s (enrolment token from %s)", server_url, settings.sources["enroll_token"]
    )
    credential = enrol_device(server_url, settings.enroll_token or "")
    store.save_device(server_url, credential)
    log.info("enrolled: this PC's recorder records whoever logs in on its desktop")
    return LocalDeviceCredential(server_url, credential)
