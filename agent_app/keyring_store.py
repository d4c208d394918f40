"""Remember me: the last server, user and DN, and the password, in the OS keyring.

Service ``tandem-agent``: the entry ``__last__`` holds ``server\\nuser\\ndn`` and the entry
``<server>|<user>`` the password. With no desktop keyring (keyring's ``fail``/``null`` backends
or only keyrings.alt's file backends, which keyring would pick silently) nothing is stored and
the form says "remember me" is unavailable — a password is never written to a plaintext file
unless one is named on purpose (``TANDEM_AGENT_KEYRING_FILE``: for CI and kiosks, mode 0600).
Every call here blocks (a keyring may ask the user to unlock it): run it off the Qt thread.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keyring
import keyring.errors

from agent_app.errors import AgentAppError

SERVICE = "tandem-agent"
LAST = "__last__"
FILE_ENV = "TANDEM_AGENT_KEYRING_FILE"
_NOT_DESKTOP = ("keyring.backends.fail", "keyring.backends.null", "keyrings.alt")


class KeyringUnavailable(AgentAppError):
    pass


@dataclass(frozen=True, slots=True)
class Remembered:
    server_url: str
    username: str
    dn: str
    password: str


def _is_desktop_backend(backend: Any) -> bool:
    children = getattr(backend, "backends", None)
    if children is not None:  # keyring's ChainerBackend
        return any(_is_desktop_backend(child) for child in children)
    return not type(backend).__module__.startswith(_NOT_DESKTOP)


def _file_backend(path: Path) -> Any:
    from keyrings.alt.file import PlaintextKeyring

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)  # 0600 before keyrings.alt writes it
    os.close(fd)
    os.chmod(path, 0o600)
    backend = PlaintextKeyring()
    backend.file_path = str(path)
    return backend


class CredentialStore:
    def __init__(self, env: Mapping[str, str] | None = None, backend: Any = None) -> None:
        env = os.environ if env is None else env
        self._env_file = env.get(FILE_ENV, "")
        self._backend = backend

    def _keyring(self) -> Any:
        if self._backend is None:
            if self._env_file:
                self._backend = _file_backend(Path(self._env_file))
            else:
                chosen = keyring.get_keyring()
                if not _is_desktop_backend(chosen):
                    raise KeyringUnavailable(
                        "Remember me needs the desktop's keyring, and none is available here."
                    )
                self._backend = chosen
        return self._backend

    def load(self) -> Remembered | None:
        try:
            ring = self._keyring()
            last = ring.get_password(SERVICE, LAST)
            if not last:
                return None
            server, user, dn = [*str(last).split("\n"), "", "", ""][:3]
            password = ring.get_password(SERVICE, f"{server}|{user}") or ""
        except keyring.errors.KeyringError as exc:
            raise KeyringUnavailable(f"The keyring could not be read: {exc}") from exc
        return Remembered(server, user, dn, str(password))

    def save(self, remembered: Remembered) -> None:
        try:
            ring = self._keyring()
            old = self.load()
            if old is not None and (old.server_url, old.username) != (
                remembered.server_url,
                remembered.username,
            ):
                self._delete(ring, f"{old.server_url}|{old.username}")
            ring.set_password(
                SERVICE, LAST, "\n".join((remembered.server_url, remembered.username, remembered.dn))
            )
            ring.set_password(SERVICE, f"{remembered.server_url}|{remembered.username}", remembered.password)
        except keyring.errors.KeyringError as exc:
            raise KeyringUnavailable(f"The keyring could not store the login: {exc}") from exc

    def forget(self) -> None:
        try:
            ring = self._keyring()
            old = self.load()
            if old is not None:
                self._delete(ring, f"{old.server_url}|{old.username}")
            self._delete(ring, LAST)
        except keyring.errors.KeyringError as exc:
            raise KeyringUnavailable(f"The keyring could not forget the login: {exc}") from exc

    @staticmethod
    def _delete(ring: Any, key: str) -> None:
        try:
            ring.delete_password(SERVICE, key)
        except keyring.errors.PasswordDeleteError:
            pass  # nothing stored under it
