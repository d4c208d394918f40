"""The test suite's file-descriptor guard, a pytest plugin (tests/conftest.py imports it).

The full suite once reached 1,000+ descriptors in its process (every server app kept its SQLite
pool open; server/api/app.py now closes it when the app stops), past what select()-based libraries
accept (fd >= 1024: python-xlib's hotkeys failed). A module that leaves more than
FD_GROWTH_REPORTED open is named in the summary (a session fixture's first use may be, too: that is
why growth alone only reports); the module that brings the process to the ceiling fails, with the
list so far. The fix is where they are opened, not a higher ceiling.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

FD_GROWTH_REPORTED = 20
# After the fix the suite stays under ~100; select() breaks at 1024.
FD_CEILING = int(os.environ.get("TANDEM_TEST_FD_CEILING", "800"))
_fd_growth: list[tuple[str, int, int]] = []
_ceiling_reached: list[str] = []


def open_fd_count() -> int | None:
    """Descriptors this process holds (Linux's /proc; None elsewhere)."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


@pytest.fixture(scope="module", autouse=True)
def _fd_watch(request: pytest.FixtureRequest) -> Iterator[None]:
    before = open_fd_count()
    yield
    after = open_fd_count()
    if before is None or after is None:
        return
    if after - before > FD_GROWTH_REPORTED:
        _fd_growth.append((request.node.nodeid, before, after))
    if after >= FD_CEILING and not _ceiling_reached:
        _ceiling_reached.append(request.node.nodeid)  # the first module only: the rest would repeat it
        pytest.fail(
            f"this process holds {after} file descriptors after {request.node.nodeid} "
            f"(select() refuses >= 1024); modules that left more than {FD_GROWTH_REPORTED} open: "
            + "; ".join(f"{m} {b} -> {a}" for m, b, a in _fd_growth)
        )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _fd_growth:
        terminalreporter.write_sep(
            "-", f"modules that left more than {FD_GROWTH_REPORTED} file descriptors open"
        )
        for module, before, after in _fd_growth:
            terminalreporter.write_line(f"{module}: {before} -> {after}")
    count = open_fd_count()
    if count is not None:
        terminalreporter.write_line(f"file descriptors open at the end: {count} (ceiling {FD_CEILING})")
