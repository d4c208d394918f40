"""The recorder's last fatal problem, in a small per-user file the agent desktop reads.

A wrong server URL or an unknown config key stops the recorder before it ever reaches the server,
so it cannot put that on the fleet page itself. It writes the problem here instead; the agent's
desktop (logged in, so it does reach the server) finds it and reports it
(``POST /api/agent/recorder-problems``). The recorder removes the file when it starts cleanly.

Both programs run as the agent's OS user and find the file in the same place: the user's state
directory (``$XDG_STATE_HOME/tandem-recorder``, else ``~/.local/state/tandem-recorder``;
``%LOCALAPPDATA%\\tandem-recorder`` on Windows -- what ``platformdirs.user_state_dir`` answers, which
this stdlib-only package cannot import). ``TANDEM_RECORDER_PROBLEM_FILE`` names another file.

Written atomically (a 0600 temporary file beside it, then renamed), read tolerantly: a missing,
half-written or foreign file is "no problem known", never an exception in the desktop.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

PROBLEM_FILE_ENV = "TANDEM_RECORDER_PROBLEM_FILE"
FILE_NAME = "last-problem.json"
KINDS = ("config", "unreachable", "enrolment", "credential", "crashed", "other")
MAX_MESSAGE = 500  # the server's bound on a reported message
MAX_FILE_BYTES = 16_384  # more than any problem we write: anything bigger is not ours


@dataclass(frozen=True, slots=True)
class RecorderProblem:
    kind: str  # one of KINDS
    message: str  # what the recorder logged, for the person who reads the fleet page
    occurred_at: datetime  # aware, UTC
    recorder_version: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"recorder problem kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.occurred_at.tzinfo is None:
            raise ValueError("occurred_at must carry its time zone")

    @classmethod
    def now(cls, kind: str, message: str, recorder_version: str | None = None) -> RecorderProblem:
        return cls(kind, clip(message), datetime.now(UTC), recorder_version)

    def to_dict(self) -> dict[str, str | None]:
        return {
            "kind": self.kind,
            "message": clip(self.message),
            "occurred_at": self.occurred_at.isoformat(),
            "recorder_version": self.recorder_version,
        }

    @classmethod
    def from_dict(cls, data: object) -> RecorderProblem:
        """``ValueError`` naming what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("not an object")
        kind, message, when = data.get("kind"), data.get("message"), data.get("occurred_at")
        version = data.get("recorder_version")
        if not isinstance(kind, str) or not isinstance(message, str) or not isinstance(when, str):
            raise ValueError("kind, message and occurred_at must be strings")
        if version is not None and not isinstance(version, str):
            raise ValueError("recorder_version must be a string or null")
        return cls(kind, clip(message), datetime.fromisoformat(when), version)


def clip(message: str) -> str:
    message = " ".join(message.split())  # one line: it is shown in a table cell
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"


def problem_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get(PROBLEM_FILE_ENV):
        return Path(env[PROBLEM_FILE_ENV])
    if sys.platform == "win32":  # pragma: no cover - Windows only
        base = Path(env.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":  # pragma: no cover - macOS only
        base = Path.home() / "Library" / "Application Support"
    else:
        state = env.get("XDG_STATE_HOME", "").strip()
        home = Path(env["HOME"]) if env.get("HOME") else Path.home()
        # The XDG rule: a relative XDG_STATE_HOME is invalid and ignored.
        base = Path(state) if state and Path(state).is_absolute() else home / ".local" / "state"
    return base / "tandem-recorder" / FILE_NAME


def write_problem(problem: RecorderProblem, path: Path) -> None:
    """Replace the file with ``problem``: a reader sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    data = json.dumps(problem.to_dict(), ensure_ascii=False).encode("utf-8")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def read_problem(path: Path) -> RecorderProblem | None:
    """The problem in the file; None when there is none or the file is not one we could use."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError:
        return None
    if len(data) > MAX_FILE_BYTES:
        return None
    try:
        return RecorderProblem.from_dict(json.loads(data.decode("utf-8")))
    except (ValueError, RecursionError):  # bad UTF-8 or JSON, wrong fields or kind, a bad date
        return None


def clear_problem(path: Path) -> bool:
    """Forget the problem (the recorder started cleanly); True if there was a file."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
