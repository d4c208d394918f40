"""The recorder-missing screen state (lifecycle transitions and ``RecorderLink``'s timers) and the
recorder policy in ``screen.start`` / pushed on change. The hub is real; time is injected: the
heartbeat timeout is a sleep the test releases."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

from server.calls.control import LiveCall, RecordingControl
from server.calls.lifecycle import Interaction
from server.calls.recorder_link import RecorderLink
from server.calls.repository import CallRepository
from server.calls.session_records import SessionRecords
from server.events.hub import EventHub, Subscription
from tandem_protocol.events import Envelope, EventType, Phase, ScreenState

AGENT = 7


class _Repo:
    def __init__(self) -> None:
        self.saved: list[str] = []

    def save(self, live: Interaction, *args: Any, **kwargs: Any) -> None:
        self.saved.append(live.screen.value)


class _Records:
    def __init__(self) -> None:
        self.audits: list[tuple[str, str, str]] = []

    def audit(self, action: str, interaction_id: str, detail: str, **kwargs: Any) -> None:
        self.audits.append((action, detail, kwargs.get("outcome", "")))


class _Sleep:
    """An injected ``asyncio.sleep``: records the wait and returns when the test says so."""

    def __init__(self) -> None:
        self.asked: list[float] = []
        self.release = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        await self.release.wait()


def _drain(sub: Subscription) -> list[Envelope]:
    out = []
    while not sub.queue.empty():
        env = sub.queue.get_nowait()
        if env is not None:
            out.append(env)
    return out


def _setup() -> tuple[RecorderLink, RecordingControl, dict[str, LiveCall], EventHub, _Repo, _Records, _Sleep]:
    hub, repo, records, sleep = EventHub(), _Repo(), _Records(), _Sleep()
    control = RecordingControl(
        cast(CallRepository, repo), cast(SessionRecords, records), hub, screen_fps=5.0, confirm_timeout=1.0
    )
    calls: dict[str, LiveCall] = {}
    current: dict[int, str] = {}
    link = RecorderLink(hub, control, calls, current, sleep=sleep)
    state = Interaction("i-1", "c-1", AGENT, "1001", "a", "b", time.time(), screen_decision=True)
    calls["i-1"] = LiveCall(state, "agent")
    current[AGENT] = "i-1"
    return link, control, calls, hub, repo, records, sleep


async def _settle() -> None:
    for _ in range(20):  # let the created tasks run up to their next real wait
        await asyncio.sleep(0)


async def _until(condition: Any, what: str) -> None:
    """Database writes (save, audit) go through worker threads: poll, generously."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


# -- lifecycle ---------------------------------------------------------------------------------
def test_answer_without_a_recorder_says_so_at_once_and_sends_nothing() -> None:
    state = Interaction("i", "c", AGENT, "1001", "a", "b", 0.0, screen_decision=True)
    assert state.answer(1.0, recorder=False) is False
    assert state.screen is ScreenState.NO_RECORDER and state.to_info().screen == "no_recorder"
    # A pause then waits for no screen (nobody could confirm it) and Done stops no capture.
    assert state.begin_pause(2.0) is False
    assert state.end_call(3.0, 60.0) is False
    assert state.end_acw(4.0) is False


def test_answer_with_a_recorder_requests_the_screen_and_unsampled_calls_stay_off() -> None:
    state = Interaction("i", "c", AGENT, "1001", "a", "b", 0.0, screen_decision=True)
    assert state.answer(1.0, recorder=True) and state.screen is ScreenState.REQUESTED
    off = Interaction("j", "c", AGENT, "1001", "a", "b", 0.0, screen_decision=False)
    assert off.answer(1.0, recorder=False) is False and off.screen is ScreenState.OFF


def test_lost_and_back_only_where_a_screen_is_wanted() -> None:
    state = Interaction("i", "c", AGENT, "1001", "a", "b", 0.0, screen_decision=True)
    assert not state.recorder_lost()  # ringing
    state.answer(1.0)
    state.screen_reported(ScreenState.PAUSED)
    assert state.recorder_lost() and state.screen is ScreenState.NO_RECORDER
    assert not state.recorder_lost()
    assert state.recorder_back() and state.screen is ScreenState.REQUESTED
    assert not state.recorder_back()
    state.end_call(2.0, 60.0)  # after-call work is recorded too
    state.screen_reported(ScreenState.RECORDING)
    assert state.recorder_lost() and state.recorder_back()
    state.screen_reported(ScreenState.STOPPED)
    assert not state.recorder_lost()  # its file is finished: nothing is missing
    state.end_acw(3.0)
    assert state.phase is Phase.DONE and not state.recorder_back()
    stopped = Interaction("k", "c", AGENT, "1001", "a", "b", 0.0, screen_decision=True)
    stopped.answer(1.0, recorder=False)
    stopped.stop(2.0)  # the agent stopped the recording: a returning recorder starts nothing
    assert not stopped.recorder_back()


# -- RecorderLink: a recorder gone mid-call ------------------------------------------------------
def test_a_recorder_gone_longer_than_the_timeout_makes_the_screen_missing() -> None:
    async def main() -> None:
        link, _control, calls, hub, repo, records, sleep = _setup()
        desktop = hub.subscribe(AGENT, "desktop")
        recorder = hub.subscribe(AGENT, "recorder")
        await link.recorder_connected(AGENT)
        live = calls["i-1"]
        live.state.answer(time.time(), link.connected(AGENT))
        live.state.screen_reported(ScreenState.RECORDING)
        link.set_policy({**link.policy, "heartbeat_seconds": 4.0})
        hub.unsubscribe(recorder)
        link.recorder_disconnected(AGENT)
        await _settle()
        assert sleep.asked == [12.0]  # three heartbeats
        assert live.state.screen is ScreenState.RECORDING  # not before the timeout
        sleep.release.set()
        await _until(lambda: records.audits, "the audit record")
        assert live.state.screen is ScreenState.NO_RECORDER
        assert repo.saved[-1] == "no_recorder"
        updates = [e for e in _drain(desktop) if e.type == EventType.CALL_UPDATED]
        assert updates and updates[-1].data["screen"] == "no_recorder"
        assert records.audits[-1][0] == "recording.screen_missing" and records.audits[-1][2] == "failed"
        assert "12 s" in records.audits[-1][1]

    asyncio.run(main())


def test_a_recorder_back_within_the_timeout_changes_nothing() -> None:
    async def main() -> None:
        link, _control, calls, hub, repo, _records, sleep = _setup()
        recorder = hub.subscribe(AGENT, "recorder")
        await link.recorder_connected(AGENT)
        live = calls["i-1"]
        live.state.answer(time.time(), True)
        hub.unsubscribe(recorder)
        link.recorder_disconnected(AGENT)
        await _settle()
        hub.subscribe(AGENT, "recorder")  # a restart of the service: back in time
        await link.recorder_connected(AGENT)
        sleep.release.set()
        await _settle()
        assert live.state.screen is ScreenState.REQUESTED and repo.saved == []

    asyncio.run(main())


def test_a_returning_recorder_gets_the_screen_requested_again() -> None:
    async def main() -> None:
        link, _control, calls, hub, repo, records, _sleep = _setup()
        desktop = hub.subscribe(AGENT, "desktop")
        live = calls["i-1"]
        assert not link.connected(AGENT)
        live.state.answer(time.time(), link.connected(AGENT))
        assert live.state.screen is ScreenState.NO_RECORDER
        hub.subscribe(AGENT, "recorder")
        await link.recorder_connected(AGENT)
        assert live.state.screen is ScreenState.REQUESTED
        await _until(lambda: records.audits, "the audit record")
        assert repo.saved == ["requested"]
        assert [e.data["screen"] for e in _drain(desktop) if e.type == EventType.CALL_UPDATED] == [
            "requested"
        ]
        assert records.audits[-1][0] == "recording.screen_requested"

    asyncio.run(main())


# -- the policy ----------------------------------------------------------------------------------
def test_screen_start_carries_the_policy_and_its_frame_rate() -> None:
    async def main() -> None:
        link, control, calls, hub, _repo, _records, _sleep = _setup()
        recorder = hub.subscribe(AGENT, "recorder")
        link.set_policy({**link.policy, "fps": 2.0, "monitors": "primary"})
        _drain(recorder)
        live = calls["i-1"]
        control.command(live, EventType.SCREEN_START, 10.0)
        control.command(live, EventType.SCREEN_PAUSE, 11.0)
        start, pause = _drain(recorder)
        assert start.type == EventType.SCREEN_START and start.data["fps"] == 2.0
        assert start.data["policy"]["monitors"] == "primary"
        assert pause.data["policy"] is None and pause.data["fps"] is None

    asyncio.run(main())


def test_a_changed_policy_is_pushed_to_connected_recorders_only_once() -> None:
    async def main() -> None:
        link, _control, _calls, hub, _repo, _records, _sleep = _setup()
        recorder = hub.subscribe(AGENT, "recorder")
        await link.recorder_connected(AGENT)
        other = hub.subscribe(8, "recorder")  # connected, but never through recorder_connected
        gone = hub.subscribe(9, "recorder")
        await link.recorder_connected(9)
        hub.unsubscribe(gone)
        desktop = hub.subscribe(AGENT, "desktop")
        on_connect = _drain(recorder)  # the policy in force, told on connecting
        assert [e.type for e in on_connect] == [EventType.RECORDER_POLICY]
        assert on_connect[0].data == link.policy
        changed = {**link.policy, "fps": 1.0}
        assert link.set_policy(changed) == 1
        assert link.set_policy(dict(changed)) == 0  # unchanged: nothing sent again
        pushed = _drain(recorder)
        assert [e.type for e in pushed] == [EventType.RECORDER_POLICY] and pushed[0].data["fps"] == 1.0
        assert _drain(other) == []
        # The agent's desktop shares the channel and gets it too; it ignores unknown event types.
        assert [e.type for e in _drain(desktop)] == [EventType.RECORDER_POLICY]

    asyncio.run(main())


def test_watch_policy_picks_up_a_change_made_elsewhere() -> None:
    async def main() -> None:
        link, control, _calls, _hub, _repo, _records, _sleep = _setup()
        stored = {**link.policy, "segment_seconds": 30.0}
        task = asyncio.create_task(link.watch_policy(lambda: stored, interval=0.01))
        await _until(lambda: link.policy == stored, "the stored policy")
        task.cancel()
        assert link.policy == stored and control.recorder_policy == stored

    asyncio.run(main())
