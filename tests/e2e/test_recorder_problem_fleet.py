"""A recorder that cannot start reaches the fleet page through the agent's desktop, end to end:
a real ``tandem-server``, real ``tandem-recorder run`` processes and the desktop's real reporter
(agent_app/recorder_problem_link.py) logged in with the desktop's own API client.

1. A machine config with an unknown key: the recorder exits 2 with a clear line and leaves its
   problem in the user's state directory; the desktop reports it; IT's fleet lists the PC with the
   recorder's words.
2. A wrong server URL (nobody listens there): exit 2 again, "cannot reach"; reported as changed.
3. The config fixed (a good enrolment token): the recorder enrols as a device, starts, removes the
   problem file and answers on its pairing endpoint; the desktop clears the row.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent_app.api_client import ApiClient
from agent_app.recorder_problem_link import RecorderProblemReporter, this_pc
from tandem_protocol.recorder_problem import problem_path, read_problem
from tests.e2e.harness import ROOT, ServerProcess, run_server, stop_process, wait_until
from tests.ports import free_port

pytestmark = pytest.mark.e2e
EXIT_SECONDS = 120.0  # a recorder's imports and its one refused request, on a loaded machine


def _pc(tmp: Path) -> dict[str, str]:
    """The agent's session on a PC of its own: home, state, config, runtime directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_") and not k.startswith("XDG_")}
    for name in ("home", "state", "config", "run"):
        (tmp / name).mkdir(parents=True, exist_ok=True, mode=0o700)
    env.update(
        {
            "HOME": str(tmp / "home"),
            "XDG_STATE_HOME": str(tmp / "state"),
            "XDG_CONFIG_HOME": str(tmp / "config"),
            "XDG_RUNTIME_DIR": str(tmp / "run"),
            "TANDEM_AGENT_CONFIG": str(tmp / "agent.toml"),
            "TANDEM_RECORDER_KEYRING_FILE": str(tmp / "keyring.cfg"),
            "TANDEM_RECORDER_SPOOL": str(tmp / "spool"),
            "TANDEM_DEVICE_BROKER_SOCKET": str(tmp / "no-broker.sock"),  # no PC-wide broker here
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


def _run_recorder(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recorder_service.main", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=EXIT_SECONDS,
    )


def _problem_rows(server: ServerProcess) -> list[dict[str, Any]]:
    with server.client("admin") as admin:
        r = admin.get("/api/admin/fleet")
        assert r.status_code == 200, r.text
        return [e for e in r.json()["recorders"] if e["status"] == "problem"]


@pytest.fixture
def desktop_token(tmp_path: Path) -> Iterator[tuple[ServerProcess, str]]:
    with run_server(tmp_path / "server") as server:
        api = ApiClient(server.url)
        api.login("agent1", server.creds["agent1"]["password"], "1001")  # the desktop's own login
        assert api.token is not None
        try:
            yield server, api.token
        finally:
            api.logout()
            api.close()


def test_recorder_problems_reach_the_fleet_through_the_desktop(
    tmp_path: Path, desktop_token: tuple[ServerProcess, str]
) -> None:
    server, token = desktop_token
    env = _pc(tmp_path / "pc")
    config = Path(env["TANDEM_AGENT_CONFIG"])
    problem_file = problem_path(env)
    assert problem_file == tmp_path / "pc/state/tandem-recorder/last-problem.json"
    reporter = RecorderProblemReporter(
        problem_file=problem_file, socket_path=Path(env["XDG_RUNTIME_DIR"]) / "tandem-recorder.sock"
    )
    host = socket.gethostname()

    # 1. An unknown key: a clear line in the log, exit 2, the problem left for the desktop.
    config.write_text(f'server_url = "{server.url}"\nsever_url = "{server.url}"\n')
    done = _run_recorder(env)
    assert done.returncode == 2, done.stderr
    assert "unknown key 'sever_url'" in done.stderr
    problem = read_problem(problem_file)
    assert problem is not None and problem.kind == "config", problem
    assert _problem_rows(server) == []  # the recorder itself never reached the server

    result = reporter.check(server.url, token)
    assert (result.action, result.delivered) == ("report", True), result
    rows = _problem_rows(server)
    assert [(r["host"], r["report"]["kind"]) for r in rows] == [(host, "config")], rows
    assert "unknown key 'sever_url'" in rows[0]["last_error"]
    assert rows[0]["problem_text"] == "recorder not running: configuration error"
    assert rows[0]["agent"] == "agent1" and rows[0]["report"]["os_user"] == this_pc()[1]
    assert reporter.check(server.url, token).action == "none"  # once, not at every check

    # 2. A wrong server URL: nobody answers there.
    wrong = f"http://127.0.0.1:{free_port()}"
    config.write_text(f'server_url = "{wrong}"\nenroll_token = "tet_not-a-real-token"\n')
    done = _run_recorder(env)
    assert done.returncode == 2, done.stderr
    assert f"cannot reach {wrong}" in done.stderr
    assert reporter.check(server.url, token).action == "report"
    rows = _problem_rows(server)
    assert [(r["host"], r["report"]["kind"]) for r in rows] == [(host, "unreachable")], rows
    assert rows[0]["last_error"].startswith(f"cannot reach {wrong}")

    # 3. Fixed: a good enrolment token; the recorder enrols as a device and runs.
    with server.client("admin") as admin:
        r = admin.post("/api/admin/devices/enrolment-tokens", json={"scope": "site:HQ", "ttl_hours": 1})
        assert r.status_code == 201, r.text
        good = r.json()["token"]
    config.write_text(f'server_url = "{server.url}"\nenroll_token = "{good}"\n')
    log_path = tmp_path / "recorder.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "recorder_service.main", "run"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        def running() -> bool:
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-3000:]
                raise AssertionError(f"the recorder exited {proc.returncode}:\n{tail}")
            return (
                not problem_file.exists() and (Path(env["XDG_RUNTIME_DIR"]) / "tandem-recorder.sock").exists()
            )

        wait_until(running, EXIT_SECONDS, "the recorder started cleanly (problem file removed, endpoint up)")
        result = reporter.check(server.url, token)
        assert (result.action, result.delivered, result.status) == ("clear", True, ""), result
        assert _problem_rows(server) == []
        assert reporter.check(server.url, token).action == "none"
    finally:
        stop_process(proc)
