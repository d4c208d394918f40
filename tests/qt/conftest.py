"""Qt test setup for the agent desktop: offscreen platform and fake server-side services."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

# Must be set before pytest-qt creates the QApplication. setdefault: a run that wants the
# window on a real (e.g. Xvfb) display, such as an end-to-end run, can say QT_QPA_PLATFORM=xcb.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from agent_app.event_channel import EnvelopeCallback, StatusCallback
from agent_app.model import ChannelState
from agent_app.services import Services
from tandem_protocol import CallInfo, Envelope, LoginResponse, UserInfo
from tandem_protocol.events import to_data

T0 = 1_763_712_000.0
GATE_TIMEOUT = 10.0


def call_info(**over: Any) -> CallInfo:
    raw: dict[str, Any] = {
        "interaction_id": "int-1",
        "call_id": "c1@pbx",
        "dn": "4711",
        "caller": "+4930123456",
        "callee": "4711",
        "phase": "active",
        "voice": "recording",
        "screen": "recording",
        "paused": False,
        "started_at": T0,
        "answered_at": T0,
    }
    raw.update(over)
    return CallInfo.from_dict(raw)


class FakeApi:
    """Answers like the server would; records the thread of every call.

    ``results[name]`` is a value to return or an exception to raise; a method whose name is
    in ``gates`` first waits for that event, so a test can see the UI while a call is in flight.
    """

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.token: str | None = None
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.threads: list[threading.Thread] = []
        self.closed = False
        self.gates: dict[str, threading.Event] = {}
        self.results: dict[str, Any] = {
            "login": LoginResponse(
                token="tok-1",
                expires_at=T0 + 3600,
                user=UserInfo(id=7, username="alice", role="agent", full_name="Alice Agent", dn="4711"),
            ),
            "current_call": None,
            "pause": call_info(paused=True, voice="paused", screen="paused"),
            "resume": call_info(),
            "done": call_info(phase="done", voice="stopped"),
            "logout": None,
            "agent_codes": {"reason_codes": [], "disposition_codes": [], "disposition_required": False},
            "agent_state": {"state": "ready", "reason_code": None},
            "set_agent_state": {"state": "ready", "reason_code": None},
            "wrapup": call_info(phase="done", voice="stopped"),
            "pause_reason": {"code": "", "label": ""},
        }

    def _answer(self, name: str, *args: Any) -> Any:
        self.calls.append((name, args))
        self.threads.append(threading.current_thread())
        gate = self.gates.get(name)
        if gate is not None and not gate.wait(GATE_TIMEOUT):
            raise AssertionError(f"gate for {name} never opened")
        result = self.results[name]
        if isinstance(result, Exception):
            raise result
        return result

    def login(self, username: str, password: str, dn: str) -> LoginResponse:
        response: LoginResponse = self._answer("login", username, password, dn)
        self.token = response.token
        return response

    def logout(self) -> None:
        self._answer("logout")
        self.token = None

    def current_call(self) -> CallInfo | None:
        result: CallInfo | None = self._answer("current_call")
        return result

    def pause(self, interaction_id: str) -> CallInfo:
        result: CallInfo = self._answer("pause", interaction_id)
        return result

    def resume(self, interaction_id: str) -> CallInfo:
        result: CallInfo = self._answer("resume", interaction_id)
        return result

    def done(self, interaction_id: str) -> CallInfo:
        result: CallInfo = self._answer("done", interaction_id)
        return result

    def agent_codes(self) -> dict[str, Any]:
        result: dict[str, Any] = self._answer("agent_codes")
        return result

    def agent_state(self) -> dict[str, Any]:
        result: dict[str, Any] = self._answer("agent_state")
        return result

    def pause_reason(self, interaction_id: str, code: str) -> dict[str, Any]:
        result: dict[str, Any] = self._answer("pause_reason", interaction_id, code)
        return result

    def set_agent_state(self, state: str, reason_code: str) -> dict[str, Any]:
        result: dict[str, Any] = self._answer("set_agent_state", state, reason_code)
        return result

    def wrapup(self, interaction_id: str, disposition: str, notes: str) -> CallInfo | None:
        result: CallInfo | None = self._answer("wrapup", interaction_id, disposition, notes)
        return result

    def close(self) -> None:
        self.closed = True

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


class FakeChannel:
    """Delivers envelopes from its own thread, like the real channel does."""

    def __init__(self, server_url: str, token: str, on_envelope: EnvelopeCallback, on_status: StatusCallback):
        self.server_url, self.token = server_url, token
        self._on_envelope, self._on_status = on_envelope, on_status
        self.started = False
        self.stopped = False

    def start(self) -> None:
        self.started = True

    def stop(self, timeout: float = 3.0) -> None:
        self.stopped = True

    def _from_thread(self, fn: Callable[[], None]) -> None:
        thread = threading.Thread(target=fn)
        thread.start()
        thread.join()

    def send(self, kind: str, data: dict[str, Any], seq: int = 0, at: float = T0) -> None:
        envelope = Envelope(type=kind, data=data, seq=seq, at=at)
        self._from_thread(lambda: self._on_envelope(envelope))

    def status(self, state: ChannelState, detail: str = "") -> None:
        self._from_thread(lambda: self._on_status(state, detail))


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Fakes:
    def __init__(self) -> None:
        self.apis: list[FakeApi] = []
        self.channels: list[FakeChannel] = []
        self.clock = FakeClock()
        self.configure: Callable[[FakeApi], None] = lambda api: None

    @property
    def api(self) -> FakeApi:
        return self.apis[-1]

    @property
    def channel(self) -> FakeChannel:
        return self.channels[-1]

    def make_api(self, server_url: str) -> FakeApi:
        api = FakeApi(server_url)
        self.configure(api)
        self.apis.append(api)
        return api

    def make_channel(
        self, server_url: str, token: str, on_envelope: EnvelopeCallback, on_status: StatusCallback
    ) -> FakeChannel:
        channel = FakeChannel(server_url, token, on_envelope, on_status)
        self.channels.append(channel)
        return channel

    @staticmethod
    def call(**over: Any) -> CallInfo:
        return call_info(**over)

    @staticmethod
    def call_data(**over: Any) -> dict[str, Any]:
        return to_data(call_info(**over))

    def services(self) -> Services:
        return Services(api_factory=self.make_api, channel_factory=self.make_channel, clock=self.clock)


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    yield Fakes()
