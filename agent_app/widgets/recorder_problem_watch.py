"""The Qt side of reporting the recorder's problem: a timer that, while the agent is logged in,
has the reporter (agent_app/recorder_problem_link.py) look once a minute on the window's worker
thread, and hands its status line back on the Qt thread. Nothing here blocks the Qt thread."""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, QTimer, Signal

from agent_app.bridge import TaskRunner
from agent_app.recorder_problem_link import CheckResult, RecorderProblemReporter

log = logging.getLogger(__name__)
CHECK_MS = 60_000


class RecorderProblemWatch(QObject):
    status_changed = Signal(str)  # "" when the recorder has no problem to tell the agent about

    def __init__(
        self,
        runner: TaskRunner,
        reporter: RecorderProblemReporter,
        parent: QObject | None = None,
        *,
        interval_ms: int = CHECK_MS,
    ) -> None:
        super().__init__(parent)
        self._runner, self.reporter = runner, reporter
        self._session: tuple[str, str] | None = None  # (server URL, the desktop's token)
        self._busy = False  # one check at a time: a slow server must not queue them up
        self.status = ""
        self.checks = 0  # finished checks, for tests
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.check_now)

    def start(self, server_url: str, token: str) -> None:
        """After a login: look at once (the pairing at login has just told), then every minute."""
        self._session = (server_url, token)
        self.timer.start()
        self.check_now()

    def stop(self) -> None:
        self._session = None
        self.timer.stop()
        self._show("")

    def check_now(self) -> None:
        if self._session is None or self._busy:
            return
        server_url, token = self._session
        self._busy = self._runner.submit(
            lambda: self.reporter.check(server_url, token), self._done, self._failed
        )

    def _done(self, result: CheckResult) -> None:
        self._busy = False
        self.checks += 1
        if self._session is not None:
            self._show(result.status)

    def _failed(self, exc: Exception) -> None:
        self._busy = False
        self.checks += 1
        log.warning("checking the recorder's problem file failed: %s", exc)

    def _show(self, status: str) -> None:
        if status != self.status:
            self.status = status
            self.status_changed.emit(status)
