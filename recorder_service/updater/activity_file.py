"""What every running recorder on this PC is doing, where the system updater can read it.

The package installs one copy of the software for the whole PC (``/opt/tandem``, root-owned), but
a recorder runs in each logged-in user's session. The updater (``tandem-recorder update-check``,
run as root by a systemd timer or as SYSTEM by a scheduled task) must know whether *any* of them
is recording, in after-call work or uploading before it switches versions. So each recorder
writes a small JSON record of itself, atomically (write a temporary file, rename it over the
old one: the updater never reads half a record), into one shared directory:

- Linux: ``/run/tandem/activity/<uid>.json``; the directory is made by the package's tmpfiles.d
  entry with mode 1777 (everyone may create, the sticky bit stops anyone replacing another's
  file);
- Windows: ``%ProgramData%\\Tandem\\activity\\<user>.json``;
- ``TANDEM_ACTIVITY_DIR`` names another directory (tests).

Because the directory is shared, a record is believed only if the file's owner is the user its
name says and, on Linux, its pid belongs to that user too: one user cannot speak for another's
recorder. A record whose process is gone is ignored (the recorder was killed or the session
ended); the updater, as root, removes it. ``gate`` is the pure rule on top.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from recorder_service.updater.policy import Activity, Readiness, may_apply_now

ACTIVITY_DIR_ENV = "TANDEM_ACTIVITY_DIR"
LINUX_ACTIVITY_DIR = Path("/run/tandem/activity")
STATES = ("idle", "capturing", "call", "acw", "uploading")


@dataclass(frozen=True)
class ActivityRecord:
    pid: int
    version: str  # the version this recorder runs (its heartbeat's)
    state: str  # one of STATES
    detail: str  # the policy's sentence, for the updater's log
    updated_at: float  # wall clock, seconds
    # this process has had its server session accepted (``health`` says exactly what): the updater
    # confirms a new version, or rolls it back, by this; False in records of older versions
    healthy: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ActivityRecord:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        state = str(data["state"])
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}")
        return cls(
            int(data["pid"]),
            str(data["version"]),
            state,
            str(data.get("detail", "")),
            float(data["updated_at"]),
            data.get("healthy") is True,
        )


def activity_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get(ACTIVITY_DIR_ENV):
        return Path(env[ACTIVITY_DIR_ENV])
    if sys.platform == "win32":  # pragma: no cover - Windows only
        return Path(env.get("ProgramData", r"C:\ProgramData")) / "Tandem" / "activity"
    return LINUX_ACTIVITY_DIR


def record_name() -> str:
    if sys.platform == "win32":  # pragma: no cover - Windows only
        import getpass

        return f"{getpass.getuser()}.json"
    return f"{os.getuid()}.json"


def state_of(activity: Activity, in_acw: bool) -> tuple[str, str]:
    """The record's state and detail from the policy's view of the recorder."""
    readiness = may_apply_now(activity)
    if readiness.ready:
        return "idle", readiness.reason
    if activity.capture_mode not in ("idle", ""):
        return "capturing", readiness.reason
    if activity.in_call:
        return ("acw" if in_acw else "call"), readiness.reason
    return "uploading", readiness.reason


def write_record(directory: Path, record: ActivityRecord, name: str | None = None) -> Path:
    """Replace this user's record atomically. Raises OSError when the directory is missing or
    the file is someone else's (the caller logs it: the updater then sees no record for us)."""
    path = directory / (name or record_name())
    tmp = directory / f".{path.name}.{record.pid}.tmp"
    tmp.write_text(record.to_json())
    os.replace(tmp, path)
    return path


def remove_record(directory: Path, pid: int, name: str | None = None) -> None:
    """Remove this user's record if it is still ours (a recorder stopping for good)."""
    path = directory / (name or record_name())
    try:
        if ActivityRecord.from_json(path.read_text()).pid == pid:
            path.unlink()
    except (OSError, ValueError, KeyError, TypeError):
        pass


def pid_owner(pid: int) -> int | None:
    """The uid running ``pid``, or None if no such process (Linux: /proc). A zombie -- it exited,
    its parent has not reaped it yet -- runs nothing: None too (a recorder that crashed must not
    count as live just because whatever started it has not looked yet)."""
    try:
        uid = os.stat(f"/proc/{pid}").st_uid
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state = stat.rpartition(")")[2].split()[:1]  # the field after "(comm)", which may hold spaces
    return None if state == ["Z"] else uid


@dataclass(frozen=True)
class Seen:
    """One file of the directory as the updater found it."""

    path: Path
    record: ActivityRecord | None  # None: unreadable
    problem: str  # why it is not believed ("" if it is)
    alive: bool


def read_records(directory: Path, owner_of_pid: Callable[[int], int | None] = pid_owner) -> list[Seen]:
    out: list[Seen] = []
    try:
        paths = sorted(p for p in directory.glob("*.json") if not p.name.startswith("."))
    except OSError:
        return out
    for path in paths:
        try:
            text, file_uid = path.read_text(), path.stat().st_uid
            record = ActivityRecord.from_json(text)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            out.append(Seen(path, None, f"unreadable: {exc}", alive=False))
            continue
        if sys.platform == "win32":  # pragma: no cover - Windows: the ACLs of ProgramData decide
            out.append(Seen(path, record, "", alive=True))
            continue
        owner = owner_of_pid(record.pid)
        if path.stem != str(file_uid):
            out.append(Seen(path, record, f"written by uid {file_uid}, not {path.stem}", alive=False))
        elif owner is None:
            out.append(Seen(path, record, "its process has ended", alive=False))
        elif owner != file_uid:
            out.append(Seen(path, record, f"pid {record.pid} belongs to uid {owner}", alive=False))
        else:
            out.append(Seen(path, record, "", alive=True))
    return out


def gate(seen: Iterable[Seen]) -> Readiness:
    """May the updater switch versions now? Only if every live recorder on the PC says idle."""
    busy = [s for s in seen if s.alive and s.record is not None and s.record.state != "idle"]
    if busy:
        parts = [f"{s.path.stem}: {s.record.state}" for s in busy if s.record is not None]
        return Readiness(False, f"waiting: recorder(s) busy ({', '.join(parts)})")
    return Readiness(True, "every running recorder is idle")


def stale(seen: Iterable[Seen]) -> list[Path]:
    """Records the updater may delete: their process is gone (a crashed or killed recorder)."""
    return [s.path for s in seen if s.record is not None and s.problem == "its process has ended"]


def now() -> float:
    return time.time()
