"""The main window's pause reason (issue 13 item 2): after any pause it sent — button, tray or
hotkey, all through ``_on_pause_clicked`` — the window opens the chooser and sends the chosen
reason on its worker thread (``agent_app.pause_reason`` has the rules). A mixin of `MainWindow`,
kept apart so that the window's module stays about the session, the pause and the channel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import QWidget

from agent_app.api_client import AgentApi
from agent_app.errors import AgentAppError, AuthError
from agent_app.model import ErrorNoticed
from agent_app.pause_reason import failed_text, prompt_for
from agent_app.store import DesktopModel
from agent_app.widgets.pause_reason_dialog import PauseReasonDialog


class PauseReasonMixin:
    # Provided by MainWindow.
    model: DesktopModel
    _api: AgentApi | None

    pause_reason_dialog: PauseReasonDialog | None

    def _run(
        self, fn: Callable[[], Any], on_ok: Callable[[Any], None], on_error: Callable[[Exception], None]
    ) -> None: ...  # pragma: no cover - MainWindow's

    def _dispatch(self, action: Any) -> None: ...  # pragma: no cover - MainWindow's

    def _session_lost(self) -> None: ...  # pragma: no cover - MainWindow's

    def _ask_pause_reason(self, interaction_id: str) -> None:
        """Called right after the pause was handed to the worker: it is on its way already."""
        prompt = prompt_for(self.model.state.codes, interaction_id)
        if prompt is None:
            return
        self._dismiss_pause_reason()  # a newer pause asks for its own reason
        dialog = PauseReasonDialog(prompt, self if isinstance(self, QWidget) else None)
        dialog.chosen.connect(self._send_pause_reason)
        dialog.destroyed.connect(self._pause_reason_closed)
        self.pause_reason_dialog = dialog
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()  # the hotkey's pause comes from another program's window

    def _dismiss_pause_reason(self) -> None:
        if self.pause_reason_dialog is not None:
            self.pause_reason_dialog.dismiss()
            self.pause_reason_dialog = None

    def _pause_reason_closed(self, *_: object) -> None:
        self.pause_reason_dialog = None

    def _send_pause_reason(self, interaction_id: str, code: str) -> None:
        api = self._api
        if api is None:
            return
        # The same single worker as the pause: the reason cannot overtake the pause it is for.
        self._run(
            lambda: api.pause_reason(interaction_id, code), lambda _answer: None, self._pause_reason_failed
        )

    def _pause_reason_failed(self, exc: Exception) -> None:
        if isinstance(exc, AuthError):
            self._session_lost()
            return
        message = str(exc) if isinstance(exc, AgentAppError) else f"Unexpected error: {exc}"
        self._dispatch(ErrorNoticed(failed_text(message)))
