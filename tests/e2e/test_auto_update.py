"""Auto-update end to end (issue 15 item 5), with the real recorder service and a real server.

An install root laid out like the ``.deb``'s (``versions/<v>/tandem-recorder/tandem-recorder`` and
the ``current`` link), a real ``tandem-server run`` publishing releases through its TUF repository
(the admin API's ``PUT /api/admin/releases/{v}``), the recorder started through ``current`` as
the autostart entry does, and ``tandem-recorder update-check`` run from ``current`` as the
systemd timer does. Release 2 is offered during a call: it waits for the call and its after-call
work, is then installed, and the recorder -- the same process (pid), re-executed -- runs and
reports version 2 in its heartbeat. A tampered bundle and stale (expired) metadata are refused,
and a release whose self-test fails never becomes ``current``; the recorder keeps running 2. A
release that passes its self-test but whose recorder exits at start is rolled back by the run
that switched to it, and the fleet page shows "rolled_back".

The "bundles" are not PyInstaller bundles (building two would take minutes): each is a directory
whose ``tandem-recorder/tandem-recorder`` is a launcher script running this source tree's
recorder with ``TANDEM_RECORDER_VERSION`` set to the bundle's version. The broken release's
launcher puts a directory first on ``PYTHONPATH`` whose ``av`` package fails to import, as a
bundle missing its FFmpeg libraries would.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from recorder_service.updater.apply import current_version, switch_current, unpack
from server.services.releases import ReleaseRepository, init_keys
from server.sim.call import SimulatedCallResult, simulate_call
from tests.e2e.harness import (
    ROOT,
    ServerProcess,
    run_server,
    stop_process,
    wait_until,
    xvfb_with_changing_content,
)

pytestmark = pytest.mark.e2e

AGENT, DN = "agent1", "1001"
CALL_SECONDS = 12.0


def _launcher(version: str, broken: bool, exits_at_start: bool = False) -> str:
    path = f'"$(dirname "$0")/broken":{ROOT}' if broken else str(ROOT)
    # passes its self-test, but its recorder exits at once (as one whose session setup crashes)
    crash = 'if [ "$1" = run ]; then echo "fake bundle: exiting at start" >&2; exit 1; fi\n'
    return (
        "#!/bin/sh\n"
        f"# fake bundle {version}: the source tree's recorder stamped {version}\n"
        + (crash if exits_at_start else "")
        + f"export TANDEM_RECORDER_VERSION={version}\n"
        f"export PYTHONPATH={path}\n"
        f'exec {sys.executable} -m recorder_service.main "$@"\n'
    )


def make_bundle(tmp: Path, version: str, *, broken: bool = False, exits_at_start: bool = False) -> Path:
    """The release archive of a fake bundle (see the module docstring)."""
    files: list[tuple[str, bytes, int]] = [
        ("tandem-recorder/tandem-recorder", _launcher(version, broken, exits_at_start).encode(), 0o755),
        ("tandem-recorder/VERSION", f"{version}\n".encode(), 0o644),
    ]
    if broken:
        error = "raise ImportError('libavcodec.so.60: cannot open shared object file (fake broken bundle)')\n"
        files.append(("tandem-recorder/broken/av/__init__.py", error.encode(), 0o644))
    archive = tmp / f"bundle-{version}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data, mode in files:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return archive


@dataclass
class World:
    work: Path
    server: ServerProcess
    keys: Path
    repo: ReleaseRepository
    install: Path
    env: dict[str, str]  # the PC's: install root, activity dir, machine config, keyring
    display: str
    admin: httpx.Client

    def publish(self, version: str, archive: Path, percent: int = 100) -> dict[str, Any]:
        r = self.admin.put(
            f"/api/admin/releases/{version}",
            params={"rollout_percent": percent},
            content=archive.read_bytes(),
        )
        assert r.status_code in (200, 201), r.text
        return dict(r.json())

    def update_check(self) -> tuple[str, str]:
        """``update-check`` as the timer runs it: the program under ``current``."""
        done = subprocess.run(
            [str(self.install / "current" / "tandem-recorder" / "tandem-recorder"), "update-check"],
            env=self.env,
            capture_output=True,
            timeout=240,
        )
        out = done.stdout.decode(errors="replace").strip()
        assert out.startswith("update check: "), f"{out}\n{done.stderr.decode(errors='replace')[-3000:]}"
        state, reason = out.removeprefix("update check: ").split(": ", 1)
        return state, reason

    def record(self) -> dict[str, Any] | None:
        try:
            data = json.loads((self.work / "activity" / f"{os.getuid()}.json").read_text())
        except (OSError, ValueError):
            return None
        return dict(data)

    def fleet_row(self) -> dict[str, Any]:
        rows = self.admin.get("/api/admin/fleet").json()["recorders"]
        mine = [r for r in rows if r["agent"] == AGENT and r["last_seen"]]
        return dict(mine[0]) if mine else {}

    def fleet_version(self) -> str:
        return str(self.fleet_row().get("version", ""))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    keys = tmp_path / "keys"
    init_keys(keys)
    data = tmp_path / "server"
    repo = ReleaseRepository(data / "releases")
    repo.create(keys)
    with (
        run_server(data, TANDEM_SERVER_RELEASE_KEYS_DIR=str(keys)) as server,
        xvfb_with_changing_content() as display,
        server.client("admin") as admin,
    ):
        # the PC, as the .deb leaves it: release 1 under versions/, current -> it
        install = tmp_path / "opt-tandem"
        unpack(install, "0.1.0", make_bundle(tmp_path, "0.1.0"))
        switch_current(install, "0.1.0")
        (tmp_path / "activity").mkdir(mode=0o1777)
        (tmp_path / "update-root.json").write_bytes(repo.root_json())  # as IT distributes it
        (tmp_path / "agent.toml").write_text(
            f'server_url = "{server.url}"\nupdate_root = "{tmp_path / "update-root.json"}"\n'
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_") and k != "PYTHONPATH"}
        env.update(
            {
                "DISPLAY": display,
                "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
                "TANDEM_AGENT_CONFIG": str(tmp_path / "agent.toml"),
                "TANDEM_INSTALL_ROOT": str(install),
                "TANDEM_ACTIVITY_DIR": str(tmp_path / "activity"),
                "TANDEM_UPDATE_CACHE": str(tmp_path / "update-cache"),
                "TANDEM_RECORDER_KEYRING_FILE": str(tmp_path / "keyring.cfg"),
                # as root (CI), the self-test would run as nobody, who cannot read this Python
                # under /root: tests/integration/test_update_updater_process.py covers that switch
                "TANDEM_SELF_TEST_USER": "-",
            }
        )
        yield World(tmp_path, server, keys, repo, install, env, display, admin)


@pytest.fixture
def recorder(world: World) -> Iterator[subprocess.Popen[bytes]]:
    """agent1's recorder, enrolled, started through ``current`` as the autostart entry does."""
    program = str(world.install / "current" / "tandem-recorder" / "tandem-recorder")
    r = world.admin.post("/api/admin/recorders/enrolments", json={"username": AGENT})
    r.raise_for_status()
    subprocess.run(
        [program, "login", "--server", world.server.url, "--enroll-code-stdin"],
        env=world.env,
        input=(str(r.json()["code"]) + "\n").encode(),
        check=True,
        capture_output=True,
    )
    with open(world.work / "recorder.log", "wb") as log:
        proc = subprocess.Popen(
            [program, "run", "--spool", str(world.work / "spool")],
            env=world.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        stop_process(proc, timeout=20)


def _log(world: World) -> str:
    return (world.work / "recorder.log").read_text(errors="replace")[-5000:]


def _running(world: World, proc: subprocess.Popen[bytes], version: str) -> dict[str, Any]:
    """The recorder's record says ``version``, idle, same pid; its heartbeat says so too."""

    def seen() -> dict[str, Any] | None:
        assert proc.poll() is None, f"recorder exited ({proc.returncode}):\n{_log(world)}"
        record = world.record()
        return record if record and record["version"] == version and record["state"] == "idle" else None

    record: dict[str, Any] = wait_until(seen, 90, f"the recorder's activity record: {version}, idle")
    assert record["pid"] == proc.pid
    wait_until(lambda: world.fleet_version() == version, 60, f"the fleet page showing {version}")
    return record


def in_acw(world: World, interaction: str) -> bool:
    """The call has ended and its after-call work has not."""
    detail = world.admin.get(f"/api/interactions/{interaction}").json()
    return detail["ended_at"] is not None and detail["acw_ended_at"] is None


def _call(server: ServerProcess) -> Future[SimulatedCallResult]:
    host = server.url.split("//", 1)[1].split(":", 1)[0]
    pool = ThreadPoolExecutor(1)
    future = pool.submit(asyncio.run, simulate_call((host, server.sip_port), DN, CALL_SECONDS))
    pool.shutdown(wait=False)
    return future


def test_release_2_waits_for_the_call_and_acw_then_the_recorder_runs_it(
    world: World, recorder: subprocess.Popen[bytes]
) -> None:
    world.publish("0.1.0", make_bundle(world.work, "0.1.0"))
    _running(world, recorder, "0.1.0")
    assert world.update_check() == ("up_to_date", "0.1.0 is the newest release")

    agent_token = world.server.token(AGENT, client="desktop", dn=DN)
    call = _call(world.server)
    wait_until(
        lambda: (world.record() or {}).get("state") in ("capturing", "call"),
        60,
        "the recorder busy with the call",
    )
    world.publish("0.2.0", make_bundle(world.work, "0.2.0"))
    state, reason = world.update_check()
    assert state == "waiting" and "0.2.0 offered" in reason, reason
    assert current_version(world.install) == "0.1.0"

    result = call.result(timeout=90)
    # the call is over; its after-call work is not (it ends with Done, or the 300 s limit)
    with world.server.client("admin") as admin:
        found = [i for i in admin.get("/api/interactions").json() if i["call_id"] == result.call_id]
    assert len(found) == 1, found
    interaction = found[0]["id"]
    assert in_acw(world, interaction)
    state, reason = world.update_check()
    # the screen is recorded through the after-call work: the recorder says capturing (or acw)
    assert state == "waiting" and ("capturing" in reason or "acw" in reason), reason
    assert in_acw(world, interaction)  # (the check really ran during the ACW)
    assert current_version(world.install) == "0.1.0"

    r = httpx.post(
        f"{world.server.url}/api/interactions/{interaction}/done",
        headers={"Authorization": f"Bearer {agent_token}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    wait_until(lambda: (world.record() or {}).get("state") == "idle", 90, "the recorder idle, spool empty")
    state, reason = world.update_check()
    # the run waited for the re-executed recorder to report healthy (the server took its session)
    assert state == "applied" and "0.2.0 confirmed" in reason, reason
    assert current_version(world.install) == "0.2.0"
    _running(world, recorder, "0.2.0")  # the same process, re-executed into release 2
    wait_until(
        lambda: world.fleet_row().get("update_state") == "applied", 60, "the fleet page: update applied"
    )
    assert "restarting into it" in _log(world)
    # the call's screen was recorded and every segment uploaded by release 1 before it left
    with contextlib.closing(sqlite3.connect(world.server.data_dir / "tandem.db", timeout=30)) as db:
        (segments,) = db.execute(
            "SELECT count(*) FROM screen_segments WHERE interaction_id = ?", (interaction,)
        ).fetchone()
    assert segments > 0

    # a tampered bundle: the bytes the server serves are not the signed ones
    stored = world.publish("0.3.0", make_bundle(world.work, "0.3.0"))
    target = world.repo.targets_dir / f"{stored['sha256']}.tandem-agent-0.3.0.tar.gz"
    target.write_bytes(target.read_bytes()[:-8] + b"tampered")
    state, reason = world.update_check()
    assert state == "refused" and "0.3.0 refused" in reason and "0.2.0 keeps running" in reason, reason
    assert current_version(world.install) == "0.2.0"
    assert not (world.install / "versions" / "0.3.0").exists()

    # stale metadata: a timestamp whose day ran out (signed three days ago)
    world.repo.refresh_timestamp(world.keys, now=datetime.now(UTC) - timedelta(days=3))
    state, reason = world.update_check()
    assert state == "refused" and "expired" in reason.lower() and "0.2.0 keeps running" in reason, reason
    assert current_version(world.install) == "0.2.0"
    world.repo.refresh_timestamp(world.keys)

    # a release whose self-test fails never becomes current
    world.publish("0.4.0", make_bundle(world.work, "0.4.0", broken=True))
    state, reason = world.update_check()
    assert state == "rolled_back", reason
    assert "0.4.0 failed its self-test" in reason and "libavcodec" in reason, reason
    assert current_version(world.install) == "0.2.0"
    assert (world.install / "versions" / "0.4.0.failed").exists()
    assert not (world.install / "versions" / "0.4.0").exists()
    # 0.4.0 is not tried again (0.3.0, still offered, is still refused); the recorder runs release 2
    state, reason = world.update_check()
    assert state == "refused" and "0.3.0 refused" in reason, reason
    record = _running(world, recorder, "0.2.0")
    wait_until(
        lambda: world.fleet_row().get("update_state") == "refused", 60, "the fleet page: update refused"
    )
    assert recorder.poll() is None and record["pid"] == recorder.pid


def test_a_release_whose_recorder_exits_at_start_is_rolled_back_and_the_fleet_shows_it(
    world: World, recorder: subprocess.Popen[bytes]
) -> None:
    """0.2.0 passes its self-test, but the recorder re-executed into it exits 1 at once: the run
    that switched waits for the verdict (a 20 s deadline here, 10 min by default), points
    ``current`` back at 0.1.0 and marks 0.2.0 failed; the recorder started again (as the session's
    autostart or user unit would) runs 0.1.0 and its heartbeat brings "rolled_back" to the fleet."""
    world.env["TANDEM_UPDATE_HEALTH_SECONDS"] = "20"
    world.publish("0.1.0", make_bundle(world.work, "0.1.0"))
    _running(world, recorder, "0.1.0")
    world.publish("0.2.0", make_bundle(world.work, "0.2.0", exits_at_start=True))
    state, reason = world.update_check()
    assert state == "rolled_back", reason
    assert "0.2.0 rolled back to 0.1.0" in reason and "crashed" in reason, reason
    assert recorder.wait(timeout=60) == 1  # the re-executed process: the fake bundle's exit
    assert current_version(world.install) == "0.1.0"
    assert (world.install / "versions" / "0.2.0.failed").read_text().startswith("rolled back:")
    with open(world.work / "recorder.log", "ab") as log:  # the session starts ``current`` again
        again = subprocess.Popen(
            [
                str(world.install / "current" / "tandem-recorder" / "tandem-recorder"),
                "run",
                "--spool",
                str(world.work / "spool"),
            ],
            env=world.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: (world.record() or {}).get("pid") == again.pid, 90, "the new recorder's record")
        _running(world, again, "0.1.0")
        row = wait_until(
            lambda: (r := world.fleet_row()) and r.get("update_state") == "rolled_back" and r,
            60,
            "the fleet page: update rolled back",
        )
        assert "0.2.0 rolled back to 0.1.0" in str(row.get("update_detail", "")), row
        state, reason = world.update_check()  # 0.2.0 is not applied again
        assert state == "up_to_date" and "0.2.0 is not applied again" in reason, reason
        assert current_version(world.install) == "0.1.0" and again.poll() is None
    finally:
        stop_process(again, timeout=20)
