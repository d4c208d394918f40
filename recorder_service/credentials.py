"""Where the recorder keeps its token: the OS keyring.

The token is a recorder-scope token from a one-time enrolment code (``tandem-recorder login
--enroll-code``); no password login yields one.

The token is stored under service ``tandem-recorder`` with the server URL as user name, plus
the last server logged in to (so ``run`` and ``logout`` need no ``--server``).

Without a desktop keyring (keyring's ``fail`` or ``null`` backend, or only the keyrings.alt file
backends, which keyring would otherwise pick silently) the recorder refuses to store anything,
unless a file is named explicitly with ``--keyring-file`` / ``TANDEM_RECORDER_KEYRING_FILE``.
That file is **plaintext** (keyrings.alt ``PlaintextKeyring``; mode 0600): anyone who can read it
can upload as this agent's recorder for the token's lifetime (``recorder_token_ttl_days`` on the
server, 30 by default). It is opt-in because headless machines and
tests have no keyring, and the administrator must knowingly accept that trade-off.

The token itself is never logged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import keyring
import keyring.errors

from recorder_service.device_broker_wire import DeviceReply
from recorder_service.errors import CredentialsError

SERVICE = "tandem-recorder"
_DEFAULT_SERVER_KEY = "__default_server__"
_DEVICE_PREFIX = "device:"  # the device credential's key: "device:<server URL>"
_NOT_DESKTOP_MODULES = ("keyring.backends.fail", "keyring.backends.null", "keyrings.alt")


class DeviceCredential(Protocol):
    """What a device recorder (device_session.DeviceRunner) needs of its PC's device credential:
    the two calls made with it, ``pair`` (with a desktop's ticket) and ``unpair``. Two places hold
    it (device_broker_client.py): this user's keyring (dev and test installs, Windows for now) or
    the PC's root-only broker, which makes the call itself and never hands the credential out.

    ``call`` returns the server's answer; CredentialsError when the server or the broker could not
    be asked (the message says which and why)."""

    server_url: str

    def call(self, op: str, ticket: str = "") -> DeviceReply: ...


def _is_desktop_backend(backend: Any) -> bool:
    children = getattr(backend, "backends", None)
    if children is not None:  # keyring's ChainerBackend
        return any(_is_desktop_backend(child) for child in children)
    module = type(backend).__module__
    return not module.startswith(_NOT_DESKTOP_MODULES)


def plaintext_file_keyring(path: Path) -> Any:
    from keyrings.alt.file import PlaintextKeyring

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Create it 0600 before keyrings.alt writes to it: it keeps an existing file's mode.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        os.close(fd)
        os.chmod(path, 0o600)
    except OSError as exc:
        raise CredentialsError(f"cannot create keyring file {path}: {exc}") from exc
    backend = PlaintextKeyring()
    backend.file_path = str(path)  # instance-level override, supported by keyrings.alt
    return backend


class TokenStore:
    def __init__(self, keyring_file: Path | None = None) -> None:
        if keyring_file is not None:
            self._backend = plaintext_file_keyring(keyring_file)
        else:
            backend = keyring.get_keyring()
            if not _is_desktop_backend(backend):
                raise CredentialsError(
                    f"no desktop keyring is available (keyring chose {type(backend).__name__}). "
                    "Use a desktop session with a keyring, or accept a plaintext token file with "
                    "--keyring-file PATH (or TANDEM_RECORDER_KEYRING_FILE)."
                )
            self._backend = backend

    def _get(self, key: str) -> str | None:
        try:
            value = self._backend.get_password(SERVICE, key)
        except keyring.errors.KeyringError as exc:
            raise CredentialsError(f"keyring read failed: {exc}") from exc
        return None if value is None else str(value)

    def save(self, server_url: str, token: str) -> None:
        try:
            self._backend.set_password(SERVICE, server_url, token)
            self._backend.set_password(SERVICE, _DEFAULT_SERVER_KEY, server_url)
        except keyring.errors.KeyringError as exc:
            raise CredentialsError(f"keyring write failed: {exc}") from exc

    def token(self, server_url: str) -> str:
        value = self._get(server_url)
        if not value:
            raise CredentialsError(
                f"not logged in to {server_url}: run `tandem-recorder login --server URL --enroll-code CODE`"
            )
        return value

    def save_device(self, server_url: str, credential: str) -> None:
        """This PC's device credential (from an enrolment token; see device_session.py)."""
        try:
            self._backend.set_password(SERVICE, _DEVICE_PREFIX + server_url, credential)
            self._backend.set_password(SERVICE, _DEFAULT_SERVER_KEY, server_url)
        except keyring.errors.KeyringError as exc:
            raise CredentialsError(f"keyring write failed: {exc}") from exc

    def device_credential(self, server_url: str) -> str | None:
        return self._get(_DEVICE_PREFIX + server_url) or None

    def default_server(self) -> str | None:
        return self._get(_DEFAULT_SERVER_KEY)

    def delete(self, server_url: str) -> bool:
        removed = False
        for key in (server_url, _DEFAULT_SERVER_KEY):
            try:
                self._backend.delete_password(SERVICE, key)
                removed = removed or key == server_url
            except keyring.errors.PasswordDeleteError:
                continue
            except keyring.errors.KeyringError as exc:
                raise CredentialsError(f"keyring delete failed: {exc}") from exc
        return removed
