"""Install a verified release beside the running one, and point ``current`` at a version.

Layout under the install root (``/opt/tandem`` or ``C:\\Program Files\\Tandem``)::

    versions/0.1.0/   the bundle that runs now
    versions/0.2.0/   the new one, unpacked whole before anything points at it
    current -> versions/0.1.0    what launchers start; a symlink on Linux, a junction on Windows

``unpack`` works in ``versions/.<v>.partial`` and renames it into place (an interrupted unpack
leaves no half version). ``switch_current`` is the platform's atomic switch (``layout.CurrentLink``).
Testing the new version before the switch, and what happens when it fails, is ``system.py``'s.
"""

from __future__ import annotations

import os
import shutil
import sys
import tarfile
from pathlib import Path

from recorder_service.updater.layout import CurrentLink, LayoutError, SymlinkCurrent, versions_dir


class ApplyError(Exception):
    """The release could not be installed; the running version is untouched."""


__all__ = [
    "ApplyError",
    "current_link",
    "current_version",
    "failed_versions",
    "switch_current",
    "unpack",
    "versions_dir",
]


def current_link() -> CurrentLink:
    """This platform's ``current``: a symlink, or on Windows a junction (``layout_windows``)."""
    if sys.platform == "win32":  # pragma: no cover - Windows only
        from recorder_service.updater.layout_windows import JunctionCurrent, Win32Junctions

        return JunctionCurrent(Win32Junctions())
    return SymlinkCurrent()


def current_version(root: Path) -> str | None:
    """The version ``current`` names (None: no ``current``, or not one of ours)."""
    return current_link().current(root)


def failed_versions(root: Path) -> set[str]:
    return {p.name[: -len(".failed")] for p in versions_dir(root).glob("*.failed")}


def switch_current(root: Path, version: str) -> None:
    """Point ``current`` at ``versions/<version>``, atomically for every reader; ApplyError
    (``current`` unchanged) when it cannot."""
    try:
        current_link().switch(root, version)
    except (LayoutError, OSError) as exc:
        raise ApplyError(str(exc)) from exc


def unpack(root: Path, version: str, archive: Path) -> Path:
    """Unpack the release archive into ``versions/<version>`` (whole, or not at all)."""
    if "/" in version or "\\" in version or version.startswith("."):
        raise ApplyError(f"{version!r} is not a version directory name")
    final = versions_dir(root) / version
    if current_version(root) == version:
        raise ApplyError(f"{version} is the running version")
    partial = versions_dir(root) / f".{version}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            # the "data" filter refuses absolute paths, "..", device files and links out of the tree
            tar.extractall(partial, filter="data")
    except (tarfile.TarError, OSError) as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise ApplyError(f"cannot unpack release {version} from {archive}: {exc}") from exc
    shutil.rmtree(final, ignore_errors=True)  # a leftover of an earlier failed attempt
    os.replace(partial, final)
    return final
