"""Start time of the bundled recorder: process start -> its ready line ("event channel connected").

    .venv/bin/python -m installers.bench_start [--runs 5]

Needs the bundles (installers/build --bundles-only). Starts a real server (the tests' harness),
enrols the bundle once through an agent.toml with an enrolment code (that first start is reported
on its own), then starts it --runs times more. "cold" runs follow a page-cache drop when this
process may write /proc/sys/vm/drop_caches (root), else every run is warm and is labelled so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from installers.bench_timing import bench_runs, drop_caches, spread, time_to_ready
from tests.e2e.harness import ROOT, run_server
from tests.installers.test_deb_install import enrolment_code

BUNDLE = ROOT / "build" / "installers" / "dist" / "tandem-recorder" / "tandem-recorder"
READY = b"event channel connected"


def _start_once(env: dict[str, str], log: Path) -> float:
    return time_to_ready(
        [str(BUNDLE), "run"], env, log, lambda: READY in log.read_bytes(), "recorder", "ready line", 0.01
    )


def main() -> None:
    runs = bench_runs(BUNDLE, "The recorder bundle's start time, to its ready line.")
    size = subprocess.run(["du", "-sh", str(BUNDLE.parent)], capture_output=True, text=True).stdout.split()[0]
    work = Path(tempfile.mkdtemp(prefix="tandem-bench-"))
    try:
        with run_server(work / "server") as server:
            conf = work / "agent.toml"
            conf.write_text(
                f'server_url = "{server.url}"\nenroll_token = "{enrolment_code(server, "agent1")["code"]}"\n'
            )
            env = {
                "PATH": "/usr/bin:/bin",
                "HOME": str(work / "home"),
                "TANDEM_AGENT_CONFIG": str(conf),
                "TANDEM_RECORDER_KEYRING_FILE": str(work / "token"),
            }
            cold = drop_caches()
            first = _start_once(env, work / "first.log")
            print(f"bundle {BUNDLE.parent} ({size})")
            print(f"first start ({'cold' if cold else 'warm'} cache), enrolment included: {first:.2f} s")
            times = []
            for i in range(runs):
                cold = drop_caches()
                times.append(_start_once(env, work / f"run{i}.log"))
            label = "cold (page cache dropped)" if cold else "warm (could not drop the page cache)"
            print(f"{runs} starts, {label}: {spread(times)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
