"""``tandem-recorder run`` leaves its fatal problem in the per-user problem file with the right
kind (recorder_service/problem_report.py), and a clean start removes it."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from recorder_service import main as recorder_main
from recorder_service import problem_report
from recorder_service.credentials import TokenStore
from recorder_service.device_broker_wire import DeviceReply
from recorder_service.device_session import DeviceRunner
from recorder_service.errors import (
    CaptureError,
    ConfigError,
    CredentialsError,
    EnrolmentRefusedError,
    ServerUnreachableError,
)
from recorder_service.pairing_ipc import PairingError, PairingRequest
from recorder_service.updater.policy import UpdatePolicyError
from tandem_protocol.recorder_problem import PROBLEM_FILE_ENV, RecorderProblem, read_problem, write_problem
from tests.ports import free_port


@pytest.fixture
def problem_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated PC: no machine or user config but ours, the problem file under tmp_path."""
    for name in ("TANDEM_RECORDER_SERVER", "TANDEM_RECORDER_KEYRING_FILE", "TANDEM_AGENT_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("TANDEM_AGENT_CONFIG", str(tmp_path / "agent.toml"))
    path = tmp_path / "state" / "last-problem.json"
    monkeypatch.setenv(PROBLEM_FILE_ENV, str(path))
    return path


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (ConfigError("unknown key 'sever_url'"), "config"),
        (UpdatePolicyError("update_pin: not a version"), "config"),
        (ServerUnreachableError("cannot reach https://wrong"), "unreachable"),
        (EnrolmentRefusedError("enrolment refused (HTTP 401): expired"), "enrolment"),
        (CredentialsError("no token stored for https://x: log in"), "credential"),
        (CaptureError("no display"), "other"),
        (RuntimeError("boom"), "crashed"),
    ],
)
def test_each_failure_has_its_kind(exc: BaseException, kind: str) -> None:
    assert problem_report.kind_of(exc) == kind


def test_unknown_config_key_stops_the_recorder_and_is_written(problem_file: Path, tmp_path: Path) -> None:
    (tmp_path / "agent.toml").write_text('sever_url = "https://tandem.example"\n')
    assert recorder_main.main(["run", "--keyring-file", str(tmp_path / "k.cfg")]) == 2
    problem = read_problem(problem_file)
    assert problem is not None and problem.kind == "config", problem
    assert "unknown key 'sever_url'" in problem.message and str(tmp_path / "agent.toml") in problem.message


def test_a_wrong_server_url_at_enrolment_is_unreachable(problem_file: Path, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    (tmp_path / "agent.toml").write_text(f'server_url = "{url}"\nenroll_token = "ABCD-EFGH"\n')
    assert recorder_main.main(["run", "--keyring-file", str(tmp_path / "k.cfg")]) == 2
    problem = read_problem(problem_file)
    assert problem is not None and problem.kind == "unreachable", problem
    assert problem.message.startswith(f"cannot reach {url}")


class _Refuse(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"error": "enrolment_expired", "message": "this enrolment code has expired"})
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def refusing_server() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_refused_enrolment_code_is_enrolment(
    problem_file: Path, tmp_path: Path, refusing_server: str
) -> None:
    (tmp_path / "agent.toml").write_text(f'server_url = "{refusing_server}"\nenroll_token = "ABCD-EFGH"\n')
    assert recorder_main.main(["run", "--keyring-file", str(tmp_path / "k.cfg")]) == 2
    problem = read_problem(problem_file)
    assert problem is not None and problem.kind == "enrolment", problem
    assert "expired" in problem.message


def test_a_failed_login_command_writes_nothing(problem_file: Path, tmp_path: Path) -> None:
    # ``login`` is run by a person who sees the answer; only the service's start is reported.
    (tmp_path / "agent.toml").write_text('sever_url = "x"\n')
    assert recorder_main.main(["login", "--enroll-code", "C", "--keyring-file", str(tmp_path / "k")]) == 2
    assert not problem_file.exists()


def test_a_clean_start_removes_the_earlier_problem(
    problem_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_problem(RecorderProblem.now("unreachable", "cannot reach http://old"), problem_file)
    keyring = tmp_path / "k.cfg"
    TokenStore(keyring).save("http://127.0.0.1:9", "rt_token")
    seen: list[RecorderProblem | None] = []

    async def service(*_args: object, **_kwargs: object) -> None:
        seen.append(read_problem(problem_file))  # cleared before the service runs, not after it

    monkeypatch.setattr("recorder_service.service.run_service", service)
    assert recorder_main.main(["run", "--server", "http://127.0.0.1:9", "--keyring-file", str(keyring)]) == 0
    assert seen == [None]


def test_a_credential_refused_at_pairing_is_written(problem_file: Path) -> None:
    body = {"error": "device_revoked", "message": "revoked by IT"}
    problem_report.record_pair_refusal(401, {"error": "invalid_pairing_ticket"}, "ticket")
    assert not problem_file.exists()  # a stale ticket is the desktop's, not the PC's, problem
    problem_report.record_pair_refusal(401, body, "the server refused (401): revoked by IT")
    problem = read_problem(problem_file)
    assert problem is not None and problem.kind == "credential"


def test_an_unwritable_problem_file_does_not_hide_the_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("")
    monkeypatch.setenv(PROBLEM_FILE_ENV, str(tmp_path / "file" / "under-a-file.json"))
    monkeypatch.setenv("TANDEM_AGENT_CONFIG", str(tmp_path / "agent.toml"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    (tmp_path / "agent.toml").write_text('sever_url = "x"\n')
    assert recorder_main.main(["run"]) == 2
    assert "unknown key 'sever_url'" in capsys.readouterr().err


class _Device:
    """A device credential whose server answers as told (credentials.DeviceCredential)."""

    server_url = "http://tandem.test"

    def __init__(self, reply: DeviceReply) -> None:
        self.reply = reply

    def call(self, op: str, ticket: str = "") -> DeviceReply:
        return self.reply


def test_a_device_revoked_at_pairing_is_written_and_a_later_pairing_clears_it(
    problem_file: Path, tmp_path: Path
) -> None:
    revoked = DeviceReply(401, {"error": "device_revoked", "message": "revoked by IT: enrol it again"})
    device = _Device(revoked)
    runner = DeviceRunner(device, tmp_path, fps=1.0, monitor=0)
    with pytest.raises(PairingError, match="revoked by IT"):
        asyncio.run(runner.handle(PairingRequest("pair", "tkt_1")))
    problem = read_problem(problem_file)
    assert problem is not None and problem.kind == "credential" and "revoked by IT" in problem.message

    device.reply = DeviceReply(200, {"agent_username": "alice", "token": "t"})
    assert asyncio.run(runner.handle(PairingRequest("pair", "tkt_2"))) == "alice"
    assert read_problem(problem_file) is None
