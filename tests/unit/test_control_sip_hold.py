"""RecordingControl: a SIP-side hold or resume reaches the voice at once and never waits on the
screen's acknowledgement; the agent's own secure pause still waits for it (its safety). Run on
asyncio's loop and on uvloop (the one ``tandem-server run`` uses)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import pytest

from server.calls.control import SIP, LiveCall, RecordingControl
from server.calls.lifecycle import Interaction
from server.calls.repository import CallRepository
from server.calls.session_records import SessionRecords
from server.errors import CallActionError
from server.events.hub import EventHub
from server.sip.listener import RecordedCall
from tandem_protocol.events import EventType, ScreenState
from tests.loops import LOOPS, run_on

CONFIRM = 3.0  # the screen-confirmation timeout; every SIP change here must be far quicker


class _Repo:
    def save(self, *args: Any, **kwargs: Any) -> None:
        pass


class _Records:
    def __init__(self) -> None:
        self.actions: list[str] = []
        self.meta: dict[str, Any] = {}

    def audit(self, action: str, *args: Any, **kwargs: Any) -> None:
        self.actions.append(action)

    def update_meta(self, interaction_id: str, *, patch: dict[str, Any]) -> None:
        self.meta.update(patch)


class _Voice:
    """The voice handle: records when (loop time) each pause/resume reached it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, float]] = []  # (what, at, monotonic when applied)

    def pause(self, at: float) -> None:
        self.calls.append(("pause", at, time.monotonic()))

    def resume(self, at: float) -> None:
        self.calls.append(("resume", at, time.monotonic()))


def _setup() -> tuple[RecordingControl, LiveCall, _Voice, _Records, EventHub]:
    hub = EventHub()
    records = _Records()
    control = RecordingControl(
        cast(CallRepository, _Repo()),
        cast(SessionRecords, records),
        hub,
        screen_fps=1.0,
        confirm_timeout=CONFIRM,
    )
    state = Interaction("i-1", "c-1", 7, "1002", "a", "b", time.time(), screen_decision=True)
    state.answer(time.time())  # the screen is REQUESTED: no recorder has acknowledged anything
    voice = _Voice()
    live = LiveCall(state, "agent", handle=cast(RecordedCall, voice))
    return control, live, voice, records, hub


@pytest.mark.parametrize("loop", LOOPS)
def test_sip_hold_and_resume_apply_at_once_without_a_recorder(loop: str) -> None:
    async def main() -> tuple[float, list[tuple[str, float, float]], Interaction]:
        control, live, voice, _, _ = _setup()
        begun = time.monotonic()
        hold_at = time.time()
        # The hold and the resume arrive 0.2 s apart, concurrently, as the SIP side sends them.
        hold = asyncio.create_task(control.pause(live, hold_at, "hold", SIP, "hold"))
        await asyncio.sleep(0.2)
        resume_at = time.time()
        await asyncio.wait_for(control.resume(live, resume_at, ("sip", "hold"), "resume"), CONFIRM / 2)
        await asyncio.wait_for(hold, CONFIRM / 2)
        took = time.monotonic() - begun
        control.close()
        return took, voice.calls, live.state

    took, calls, state = run_on(loop, main())
    assert took < CONFIRM / 2, f"a SIP hold + resume took {took:.2f} s: it waited on the screen"
    assert [c[0] for c in calls] == ["pause", "resume"]
    span = state.pauses[0]
    assert span.ended_at is not None and span.ended_at - span.started_at == pytest.approx(
        calls[1][1] - calls[0][1]
    )
    assert not state.paused and state.voice.value == "recording"


@pytest.mark.parametrize("loop", LOOPS)
def test_the_agents_secure_pause_still_waits_for_the_screen(loop: str) -> None:
    async def main() -> tuple[bool, bool]:
        control, live, _, _, hub = _setup()
        sub = hub.subscribe(7, "recorder")
        pause = asyncio.create_task(
            control.pause(live, time.time(), "agent", (7, "agent"), "secure", strict=True)
        )
        # The recorder is told, and the pause is not done until it confirms.
        deadline = time.monotonic() + CONFIRM
        told = False
        while time.monotonic() < deadline and not told:
            while not sub.queue.empty():
                envelope = sub.queue.get_nowait()
                told = told or (envelope is not None and envelope.type == EventType.SCREEN_PAUSE)
            await asyncio.sleep(0.01)
        waited = not pause.done()
        live.state.screen_reported(ScreenState.PAUSED)
        control.screen_acknowledged("i-1", ScreenState.PAUSED)
        await asyncio.wait_for(pause, CONFIRM)
        return told and waited, live.state.paused

    waited, paused = run_on(loop, main())
    assert waited and paused


@pytest.mark.parametrize("loop", LOOPS)
def test_the_agents_secure_pause_without_a_recorder_is_an_error(loop: str) -> None:
    async def main() -> tuple[str, Interaction, _Records]:
        control, live, _, records, _ = _setup()
        control._confirm_timeout = 0.2  # a short wait for the refusal under test
        try:
            await control.pause(live, time.time(), "agent", (7, "agent"), "secure", strict=True)
        except CallActionError as exc:
            return exc.code, live.state, records
        return "no error", live.state, records

    code, state, records = run_on(loop, main())
    assert code == "screen_not_confirmed"
    # The voice is silenced, the pause is "unconfirmed" (never "paused"), the warning names the
    # screen, and it is stored for the supervisor's timeline and audited as a failure.
    info = state.to_info()
    assert info.voice.value == "paused" and not info.paused and info.pause.value == "unconfirmed"
    assert "Screen pause NOT confirmed" in info.pause_warning and "0.2 s" in info.pause_warning
    [stored] = records.meta["pause_warnings"]
    assert stored["leg"] == "screen" and stored["started_at"] == state.pauses[0].started_at
    assert "recording.pause_unconfirmed" in records.actions
