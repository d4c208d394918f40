"""The test suite's file-descriptor guard, a pytest plugin (tests/conftest.py imports it).

The full suite once reached 1,000+ descriptors in its process (every server app kept its SQLite
pool open; server/api/app.py now closes it when the app stops), past what select()-based libraries
accept (fd >= 1024: python-xlib's hotkeys failed). A module that leaves more than
FD_GROWTH_REPORTED open is named in the summary (a session fixture's first use may be, too: that is
why growth alone only reports); the module that brings the process to the ceiling fails, with the
list so far. The fix is where they are opened, not a higher ceiling.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

FD_GROWTH_REPORTED = 20
# After the fix the suite stays under ~100; select() breaks at 1024.
FD_CEILING = int(os.environ.get("TANDEM_TEST_FD_CEILING", "800"))
_fd_growth: list[tuple[str, int, int, str]] = []  # module, before, after, what is new
_ceiling_reached: list[str] = []


def open_descriptors() -> dict[str, str] | None:
    """Descriptor -> what it points to (a path, ``socket:[…]``, ``pipe:[…]``), from Linux's /proc;
    None elsewhere."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return None
    found = {}
    for fd in names:
        with contextlib.suppress(OSError):  # the listing's own descriptor is gone already
            found[fd] = os.readlink(f"/proc/self/fd/{fd}")
    return found


def open_fd_count() -> int | None:
    """Descriptors this process holds (Linux's /proc; None elsewhere)."""
    found = open_descriptors()
    return None if found is None else len(found)


def describe_targets(targets: list[str], most: int = 4) -> str:
    """What a module left open, most common first: files by name (each test's tmp_path differs),
    sockets and pipes by kind — e.g. ``tandem.db ×7, tandem.db-wal ×7, socket ×2``."""
    kinds = Counter(t.split(":", 1)[0] if t.endswith("]") and ":[" in t else Path(t).name for t in targets)
    return ", ".join(f"{kind} ×{n}" for kind, n in kinds.most_common(most))


def descriptors_under(folder: Path) -> list[str]:
    """The files below ``folder`` this process holds open (Linux's /proc; [] elsewhere): what a
    test that should have closed everything it opened in its tmp_path still has."""
    found = open_descriptors() or {}
    return sorted(link for link in found.values() if link.startswith(f"{folder}{os.sep}"))


@pytest.fixture(scope="module", autouse=True)
def _fd_watch(request: pytest.FixtureRequest) -> Iterator[None]:
    opened = open_descriptors()
    yield
    now = open_descriptors()
    if opened is None or now is None:
        return
    before, after = len(opened), len(now)
    if after - before > FD_GROWTH_REPORTED:
        new = [target for fd, target in now.items() if opened.get(fd) != target]
        _fd_growth.append((request.node.nodeid, before, after, describe_targets(new)))
    if after >= FD_CEILING and not _ceiling_reached:
        _ceiling_reached.append(request.node.nodeid)  # the first module only: the rest would repeat it
        pytest.fail(
            f"this process holds {after} file descriptors after {request.node.nodeid} "
            f"(select() refuses >= 1024); modules that left more than {FD_GROWTH_REPORTED} open: "
            + "; ".join(f"{m} {b} -> {a} ({what})" for m, b, a, what in _fd_growth)
        )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _fd_growth:
        terminalreporter.write_sep(
            "-", f"modules that left more than {FD_GROWTH_REPORTED} file descriptors open"
        )
        for module, before, after, what in _fd_growth:
            terminalreporter.write_line(f"{module}: {before} -> {after} (new: {what})")
    count = open_fd_count()
    if count is not None:
        terminalreporter.write_line(f"file descriptors open at the end: {count} (ceiling {FD_CEILING})")
