"""The package's own version: staged out of dpkg's reach, then made ``current`` at once or when idle.

Why: dpkg owns the files it unpacks, and an upgrade deletes the old package's files. Were the
package's bundles its files under ``versions/<v>/``, an ``apt-get install`` of a newer package
would delete the bundle every logged-in user's recorder is running -- and a PyInstaller one-folder
bundle loads its extension modules and data lazily, so a recorder in a call could crash at its
next import. So the package unpacks its payload into ``<root>/package/`` (dpkg's files; nothing
runs from there) and its postinst runs ``tandem-recorder install-package VERSION`` from there
(``install``):

1. **stage** (``stage``): ``versions/<v>/`` is made from ``package/`` with hard links -- the same
   files under a second name that is not dpkg's. dpkg replaces a file by renaming a new one over
   its name (never by writing into it), so the next upgrade leaves the staged names' contents as
   they are. A copy where hard links cannot be made (``versions/`` on another file system). Built
   in ``versions/.<v>.staging`` and renamed into place, so no half version is ever seen; an
   existing ``versions/<v>`` (a reconfigure, a reinstall, the same version the self-updater
   installed) is kept as it is.
2. **decide** (``plan``, pure): nothing runnable is ``current`` (a fresh install; or an upgrade from
   a package that owned ``versions/<v>/`` itself, whose files dpkg has just deleted) -> switch now;
   ``current`` is this version -> nothing; ``current`` is newer (the self-updater's) -> keep it, an
   apt upgrade never downgrades what runs; else every live recorder idle -> switch now, by the
   updater's own gate (``activity_file.gate`` over ``/run/tandem/activity``); else leave
   ``<root>/package-pending`` naming the version: the timer's next ``update-check`` whose gate
   opens switches (``apply_pending``, called by ``system.check``).
3. a switch away from a running version is provisional like a downloaded release's
   (``rollback``: ``update-watch.json``, confirmed or rolled back by the recorders' health), and
   old versions go by the updater's rule (``cleanup``: never one a live recorder runs).

Why ``/opt/tandem/package`` and not ``/usr/lib/tandem-agent``: hard links need one file system,
``versions/`` is under ``/opt/tandem``, and ``/opt`` is often its own mount on managed PCs (every
upgrade would then copy the ~400 MB bundles).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from recorder_service.updater import activity_file, cleanup, layout, rollback
from recorder_service.updater.apply import ApplyError, current_version, switch_current, versions_dir
from recorder_service.updater.cleanup import PACKAGE_DIR, STAGED_MARKER
from recorder_service.updater.health import DEFAULT_DEADLINE, HEALTH_DEADLINE_ENV, Watch
from recorder_service.updater.lock import locked
from recorder_service.updater.policy import Readiness

log = logging.getLogger(__name__)

PENDING_FILE = "package-pending"  # <root>/package-pending: the package version waiting for idle
PROGRAM = Path("tandem-recorder") / "tandem-recorder"  # what makes a version directory runnable

Action = Literal["switch", "pending", "keep"]


class StageError(Exception):
    """The package's payload could not be staged; the message says why."""


@dataclass(frozen=True)
class Plan:
    action: Action
    reason: str


@dataclass(frozen=True)
class Outcome:
    """``state`` is one of ``layout.UPDATE_STATES``; ``record``: worth writing to update-state.json
    (not a fresh install's first switch, nor "nothing to do")."""

    state: str
    reason: str
    version: str
    record: bool = True


def plan(package: str, current: str | None, current_runs: bool, readiness: Readiness) -> Plan:
    """Switch ``current`` to the package's version now, leave it pending, or keep what runs."""
    if current is None:
        return Plan("switch", f"{package} installed (no version was current)")
    if not current_runs:
        return Plan("switch", f"{package} installed ({current} under current has no program left)")
    if current == package:
        return Plan("keep", f"{package} is current already")
    if layout.version_order(current) > layout.version_order(package):
        return Plan("keep", f"keeping {current} (installed by the self-updater, newer than {package})")
    if readiness.ready:
        return Plan("switch", f"{package} replaces {current} ({readiness.reason})")
    return Plan(
        "pending",
        f"package {package} installed, switched to when every recorder is idle "
        f"({readiness.reason}); {current} keeps running",
    )


def runnable(root: Path, version: str | None) -> bool:
    return version is not None and (versions_dir(root) / version / PROGRAM).is_file()


def _link_or_copy(src: Path, dst: Path) -> bool:
    """Hard-link the tree; True if linked, False if copied (``versions/`` on another file system,
    or one that has no hard links: any failure to link falls back to a copy)."""
    try:
        shutil.copytree(src, dst, symlinks=True, copy_function=os.link)
        return True
    except (shutil.Error, OSError) as exc:  # copytree gathers each file's EXDEV into shutil.Error
        log.info("cannot hard-link %s into %s (%s): copying", src, dst, str(exc)[:200])
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, symlinks=True)
    return False


def stage(root: Path, version: str) -> bool:
    """Make ``versions/<version>/`` from ``package/`` (module docstring, step 1). True if it was
    made now, False if it was there already. StageError when the payload is not this version."""
    if not version or "/" in version or version.startswith("."):
        raise StageError(f"{version!r} is not a version directory name")
    final = versions_dir(root) / version
    if final.is_dir():
        return False
    payload = root / PACKAGE_DIR
    if cleanup.package_version(root) != version or not (payload / PROGRAM).is_file():
        raise StageError(
            f"{payload} does not hold version {version} (its VERSION says "
            f"{cleanup.package_version(root)!r}): reinstall the package"
        )
    versions_dir(root).mkdir(parents=True, exist_ok=True)
    partial = versions_dir(root) / f".{version}.staging"
    shutil.rmtree(partial, ignore_errors=True)  # a leftover of an interrupted postinst
    try:
        linked = _link_or_copy(payload, partial)
        (partial / STAGED_MARKER).write_text("hard links" if linked else "copy")
        os.replace(partial, final)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise StageError(f"cannot stage {payload} as {final}: {exc}") from exc
    return True


def read_pending(root: Path) -> str | None:
    try:
        return (root / PENDING_FILE).read_text().strip() or None
    except OSError:
        return None


def write_pending(root: Path, version: str) -> None:
    tmp = root / f".{PENDING_FILE}.tmp"
    tmp.write_text(version + "\n")
    tmp.chmod(0o644)
    os.replace(tmp, root / PENDING_FILE)


def clear_pending(root: Path) -> None:
    (root / PENDING_FILE).unlink(missing_ok=True)


def _readiness(activity_dir: Path) -> Readiness:
    """The self-updater's own gate: every live recorder on the PC says idle."""
    return activity_file.gate(activity_file.read_records(activity_dir))


def _switch(root: Path, version: str, activity_dir: Path, now: float, deadline: float) -> None:
    """Point ``current`` at ``version``; from a running version, provisionally (``rollback``)."""
    current = current_version(root)
    previous = current if runnable(root, current) else None
    live = rollback.live_names(activity_file.read_records(activity_dir))
    switch_current(root, version)
    clear_pending(root)
    if previous is not None:
        try:
            rollback.write_watch(root, Watch(version, previous, now, deadline, live))
        except OSError as exc:  # the switch stands; only its rollback is lost: said, not hidden
            log.error("cannot record the switch to %s for its health check: %s", version, exc)
    cleanup.collect_garbage(
        root, current=version, previous=previous, running=cleanup.running_versions(activity_dir)
    )


def _act(root: Path, version: str, step: Plan, activity_dir: Path, now: float, deadline: float) -> Outcome:
    if step.action == "keep":
        clear_pending(root)
        return Outcome("up_to_date", step.reason, version, record=False)
    if step.action == "pending":
        write_pending(root, version)
        return Outcome("waiting", step.reason, version)
    fresh = not runnable(root, current_version(root))
    _switch(root, version, activity_dir, now, deadline)
    if fresh:
        return Outcome("applied", f"{step.reason}; current", version, record=False)
    return Outcome(
        "applied",
        f"{step.reason}; current, recorders restart into it when idle; rolled back unless they "
        "report healthy",
        version,
    )


def install(
    root: Path, version: str, activity_dir: Path, *, deadline: float, now: float | None = None
) -> Outcome:
    """What postinst runs (module docstring). StageError / ApplyError with a clear message."""
    when = time.time() if now is None else now
    with locked(root) as mine:
        stage(root, version)
        current = current_version(root)
        ready = _readiness(activity_dir) if mine else Readiness(False, "an update check is running")
        outcome = _act(
            root,
            version,
            plan(version, current, runnable(root, current), ready),
            activity_dir,
            when,
            deadline,
        )
        if outcome.record:
            layout.write_state(
                root,
                {
                    "state": outcome.state,
                    "reason": outcome.reason,
                    "version": version,
                    "current": current_version(root),
                    "checked_at": when,
                },
            )
        return outcome


def apply_pending(root: Path, activity_dir: Path, now: float, deadline: float) -> Outcome | None:
    """The update check's part (its lock held): switch to a pending package version once every
    recorder is idle. None when nothing is pending (any more)."""
    version = read_pending(root)
    if version is None:
        return None
    if not runnable(root, version):
        log.warning("pending package version %s is not installed under %s: forgotten", version, root)
        clear_pending(root)
        return None
    current = current_version(root)
    step = plan(version, current, runnable(root, current), _readiness(activity_dir))
    if step.action == "keep":
        clear_pending(root)
        return None
    try:
        return _act(root, version, step, activity_dir, now, deadline)
    except ApplyError as exc:
        return Outcome(
            "failed", f"cannot switch to package {version}: {exc}; {current} keeps running", version
        )


def run_install(version: str, root: str | None, env: Mapping[str, str] | None = None) -> int:
    """``tandem-recorder install-package VERSION``: one line on stdout, or the error on stderr
    (exit 1: postinst fails, and dpkg says the package is not configured)."""
    env = os.environ if env is None else env
    install_root = Path(root or env.get(layout.INSTALL_ROOT_ENV) or "/opt/tandem")
    try:
        deadline = max(1.0, float(env.get(HEALTH_DEADLINE_ENV) or DEFAULT_DEADLINE))
        outcome = install(install_root, version, activity_file.activity_dir(env), deadline=deadline)
    except (StageError, ApplyError, ValueError, OSError) as exc:
        print(f"tandem-recorder install-package: {exc}", file=sys.stderr)
        return 1
    print(f"tandem-agent {version}: {outcome.reason}")
    return 0
