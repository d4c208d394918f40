"""The updater's side of ``health``: the switch record on disk, and acting on the verdict.

``<root>/update-watch.json`` (root-owned, written atomically like ``update-state.json``) says
"switched to V from P at T, awaiting health"; it is written right after the switch and removed
once V is confirmed or rolled back. A rollback points ``current`` back at P and writes
``versions/<V>.failed`` ("rolled back: why"): the updater never offers V again (a newer release
is offered as usual) and no recorder re-executes into it (``in_recorder.SelfUpdate.due``). V's
files stay until the usual clean-up, since recorders may still be running them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from recorder_service.updater import activity_file
from recorder_service.updater.apply import ApplyError, current_version, switch_current, versions_dir
from recorder_service.updater.health import Snapshot, Watch, judge

log = logging.getLogger(__name__)

WATCH_FILE = "update-watch.json"


@dataclass(frozen=True)
class Outcome:
    """What one look at a pending switch came to; ``state`` is one of ``layout.UPDATE_STATES``."""

    state: str
    reason: str
    version: str
    settled: bool  # confirmed or rolled back: nothing pending any more


def write_watch(root: Path, watch: Watch) -> None:
    tmp = root / f".{WATCH_FILE}.tmp"
    tmp.write_text(json.dumps(watch.to_dict()))
    tmp.chmod(0o644)
    os.replace(tmp, root / WATCH_FILE)


def read_watch(root: Path) -> Watch | None:
    path = root / WATCH_FILE
    try:
        return Watch.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.error("%s is not a switch record (%s): removed, the switch counts as confirmed", path, exc)
        clear_watch(root)
        return None


def clear_watch(root: Path) -> None:
    with contextlib.suppress(OSError):
        (root / WATCH_FILE).unlink()


def snapshots(seen: Iterable[activity_file.Seen]) -> list[Snapshot]:
    """The records ``health.judge`` weighs: believed ones, live or with their process ended (one
    written by another user, or unreadable, speaks for nobody)."""
    out: list[Snapshot] = []
    for s in seen:
        if s.record is None or (s.problem and s.problem != "its process has ended"):
            continue
        out.append(Snapshot(s.path.stem, s.record.version, s.record.healthy, s.alive))
    return out


def live_names(seen: Iterable[activity_file.Seen]) -> tuple[str, ...]:
    return tuple(sorted(s.path.stem for s in seen if s.alive and s.record is not None))


def look(root: Path, activity_dir: Path, now: float) -> Outcome | None:
    """Judge the pending switch, if there is one, and act: None when nothing is pending."""
    watch = read_watch(root)
    if watch is None:
        return None
    if current_version(root) != watch.version:  # IT or the package moved ``current`` meanwhile
        clear_watch(root)
        return None
    verdict = judge(watch, snapshots(activity_file.read_records(activity_dir)), now)
    v, p = watch.version, watch.previous
    if verdict.action == "wait":
        return Outcome("applied", f"{v} current (was {p}), not yet confirmed: {verdict.reason}", v, False)
    if verdict.action == "confirm":
        clear_watch(root)
        return Outcome("applied", f"{v} confirmed: {verdict.reason}", v, True)
    try:
        switch_current(root, p)
    except ApplyError as exc:  # P is gone or ``current`` cannot move: say so, try again next run
        return Outcome("failed", f"{v} should be rolled back ({verdict.reason}) but cannot: {exc}", v, False)
    (versions_dir(root) / f"{v}.failed").write_text(f"rolled back: {verdict.reason}\n")
    clear_watch(root)
    log.error("rolled back %s to %s: %s", v, p, verdict.reason)
    return Outcome("rolled_back", f"{v} rolled back to {p}: {verdict.reason}", v, True)
