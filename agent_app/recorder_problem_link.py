"""The I/O of reporting the recorder's problem (the rules are in recorder_problem_report.py):
read the problem file, ask the recorder's pairing endpoint whether it answers, and post the
report or the clear to the server with the desktop's own session token.

Blocking: the window runs ``check`` on its worker thread (agent_app.bridge.TaskRunner), never on
the Qt thread. One ``RecorderProblemReporter`` lives as long as the desktop and remembers what it
sent, so a problem is reported once, not at every check, also across the agent's logins.
"""

from __future__ import annotations

import getpass
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from agent_app import pairing
from agent_app.recorder_problem_report import Sent, after, decide, report_body, status_line
from tandem_protocol.recorder_problem import RecorderProblem, problem_path, read_problem

log = logging.getLogger(__name__)

PROBE_SECONDS = 3.0  # the endpoint answers a probe at once: it does not ask the server
TIMEOUT = httpx.Timeout(10.0, connect=5.0)


def recorder_answers(path: Path | None = None) -> bool:
    """Does the recorder's pairing endpoint answer? It is asked an op it does not know (it has no
    status op, and "unpair" would end the agent's recording): any JSON answer, even its refusal,
    means a recorder is listening."""
    try:
        pairing.send({"op": "probe"}, path, timeout=PROBE_SECONDS)
    except (OSError, ValueError):
        return False
    return True


def this_pc() -> tuple[str, str]:
    """The host name and OS user, as the recorder names this PC when it enrols
    (recorder_service/host_identity.py), so the fleet page's rows for it match."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError, ImportError):
        user = ""
    return socket.gethostname(), user


@dataclass(frozen=True, slots=True)
class CheckResult:
    action: str  # "report", "clear" or "none"
    delivered: bool
    status: str  # the line for the agent, "" when all is well


class RecorderProblemReporter:
    def __init__(
        self,
        *,
        problem_file: Path | None = None,
        socket_path: Path | None = None,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.problem_file = problem_file or problem_path()
        self.socket_path = socket_path  # None: $XDG_RUNTIME_DIR's, as the pairing at login
        self._clock = clock
        self._transport = transport
        self._server = ""
        self.last_sent: Sent | None = None

    def check(self, server_url: str, token: str) -> CheckResult:
        """Look once; report or clear if the rules say so. Never raises for a network failure."""
        if server_url != self._server:  # another server knows nothing of what we sent
            self._server, self.last_sent = server_url, None
        problem = read_problem(self.problem_file)
        answers = recorder_answers(self.socket_path)
        now = self._clock()
        decision = decide(problem, answers, self.last_sent, now)
        delivered = False
        if decision.action != "none":
            host, user = this_pc()
            if decision.problem is not None:
                body = report_body(decision.problem, host, user)
            else:
                cleared = RecorderProblem("other", "", datetime.now(UTC))
                body = {**report_body(cleared, host, user), "kind": "cleared"}
            delivered = self._post(server_url, token, body)
        self.last_sent = after(decision, delivered, self.last_sent, now)
        return CheckResult(decision.action, delivered, status_line(problem, answers))

    def _post(self, server_url: str, token: str, body: dict[str, str | None]) -> bool:
        url = f"{server_url.rstrip('/')}/api/agent/recorder-problems"
        try:
            with httpx.Client(timeout=TIMEOUT, transport=self._transport) as client:
                response = client.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            log.warning("could not report the recorder's problem to %s: %s", server_url, exc)
            return False
        if response.status_code != 204:
            log.warning(
                "the server did not take the recorder's problem (%d): %s",
                response.status_code,
                response.text[:300],
            )
            return False
        log.info("recorder problem %s on the server: %s", body["kind"], body["message"] or "-")
        return True
