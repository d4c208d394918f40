"""Install a verified release beside the running one and switch to it only if it comes up healthy.

Layout under the install root (``/opt/tandem`` or ``C:\\Program Files\\Tandem``)::

    versions/0.1.0/   the bundle that runs now
    versions/0.2.0/   the new one, unpacked whole before anything points at it
    current -> versions/0.1.0    the one symlink launchers use; switched with one rename

Steps: unpack into ``versions/.<v>.partial`` and rename it into place (an interrupted unpack leaves
no half version); point ``current`` at it with ``os.replace`` of a fresh symlink (atomic: a launcher
sees the old target or the new one, never none); start the new version with
``TANDEM_UPDATE_HEALTH_FILE`` naming a file it must write ``{"version": ..., "healthy": true}`` to
once it is up; wait for that with a deadline. If the file says unhealthy, the process exits, or
the deadline passes, the new process is stopped, ``current`` goes back to the old version and the
version is marked failed (``versions/<v>.failed``: not tried again until IT publishes another).
The old version is never stopped by this module: the caller (the running recorder, idle by
policy) exits only after a successful switch.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

HEALTH_ENV = "TANDEM_UPDATE_HEALTH_FILE"


class ApplyError(Exception):
    """The release could not be installed; the running version is untouched."""


@dataclass(frozen=True)
class Applied:
    version: str
    healthy: bool
    reason: str
    process: subprocess.Popen[bytes] | None  # the new version, running (None after a rollback)


def versions_dir(root: Path) -> Path:
    return root / "versions"


def current_version(root: Path) -> str | None:
    link = root / "current"
    if not link.is_symlink():
        return None
    return Path(os.readlink(link)).name


def failed_versions(root: Path) -> set[str]:
    return {p.name[: -len(".failed")] for p in versions_dir(root).glob("*.failed")}


def switch_current(root: Path, version: str) -> None:
    """Point ``current`` at ``versions/<version>`` atomically (rename over the old link)."""
    target = versions_dir(root) / version
    if not target.is_dir():
        raise ApplyError(f"{target} is not an installed version")
    tmp = root / ".current.new"
    tmp.unlink(missing_ok=True)
    os.symlink(Path("versions") / version, tmp)  # relative: the tree may be moved or mounted elsewhere
    os.replace(tmp, root / "current")


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


def _read_health(path: Path) -> dict[str, object] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # not written yet, or half written
    return data if isinstance(data, dict) else None


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def apply_release(
    root: Path,
    version: str,
    archive: Path,
    entry: Sequence[str],
    *,
    health_timeout: float = 60.0,
    clock: Callable[[], float] = time.monotonic,
) -> Applied:
    """Install ``archive`` as ``version``, switch to it, start ``entry`` (a path inside the bundle,
    then its arguments) from ``current`` and keep it only if it reports healthy in time."""
    previous = current_version(root)
    unpack(root, version, archive)
    switch_current(root, version)
    health = root / f".health-{version}.json"
    health.unlink(missing_ok=True)
    program = root / "current" / entry[0]
    try:
        process = subprocess.Popen([str(program), *entry[1:]], env={**os.environ, HEALTH_ENV: str(health)})
    except OSError as exc:
        return _roll_back(root, version, previous, None, f"cannot start {program}: {exc}")
    deadline = clock() + health_timeout
    while True:
        report = _read_health(health)
        if report is not None:
            if report.get("healthy") is True and report.get("version") == version:
                return Applied(version, True, f"{version} started and reported healthy", process)
            return _roll_back(root, version, previous, process, f"{version} reported unhealthy: {report}")
        code = process.poll()
        if code is not None:
            return _roll_back(
                root,
                version,
                previous,
                process,
                f"{version} exited with code {code} before reporting healthy",
            )
        if clock() > deadline:
            return _roll_back(
                root,
                version,
                previous,
                process,
                f"{version} did not report healthy within {health_timeout:g} s",
            )
        time.sleep(0.1)


def _roll_back(
    root: Path, version: str, previous: str | None, process: subprocess.Popen[bytes] | None, why: str
) -> Applied:
    if process is not None:
        _stop(process)
    if previous is not None:
        switch_current(root, previous)
    else:
        (root / "current").unlink(missing_ok=True)
    (versions_dir(root) / f"{version}.failed").write_text(why + "\n")
    return Applied(version, False, f"rolled back to {previous}: {why}", None)
