"""When the desktop tells the server about the recorder's last problem, and when it clears it. Pure.

A recorder that could not start (an unknown config key, a wrong server URL, a refused enrolment)
left its problem in the per-user problem file (tandem_protocol.recorder_problem) and never reached
the server. The desktop checks now and then (agent_app/recorder_problem_link.py does the I/O) and
decides here from what it saw:

* the problem file's content, and whether the recorder's local pairing endpoint answers;
* a problem counts while the recorder does not answer. A refused device credential counts even
  when it answers: that recorder listens but can record nobody until IT enrols the PC again;
* report a problem once, not on every check: again only when it changed, or after ``REPEAT``
  (the server drops a problem nobody re-reported within a week);
* once a reported problem is over (the recorder answers, or removed the file after a clean
  start), clear it on the server, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tandem_protocol.recorder_problem import RecorderProblem

REPEAT = 24 * 3600.0  # seconds: well inside the server's week, far from its rate limit

# Kinds that mean "the recorder process is running but cannot record".
WHILE_RUNNING = ("credential",)


@dataclass(frozen=True, slots=True)
class Sent:
    problem: RecorderProblem
    at: float  # local clock, seconds


@dataclass(frozen=True, slots=True)
class Decision:
    action: Literal["report", "clear", "none"]
    problem: RecorderProblem | None = None  # what to report (action "report")


NOTHING = Decision("none")


def current_problem(problem: RecorderProblem | None, recorder_answers: bool) -> RecorderProblem | None:
    """The problem that holds now, if any."""
    if problem is None:
        return None
    if recorder_answers and problem.kind not in WHILE_RUNNING:
        return None  # a stale file: the recorder runs (it removes the file at a clean start)
    return problem


def decide(
    problem: RecorderProblem | None, recorder_answers: bool, last_sent: Sent | None, now: float
) -> Decision:
    active = current_problem(problem, recorder_answers)
    if active is not None:
        if last_sent is None or last_sent.problem != active or now - last_sent.at >= REPEAT:
            return Decision("report", active)
        return NOTHING
    if last_sent is not None:
        return Decision("clear")
    return NOTHING


def after(decision: Decision, delivered: bool, last_sent: Sent | None, now: float) -> Sent | None:
    """What the desktop remembers as on the server once ``decision`` was carried out (or not:
    a report or clear that did not get through is tried again at the next check)."""
    if not delivered or decision.action == "none":
        return last_sent
    if decision.action == "clear":
        return None
    assert decision.problem is not None
    return Sent(decision.problem, now)


def report_body(problem: RecorderProblem, hostname: str, os_user: str) -> dict[str, str | None]:
    """``POST /api/agent/recorder-problems``'s body: the PC as the recorder names itself."""
    return {"hostname": hostname, "os_user": os_user, **problem.to_dict()}


# The line's framing, in English: the health panel translates it (agent_app/i18n.py lists both
# with ``%1`` for the message); the recorder's message after it stays as the recorder wrote it.
CANNOT_RECORD = "Screen recorder cannot record: "
NOT_RUNNING = "Screen recorder not running: "


def status_line(problem: RecorderProblem | None, recorder_answers: bool) -> str:
    """A short line for the agent ("" when all is well): he may be asked about it by IT."""
    active = current_problem(problem, recorder_answers)
    if active is None:
        return ""
    if active.kind in WHILE_RUNNING:
        return CANNOT_RECORD + active.message
    return NOT_RUNNING + active.message
