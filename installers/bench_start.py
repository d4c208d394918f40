"""Start time of the bundled recorder: process start -> its ready line ("event channel connected").

    .venv/bin/python -m installers.bench_start [--runs 5]

Needs the bundles (installers/build --bundles-only). Starts a real server (the tests' harness),
enrols the bundle once through an agent.toml with an enrolment code (that first start is reported
on its own), then starts it --runs times more. "cold" runs follow a page-cache drop when this
process may write /proc/sys/vm/drop_caches (root), else every run is warm and is labelled so.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from tests.e2e.harness import ROOT, run_server, stop_process
from tests.installers.test_deb_install import enrolment_code

BUNDLE = ROOT / "build" / "installers" / "dist" / "tandem-recorder" / "tandem-recorder"
READY = b"event channel connected"


def _drop_caches() -> bool:
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def _start_once(env: dict[str, str], log: Path) -> float:
    started = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(BUNDLE), "run"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = started + 120
        while time.monotonic() < deadline:
            if READY in log.read_bytes():
                return time.monotonic() - started
            if proc.poll() is not None:
                raise SystemExit(f"recorder exited {proc.returncode}:\n{log.read_text(errors='replace')}")
            time.sleep(0.01)
        raise SystemExit("no ready line within 120 s")
    finally:
        stop_process(proc)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not BUNDLE.exists():
        raise SystemExit(f"no bundle at {BUNDLE}: run installers/build --bundles-only")
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
            cold = _drop_caches()
            first = _start_once(env, work / "first.log")
            print(f"bundle {BUNDLE.parent} ({size})")
            print(f"first start ({'cold' if cold else 'warm'} cache), enrolment included: {first:.2f} s")
            times = []
            for i in range(args.runs):
                cold = _drop_caches()
                times.append(_start_once(env, work / f"run{i}.log"))
            label = "cold (page cache dropped)" if cold else "warm (could not drop the page cache)"
            print(
                f"{args.runs} starts, {label}: median {statistics.median(times):.2f} s, "
                f"min {min(times):.2f} s, max {max(times):.2f} s"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
