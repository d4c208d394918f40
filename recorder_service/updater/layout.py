"""Where the installed software lives and what the last update check said -- read by the running
recorder (its heartbeat, its re-execution) and written by the system updater; nothing heavy here.

    <root>/versions/<v>/tandem-recorder/tandem-recorder   one directory per version
    <root>/current -> versions/<v>                       what launchers start
    <root>/update-state.json                              the last update check (0644: every user reads it)

``current`` is a symlink on Linux and a directory junction on Windows (``layout_windows``): both
behind ``CurrentLink`` (``apply.current_link`` picks one), which is all the updater
(``system.py``) and the recorder (``in_recorder.py``) use. Which old versions go is decided
here, the same on both (``versions_to_remove``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol

from packaging.version import InvalidVersion, Version

INSTALL_ROOT_ENV = "TANDEM_INSTALL_ROOT"  # tests; a bundle finds its root from its own path
STATE_FILE = "update-state.json"
UPDATE_STATES = ("off", "up_to_date", "waiting", "applied", "refused", "rolled_back", "failed")
CURRENT = "current"


class LayoutError(Exception):
    """``current`` could not be switched, or a version could not go; the message says why."""


def versions_dir(root: Path) -> Path:
    return root / "versions"


class CurrentLink(Protocol):
    """What ``current`` names, switching it, removing an old version -- per platform."""

    def current(self, root: Path) -> str | None: ...  # the version ``current`` names, or None
    def switch(self, root: Path, version: str) -> None: ...  # atomic for every reader; LayoutError
    def remove_version(self, root: Path, version: str, running: set[str]) -> None: ...


class SymlinkCurrent:
    """Linux: ``current`` is a relative symlink, replaced by renaming a new one over it."""

    def current(self, root: Path) -> str | None:
        link = root / CURRENT
        if not link.is_symlink():
            return None
        return Path(os.readlink(link)).name

    def switch(self, root: Path, version: str) -> None:
        target = versions_dir(root) / version
        if not target.is_dir():
            raise LayoutError(f"{target} is not an installed version")
        tmp = root / ".current.new"
        tmp.unlink(missing_ok=True)
        os.symlink(Path("versions") / version, tmp)  # relative: the tree may be mounted elsewhere
        os.replace(tmp, root / CURRENT)  # rename(2) over the old link: atomic

    def remove_version(self, root: Path, version: str, running: set[str]) -> None:
        if version == self.current(root) or version in running:
            raise LayoutError(f"refusing to remove {version}: it is current or a recorder runs it")
        shutil.rmtree(versions_dir(root) / version, ignore_errors=True)


def version_order(version: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)  # an odd name sorts below every real version: it goes first


def versions_to_remove(
    installed: Iterable[str],
    *,
    current: str | None,
    previous: str | None,
    running: set[str],
    ours: set[str],
    keep_old: int = 1,
) -> list[str]:
    """The old versions to delete after a switch: only ones the updater installed (``ours``:
    the package's or MSI's own are the package manager's), never ``current`` nor one a live
    recorder runs, and ``keep_old`` others kept for a rollback -- ``previous`` (what ran before
    the switch) first, then the newest."""
    candidates = sorted((v for v in set(installed) if v != current and v not in running), key=version_order)
    kept: list[str] = [previous] if previous in candidates and keep_old > 0 else []
    for version in reversed(candidates):
        if len(kept) >= keep_old:
            break
        if version not in kept:
            kept.append(version)
    return [v for v in candidates if v not in kept and v in ours]


def install_root(env: Mapping[str, str] | None = None) -> Path | None:
    """The install root whose ``versions/<v>/tandem-recorder/`` this program runs from, or None
    (a source checkout, an old flat install): then the recorder never re-executes."""
    env = os.environ if env is None else env
    if env.get(INSTALL_ROOT_ENV):
        return Path(env[INSTALL_ROOT_ENV])
    if getattr(sys, "frozen", False):
        exe = Path(sys.executable).resolve()  # through current -> versions/<v>
        if len(exe.parents) > 3 and exe.parents[2].name == "versions":
            return exe.parents[3]
    return None


def write_state(root: Path, state: Mapping[str, object]) -> None:
    tmp = root / f".{STATE_FILE}.tmp"
    with contextlib.suppress(OSError):
        tmp.write_text(json.dumps(dict(state)))
        tmp.chmod(0o644)
        os.replace(tmp, root / STATE_FILE)


def read_state(root: Path) -> dict[str, object] | None:
    try:
        data = json.loads((root / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def update_summary(root: Path | None) -> tuple[str, str]:
    """(state, detail) of the last update check on this PC, for the heartbeat; ("", "") if none."""
    state = read_state(root) if root is not None else None
    if state is None or state.get("state") not in UPDATE_STATES:
        return "", ""
    return str(state["state"]), str(state.get("reason", ""))[:300]


VERSION_ENV = "TANDEM_RECORDER_VERSION"  # the fake bundles of the e2e test stamp their version here


def installed_version(env: Mapping[str, str] | None = None) -> str:
    """This program's version as the install tree names it: a stamp in the environment (the e2e
    test's fake bundles), else an installed bundle's ``versions/<v>/`` directory -- what the
    self-updater compares and switches (the release's version; the bundle's own stamp is normally
    the same) -- else the package metadata.

    The name, not the bundle's stamp, on purpose: the updater names each directory by the version
    the release was *published* as, and compares that with the offers. Were the stamp compared, a
    release published under another version than its stamp (the installer test republishes the
    package's own build as 0.1.1) would be offered again at every check and never be moved to. So
    every installer names the directory by the full stamp too (the .deb, and the MSI's
    BundleVersion -- not its numeric ProductVersion)."""
    env = os.environ if env is None else env
    if env.get(VERSION_ENV):
        return env[VERSION_ENV]
    if getattr(sys, "frozen", False):
        exe = Path(sys.executable).resolve()
        if len(exe.parents) > 3 and exe.parents[2].name == "versions":
            return exe.parents[1].name
    from importlib import metadata

    try:
        return metadata.version("tandem-recording")
    except metadata.PackageNotFoundError:  # a bundle without its dist-info
        return "unknown"
