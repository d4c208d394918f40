"""Where the installed software lives and what the last update check said -- read by the running
recorder (its heartbeat, its re-execution) and written by the system updater; nothing heavy here.

    <root>/versions/<v>/tandem-recorder/tandem-recorder   one directory per version
    <root>/current -> versions/<v>                       what launchers start
    <root>/update-state.json                              the last update check (0644: every user reads it)
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

INSTALL_ROOT_ENV = "TANDEM_INSTALL_ROOT"  # tests; a bundle finds its root from its own path
STATE_FILE = "update-state.json"
UPDATE_STATES = ("off", "up_to_date", "waiting", "applied", "refused", "rolled_back", "failed")


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
    the same) -- else the package metadata."""
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
