"""One updater at a time on a PC: the timer's run, IT's run by hand, and the package's postinst
(``package.install``) all take ``<root>/.update.lock``."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = ".update.lock"


@contextlib.contextmanager
def locked(root: Path) -> Iterator[bool]:
    """Yields True when this process holds the lock, False when another one does (never waits:
    an update check may hold it for the minutes of a download and a health verdict)."""
    if sys.platform == "win32":  # pragma: no cover - the scheduled task never overlaps itself
        yield True
        return
    import fcntl

    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK_FILE, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
