"""Which old versions go after a switch, and deleting them (the rule is ``layout.versions_to_remove``).

Only versions the updater put there may go: one it unpacked from a release (``MARKER``) or one the
package's postinst staged (``package.STAGED_MARKER``) that is no longer the installed package's own
version. Never ``current``, never one a live recorder still runs (its activity record says which),
and the one before the switch stays for a rollback.
"""

from __future__ import annotations

import logging
from pathlib import Path

from recorder_service.updater import activity_file
from recorder_service.updater.apply import current_link, versions_dir
from recorder_service.updater.layout import LayoutError, versions_to_remove

log = logging.getLogger(__name__)

MARKER = ".installed-by-updater"  # only versions the updater installed are ever deleted by it
STAGED_MARKER = ".staged-from-package"  # a version postinst staged from the package (``package``)
PACKAGE_DIR = "package"  # <root>/package/: the package's own payload, dpkg's files
KEEP_OLD = 1  # old versions kept besides current and the ones live recorders run: the one before


def package_version(root: Path) -> str | None:
    """The version the installed package carries (``<root>/package/VERSION``), or None."""
    try:
        return (root / PACKAGE_DIR / "VERSION").read_text().strip() or None
    except OSError:
        return None


def running_versions(activity_dir: Path) -> set[str]:
    """Versions live recorders still run (an agent paired on a device recorder for days, a call
    through an apt upgrade): their files must stay even when two updates came meanwhile."""
    seen = activity_file.read_records(activity_dir)
    return {s.record.version for s in seen if s.alive and s.record is not None}


def removable(root: Path, installed: list[str]) -> set[str]:
    """The installed versions the updater may ever delete (``ours`` of ``versions_to_remove``)."""
    ours = {v for v in installed if (versions_dir(root) / v / MARKER).exists()}
    staged = {v for v in installed if (versions_dir(root) / v / STAGED_MARKER).exists()}
    return ours | (staged - {package_version(root)})


def collect_garbage(root: Path, *, current: str, previous: str | None, running: set[str]) -> None:
    """Delete old versions (``layout.versions_to_remove``: never current, one a live recorder
    runs, nor the one before)."""
    installed = [p.name for p in versions_dir(root).iterdir() if p.is_dir() and not p.name.startswith(".")]
    link = current_link()
    for version in versions_to_remove(
        installed,
        current=current,
        previous=previous,
        running=running,
        ours=removable(root, installed),
        keep_old=KEEP_OLD,
    ):
        try:
            link.remove_version(root, version, running)
        except (LayoutError, OSError) as exc:
            log.warning("could not remove old version %s: %s", version, exc)
        else:
            log.info("removed old version %s", version)
