"""The updater's counterpart inside each running recorder.

The recorder cannot update itself: it runs as the logged-in user and ``/opt/tandem`` is root's.
The system updater (``system.py``) installs a new version and switches ``current``; this module
does the two things only the recorder can do:

1. publish what it is doing (``activity_file``): every change at once, and every 10 s anyway --
   and whether it is healthy (``mark_healthy``: its server session was accepted), by which the
   updater confirms a new version or rolls it back (``health``);
2. once ``current`` points at another version and this recorder is idle (no capture, no call,
   no after-call work, nothing left to upload), stop its service cleanly and let ``main``
   re-execute the program under ``current`` with the same arguments (``os.execv``: same pid, so
   the session's autostart entry still "owns" it). The new version's first record and heartbeat
   carry its version: that is how the fleet page sees the update land.

A recorder that re-executed into ``current`` but still is not that version (a bundle whose stamp
does not match its directory) would loop; ``TANDEM_REEXEC_TO`` names the version it was started
to be, and a mismatch turns re-execution off for the process's life (logged).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NoReturn

from recorder_service.updater.activity_file import ActivityRecord, now, remove_record, state_of, write_record
from recorder_service.updater.apply import current_version, failed_versions
from recorder_service.updater.layout import installed_version
from recorder_service.updater.policy import Activity

log = logging.getLogger(__name__)

REEXEC_ENV = "TANDEM_REEXEC_TO"
REWRITE_SECONDS = 10.0


def program_in(root: Path) -> Path:
    name = "tandem-recorder.exe" if sys.platform == "win32" else "tandem-recorder"
    return root / "current" / "tandem-recorder" / name


def running_version(env: Mapping[str, str] | None = None) -> str:
    """This process's version as the install tree names it (the directory under versions/)."""
    return installed_version(env)


class SelfUpdate:
    def __init__(
        self,
        *,
        root: Path | None,
        version: str,
        directory: Path,
        interval: float = 2.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.root, self.version, self.directory, self.interval = root, version, directory, interval
        self.exec_program: Path | None = None  # set when the service stopped to re-execute
        self._env = os.environ if env is None else env
        self._disabled = ""
        self._write_failed = False
        self.pid = os.getpid()
        # True while re-executing would lose state the new process cannot get back: a device
        # recorder's pairing with the agent logged in on the desktop (the desktop pairs only at
        # login). The recorder still publishes; it moves once the agent has logged out.
        self.hold = False
        # Set once this process's server session was accepted (``mark_healthy``; ``health`` says
        # what counts): the updater confirms the version it switched to, or rolls it back, by it.
        self.healthy = False

    def mark_healthy(self) -> None:
        """This process works in the real session: published with the next record (at once)."""
        if not self.healthy:
            log.info("self-update: recorder %s healthy (server session accepted)", self.version)
        self.healthy = True

    def due(self, state: str) -> Path | None:
        """The program to re-execute now, or None."""
        if self.root is None or state != "idle" or self._disabled or self.hold:
            return None
        target = current_version(self.root)
        if target is None or target == self.version or target in failed_versions(self.root):
            return None
        if self._env.get(REEXEC_ENV) == target:
            self._disabled = f"started as {target} but running {self.version}: not re-executing again"
            log.error("self-update: %s (is the bundle's version stamp its directory name?)", self._disabled)
            return None
        program = program_in(self.root)
        return program if program.exists() else None

    def publish(self, state: str, detail: str) -> None:
        record = ActivityRecord(self.pid, self.version, state, detail, now(), self.healthy)
        try:
            write_record(self.directory, record)
        except OSError as exc:
            if not self._write_failed:  # once: the updater then cannot see this recorder
                log.warning(
                    "cannot write the activity record in %s (updates will not wait for us): %s",
                    self.directory,
                    exc,
                )
            self._write_failed = True
        else:
            self._write_failed = False

    async def run(self, activity: Callable[[], tuple[Activity, bool]], stop_service: asyncio.Event) -> None:
        """Until ``stop_service``: publish; when due, record the program and stop the service."""
        last: tuple[str, str, bool] | None = None
        written = 0.0
        while not stop_service.is_set():
            try:
                state, detail = state_of(*activity())
                if (state, detail, self.healthy) != last or now() - written >= REWRITE_SECONDS:
                    await asyncio.to_thread(self.publish, state, detail)
                    last, written = (state, detail, self.healthy), now()
                program = self.due(state)
            except Exception:  # the update machinery must never take the recorder down
                log.exception("self-update check failed")
                program = None
            if program is not None:
                log.info(
                    "self-update: %s is installed and this recorder is idle: restarting into it",
                    current_version(self.root or Path()),
                )
                self.exec_program = program
                stop_service.set()
                return
            try:
                await asyncio.wait_for(stop_service.wait(), timeout=self.interval)
            except TimeoutError:
                pass

    def forget(self) -> None:
        """The recorder stops for good: its record goes (a re-executing one keeps it: same pid)."""
        if self.exec_program is None:
            remove_record(self.directory, self.pid)


def exec_environment(env: Mapping[str, str], version: str) -> dict[str, str]:
    """The environment for the new version: a PyInstaller bundle's bootloader leaves its own state
    in ours (``_PYI_*``: its archive and home directory; ``LD_LIBRARY_PATH`` with the old bundle
    first), which would make the new bundle's bootloader run as a child of the old one or load the
    old version's libraries. So: those go, ``LD_LIBRARY_PATH`` is what it was before the bootloader
    (``LD_LIBRARY_PATH_ORIG``), and ``PYINSTALLER_RESET_ENVIRONMENT`` tells the new bootloader it is
    a new program (PyInstaller 6.10+)."""
    out = {k: v for k, v in env.items() if not k.startswith("_PYI_") and k != "_MEIPASS2"}
    if "LD_LIBRARY_PATH_ORIG" in out:
        out["LD_LIBRARY_PATH"] = out.pop("LD_LIBRARY_PATH_ORIG")
    elif getattr(sys, "frozen", False):
        out.pop("LD_LIBRARY_PATH", None)  # the bootloader set it: there was none before
    out["PYINSTALLER_RESET_ENVIRONMENT"] = "1"
    out[REEXEC_ENV] = version
    return out


def exec_program(program: Path, argv: list[str], version: str) -> NoReturn:
    """Replace this process with ``program`` (same pid, same arguments)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(program, [str(program), *argv], exec_environment(os.environ, version))
