"""The window reports the PC recorder's problem after a login (fake server API, real reporter with a
recording HTTP transport): the report is made off the Qt thread, the agent sees a discreet line
in the health panel, a logout stops the checks, and the recorder's clean start clears it."""

from __future__ import annotations

import dataclasses
import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytestqt.qtbot import QtBot

from agent_app.recorder_problem_link import RecorderProblemReporter
from agent_app.validation import validate_login
from agent_app.widgets.main_window import MainWindow
from tandem_protocol.recorder_problem import RecorderProblem, clear_problem, write_problem

pytestmark = pytest.mark.timeout(60)
PROBLEM = RecorderProblem(
    "config", "/etc/tandem/agent.toml: unknown key 'sever_url'", datetime(2026, 12, 5, tzinfo=UTC)
)


def test_window_reports_shows_and_clears_the_recorders_problem(
    qtbot: QtBot, fakes: Any, tmp_path: Path
) -> None:
    posts: list[tuple[dict[str, Any], threading.Thread]] = []

    def server(request: httpx.Request) -> httpx.Response:
        posts.append((json.loads(request.content), threading.current_thread()))
        return httpx.Response(204)

    problem_file = tmp_path / "last-problem.json"
    write_problem(PROBLEM, problem_file)
    reporter = RecorderProblemReporter(
        problem_file=problem_file,
        socket_path=tmp_path / "no-recorder.sock",  # the recorder is not running
        transport=httpx.MockTransport(server),
    )
    services = dataclasses.replace(fakes.services(), problem_reporter=reporter)
    window = MainWindow(services)
    qtbot.addWidget(window)
    window.show()
    assert window.problem_watch is not None and not window.health_panel.problem.isVisible()

    window.login(validate_login("http://127.0.0.1:8000", "alice", "secret", "4711"))
    qtbot.waitUntil(lambda: len(posts) == 1, timeout=10000)
    body, thread = posts[0]
    assert body["kind"] == "config" and body["message"] == PROBLEM.message
    assert thread is not threading.main_thread()
    qtbot.waitUntil(lambda: window.health_panel.problem.isVisible(), timeout=10000)
    assert window.health_panel.problem.text() == f"Screen recorder not running: {PROBLEM.message}"

    window.problem_watch.check_now()  # the next tick: nothing new to say
    checks = window.problem_watch.checks
    qtbot.waitUntil(lambda: window.problem_watch is not None and window.problem_watch.checks > checks)
    assert len(posts) == 1

    clear_problem(problem_file)  # the recorder started cleanly
    window.problem_watch.check_now()
    qtbot.waitUntil(lambda: len(posts) == 2, timeout=10000)
    assert posts[1][0]["kind"] == "cleared"
    qtbot.waitUntil(lambda: not window.health_panel.problem.isVisible(), timeout=10000)

    window._log_out()
    qtbot.waitUntil(lambda: not window.model.state.logged_in, timeout=10000)
    assert not window.problem_watch.timer.isActive()
    window.shutdown()


def test_without_a_reporter_the_window_reads_no_problem_file(qtbot: QtBot, fakes: Any) -> None:
    window = MainWindow(fakes.services())  # tests with a fake server: no user's file is read
    qtbot.addWidget(window)
    assert window.problem_watch is None
    window.shutdown()
