"""raise_open_files_limit in a child process (it changes the process's own limits)."""

from __future__ import annotations

import subprocess
import sys

CHILD = """
import resource
from server.rlimits import raise_open_files_limit
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
now = raise_open_files_limit(4096)
expected = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
assert now == expected == resource.getrlimit(resource.RLIMIT_NOFILE)[0], (now, expected, hard)
resource.setrlimit(resource.RLIMIT_NOFILE, (300, 300))  # lowering the hard limit is allowed
assert raise_open_files_limit(4096) == 300  # cannot go above the hard limit
print("ok")
"""


def test_soft_limit_rises_to_what_is_wanted_and_never_above_the_hard_limit() -> None:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
