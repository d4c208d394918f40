"""The desktop's report of the recorder's problem: when it reports and clears
(agent_app/recorder_problem_report.py, pure), and its I/O (agent_app/recorder_problem_link.py)
against a real Unix socket for the pairing endpoint and a recording HTTP transport."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent_app.recorder_problem_link import RecorderProblemReporter, recorder_answers
from agent_app.recorder_problem_report import NOTHING, REPEAT, Decision, Sent, after, decide, status_line
from recorder_service.pairing_ipc import PairingRequest, PairingServer
from tandem_protocol.recorder_problem import RecorderProblem, clear_problem, write_problem

WHEN = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
CONFIG = RecorderProblem("config", "/etc/tandem/agent.toml: unknown key 'sever_url'", WHEN, "0.2.0")
UNREACHABLE = RecorderProblem("unreachable", "cannot reach https://wrong.example", WHEN)
REVOKED = RecorderProblem("credential", "the server refused (401): revoked by IT", WHEN)


# ---- the rules ------------------------------------------------------------------------------


def test_a_problem_with_no_recorder_answering_is_reported_once() -> None:
    first = decide(CONFIG, False, None, 100.0)
    assert first == Decision("report", CONFIG)
    sent = after(first, True, None, 100.0)
    assert decide(CONFIG, False, sent, 160.0) == NOTHING  # the next tick: already on the server


def test_a_changed_problem_is_reported_again() -> None:
    sent = Sent(CONFIG, 100.0)
    assert decide(UNREACHABLE, False, sent, 160.0) == Decision("report", UNREACHABLE)


def test_a_lasting_problem_is_repeated_daily_for_the_servers_week() -> None:
    sent = Sent(CONFIG, 100.0)
    assert decide(CONFIG, False, sent, 100.0 + REPEAT - 1) == NOTHING
    assert decide(CONFIG, False, sent, 100.0 + REPEAT) == Decision("report", CONFIG)


def test_an_undelivered_report_is_tried_again() -> None:
    decision = decide(CONFIG, False, None, 100.0)
    assert after(decision, False, None, 100.0) is None
    assert decide(CONFIG, False, None, 160.0) == Decision("report", CONFIG)


def test_recorder_running_again_clears_once() -> None:
    sent = Sent(CONFIG, 100.0)
    # The recorder answers (its clean start also removed the file; a stale file does not count).
    for problem in (None, CONFIG):
        decision = decide(problem, True, sent, 160.0)
        assert decision == Decision("clear")
        assert after(decision, True, sent, 160.0) is None
    assert decide(None, True, None, 220.0) == NOTHING
    # Not delivered: still remembered, so the clear is tried again.
    assert after(Decision("clear"), False, sent, 160.0) == sent


def test_the_file_gone_clears_even_without_an_endpoint() -> None:
    # A per-agent recorder has no pairing endpoint: its clean start removing the file is the sign.
    assert decide(None, False, Sent(CONFIG, 1.0), 2.0) == Decision("clear")


def test_nothing_to_say_when_all_is_well_or_the_file_is_stale() -> None:
    assert decide(None, False, None, 1.0) == NOTHING
    assert decide(CONFIG, True, None, 1.0) == NOTHING


def test_a_refused_credential_counts_while_the_recorder_answers() -> None:
    assert decide(REVOKED, True, None, 1.0) == Decision("report", REVOKED)
    assert status_line(REVOKED, True).startswith("Screen recorder cannot record: ")


def test_status_line_for_the_agent() -> None:
    assert status_line(CONFIG, False) == f"Screen recorder not running: {CONFIG.message}"
    assert status_line(CONFIG, True) == "" and status_line(None, False) == ""


# ---- the I/O --------------------------------------------------------------------------------


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[Path]:
    """The recorder's real pairing endpoint (recorder_service/pairing_ipc.py) on its own loop. Its
    handler fails the test if called: the desktop's probe must never pair or unpair anyone."""
    path = tmp_path / "rec.sock"
    loop = asyncio.new_event_loop()
    handled: list[PairingRequest] = []

    async def handler(request: PairingRequest) -> str:
        handled.append(request)
        return ""

    endpoint = PairingServer(path, handler)
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(endpoint.start(), loop).result(10)
    try:
        yield path
    finally:
        asyncio.run_coroutine_threadsafe(endpoint.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
    assert handled == []


def test_probe_sees_a_listening_endpoint_and_a_missing_one(endpoint: Path, tmp_path: Path) -> None:
    assert recorder_answers(endpoint) is True
    assert recorder_answers(tmp_path / "nobody.sock") is False


class Server:
    def __init__(self, status: int = 204) -> None:
        self.status = status
        self.posts: list[tuple[str, str, dict[str, Any]]] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.posts.append((str(request.url), request.headers["Authorization"], json.loads(request.content)))
        return httpx.Response(self.status)


def test_reporter_reports_once_then_clears(tmp_path: Path) -> None:
    path, server, now = tmp_path / "last-problem.json", Server(), [100.0]
    reporter = RecorderProblemReporter(
        problem_file=path,
        socket_path=tmp_path / "none.sock",
        clock=lambda: now[0],
        transport=httpx.MockTransport(server.handler),
    )
    assert reporter.check("http://srv", "tok").action == "none" and server.posts == []

    write_problem(CONFIG, path)
    result = reporter.check("http://srv/", "tok")
    assert (result.action, result.delivered) == ("report", True)
    assert result.status == f"Screen recorder not running: {CONFIG.message}"
    url, auth, body = server.posts[0]
    assert url == "http://srv/api/agent/recorder-problems" and auth == "Bearer tok"
    assert body["kind"] == "config" and body["message"] == CONFIG.message
    assert body["occurred_at"] == WHEN.isoformat() and body["recorder_version"] == "0.2.0"
    assert body["hostname"] == socket.gethostname() and isinstance(body["os_user"], str)

    now[0] += 60
    assert reporter.check("http://srv/", "tok").action == "none" and len(server.posts) == 1

    clear_problem(path)  # the recorder started cleanly
    result = reporter.check("http://srv/", "tok")
    assert (result.action, result.delivered, result.status) == ("clear", True, "")
    assert server.posts[1][2]["kind"] == "cleared" and server.posts[1][2]["hostname"] == body["hostname"]
    assert reporter.check("http://srv/", "tok").action == "none" and len(server.posts) == 2


def test_reporter_tries_again_after_a_refusal_or_no_server(tmp_path: Path) -> None:
    path, server = tmp_path / "last-problem.json", Server(status=429)
    write_problem(UNREACHABLE, path)
    reporter = RecorderProblemReporter(
        problem_file=path, socket_path=tmp_path / "none.sock", transport=httpx.MockTransport(server.handler)
    )
    assert reporter.check("http://srv", "tok").delivered is False
    server.status = 204
    assert reporter.check("http://srv", "tok").delivered is True
    assert len(server.posts) == 2
    unreachable = RecorderProblemReporter(problem_file=path, socket_path=tmp_path / "none.sock")
    assert unreachable.check("http://127.0.0.1:9", "tok").delivered is False  # logged, never raised


def test_a_stale_file_while_the_recorder_answers_is_not_reported(tmp_path: Path, endpoint: Path) -> None:
    path, server = tmp_path / "last-problem.json", Server()
    write_problem(CONFIG, path)
    reporter = RecorderProblemReporter(
        problem_file=path, socket_path=endpoint, transport=httpx.MockTransport(server.handler)
    )
    result = reporter.check("http://srv", "tok")
    assert (result.action, result.status) == ("none", "") and server.posts == []
