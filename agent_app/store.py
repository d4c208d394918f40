"""`DesktopModel`: the desktop's current state, a dispatch method and its view.

The thin mutable holder around the pure reducer (`agent_app.model`) and view
(`agent_app.view`); the window owns one and tests read it through `MainWindow.model`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from agent_app.model import Action, AgentState, DesktopState, EventReceived, agent_state, reduce
from agent_app.ratelimit import DropCounter
from agent_app.view import DesktopView, build_view
from tandem_protocol import CallInfo

log = logging.getLogger(__name__)


class DesktopModel:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._state = DesktopState()
        self._clock = clock
        self._dropped = DropCounter(log, "malformed events")

    @property
    def state(self) -> DesktopState:
        return self._state

    @property
    def call(self) -> CallInfo | None:
        return self._state.call

    @property
    def agent_state(self) -> AgentState:
        return agent_state(self._state)

    def server_now(self) -> float:
        """Now on the server's clock, by the current offset estimate."""
        return self._clock() + self._state.clock.value

    def view(self) -> DesktopView:
        return build_view(self._state, self._clock())

    def dispatch(self, action: Action) -> DesktopState:
        before = self._state.dropped_events
        self._state = reduce(self._state, action)
        if self._state.dropped_events > before and isinstance(action, EventReceived):
            self._dropped.drop(f"{action.envelope.type} event with bad data")
        return self._state
