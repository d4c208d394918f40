"""Ties a recorded call together: SIP engine ⇄ interaction lifecycle ⇄ database ⇄ agent channel.

Implements ``CallListener`` for the SIP engine and the agent's call actions for the API. All of
it runs on the event loop; database work goes to threads. Pause and resume wait for the
recorder's acknowledgement so the desktop shows "paused" only once voice AND screen are paused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from server.calls.lifecycle import Interaction, LifecycleError
from server.calls.media_jobs import MediaJobs
from server.calls.repository import CallRepository
from server.events.hub import EventHub
from server.policy.sampling import decide_screen, effective_percentage
from server.sip.listener import CallAccepted, CallOffer, CallRejected, RecordedCall
from tandem_protocol.events import CallInfo, EventType, Phase, ScreenCommand, ScreenState, ScreenStatus

log = logging.getLogger(__name__)


class CallActionError(Exception):
    """An agent action that cannot be carried out; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(eq=False)
class LiveCall:
    state: Interaction
    agent_username: str
    handle: RecordedCall | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    acw_timer: asyncio.Task[None] | None = None


class CallCoordinator:
    def __init__(
        self,
        repo: CallRepository,
        hub: EventHub,
        media: MediaJobs,
        *,
        live_dir: Path,
        screen_fps: float,
        acw_limit: float,
        confirm_timeout: float,
    ) -> None:
        self._repo = repo
        self._hub = hub
        self._media = media
        self._live_dir = live_dir
        self._fps = screen_fps
        self._acw_limit = acw_limit
        self._confirm_timeout = confirm_timeout
        self._calls: dict[str, LiveCall] = {}
        self._current: dict[int, str] = {}  # agent id -> interaction id shown on his desktop
        self._waiters: dict[tuple[str, ScreenState], asyncio.Event] = {}

    # -- CallListener ----------------------------------------------------------------------
    async def on_call_offered(self, offer: CallOffer) -> CallAccepted | CallRejected:
        agent = await asyncio.to_thread(self._repo.agent_on_dn, offer.dn)
        if agent is None:
            return CallRejected(404, "No agent logged in on this DN")
        previous = self._calls.get(self._current.get(agent.user_id, ""))
        if previous is not None:
            if previous.state.phase in (Phase.RINGING, Phase.ACTIVE):
                return CallRejected(486, "Agent already on a recorded call")
            if previous.state.phase is Phase.ACW:
                await self._end_acw(previous, time.time(), "next call")
        global_pct = await asyncio.to_thread(self._repo.screen_percentage)
        percentage = effective_percentage(global_pct, agent.team_percentage)
        interaction_id = str(uuid.uuid4())
        live = Interaction(
            interaction_id=interaction_id,
            call_id=offer.call_id,
            agent_id=agent.user_id,
            dn=offer.dn,
            caller=offer.caller,
            callee=offer.callee,
            started_at=time.time(),
            screen_decision=decide_screen(interaction_id, percentage),
        )
        await asyncio.to_thread(self._repo.create, live, percentage)
        self._calls[interaction_id] = LiveCall(live, agent.username)
        self._current[agent.user_id] = interaction_id
        voice_dir = self._live_dir / interaction_id
        voice_dir.mkdir(parents=True, exist_ok=True)
        log.info(
            "call %s on DN %s → interaction %s (screen %s)",
            offer.call_id,
            offer.dn,
            interaction_id,
            live.screen_decision,
        )
        return CallAccepted(interaction_id, voice_dir / "voice.wav")

    async def on_call_answered(self, call: RecordedCall) -> None:
        live = self._calls.get(call.interaction_id)
        if live is None:
            return
        async with live.lock:
            live.handle = call
            at = call.answered_at or time.time()
            start_screen = live.state.answer(at)
            await asyncio.to_thread(self._repo.save, live.state)
            self._publish(live, EventType.CALL_STARTED)
            if start_screen:
                self._command(live, EventType.SCREEN_START, at)

    async def on_call_ended(self, call: RecordedCall, ended_at: float, reason: str) -> None:
        live = self._calls.get(call.interaction_id)
        if live is None:
            return
        async with live.lock:
            with contextlib.suppress(LifecycleError):
                resume_screen = live.state.end_call(ended_at, self._acw_limit)
                await asyncio.to_thread(self._repo.save, live.state, reason)
                if resume_screen:
                    self._command(live, EventType.SCREEN_RESUME, ended_at)
                self._publish(live, EventType.CALL_ENDED)
                live.acw_timer = asyncio.create_task(self._acw_limit_timer(live))
        voice_started = call.answered_at or live.state.started_at
        self._media.submit_voice(live.state.interaction_id, call.voice_path, voice_started)

    # -- agent actions ---------------------------------------------------------------------
    def current_call(self, agent_id: int) -> CallInfo | None:
        live = self._calls.get(self._current.get(agent_id, ""))
        if live is None or live.state.phase is Phase.DONE:
            return None
        return live.state.to_info()

    async def pause(self, interaction_id: str, agent_id: int, username: str) -> CallInfo:
        live = self._own_call(interaction_id, agent_id)
        async with live.lock:
            at = time.time()
            try:
                needs_screen = live.state.begin_pause(at)
            except LifecycleError as exc:
                if exc.code == "already_paused" and live.state.paused:
                    return live.state.to_info()
                raise CallActionError(409, exc.code, str(exc)) from exc
            if live.handle is not None:
                live.handle.pause(at)
            await asyncio.to_thread(self._repo.save, live.state, None, (agent_id, username))
            if needs_screen:
                self._command(live, EventType.SCREEN_PAUSE, at)
                await self._await_screen(live, ScreenState.PAUSED, "pause")
            live.state.paused = True
            self._publish(live, EventType.RECORDING_PAUSED)
            return live.state.to_info()

    async def resume(self, interaction_id: str, agent_id: int) -> CallInfo:
        live = self._own_call(interaction_id, agent_id)
        async with live.lock:
            at = time.time()
            try:
                needs_screen = live.state.begin_resume(at)
            except LifecycleError as exc:
                if exc.code == "not_paused":
                    return live.state.to_info()
                raise CallActionError(409, exc.code, str(exc)) from exc
            if live.handle is not None:
                live.handle.resume(at)
            await asyncio.to_thread(self._repo.save, live.state)
            if needs_screen:
                self._command(live, EventType.SCREEN_RESUME, at)
                await self._await_screen(live, ScreenState.RECORDING, "resume")
            self._publish(live, EventType.RECORDING_RESUMED)
            return live.state.to_info()

    async def done(self, interaction_id: str, agent_id: int) -> CallInfo:
        live = self._own_call(interaction_id, agent_id)
        if live.state.phase is Phase.DONE:
            return live.state.to_info()
        if live.state.phase is not Phase.ACW:
            raise CallActionError(409, "not_in_acw", "the call is still active; Done is for after-call work")
        await self._end_acw(live, time.time(), "done")
        return live.state.to_info()

    async def screen_status(self, agent_id: int, status: ScreenStatus) -> None:
        live = self._calls.get(status.interaction_id)
        if live is None or live.state.agent_id != agent_id:
            log.info("screen.status for unknown/foreign interaction %s ignored", status.interaction_id)
            return
        live.state.screen_reported(status.state)
        await asyncio.to_thread(self._repo.set_screen_state, status.interaction_id, live.state.screen.value)
        waiter = self._waiters.get((status.interaction_id, status.state))
        if waiter is not None:
            waiter.set()
        if status.state in (ScreenState.STOPPED, ScreenState.FAILED):
            self._publish(live, EventType.CALL_UPDATED)

    async def screen_uploaded(self, interaction_id: str) -> None:
        live = self._calls.get(interaction_id)
        if live is not None:
            live.state.screen_uploaded()
            self._publish(live, EventType.CALL_UPDATED)
            if live.state.phase is Phase.DONE:
                self._forget(live)
        self._media.submit_mux(interaction_id)

    # -- lifecycle helpers -----------------------------------------------------------------
    async def _end_acw(self, live: LiveCall, at: float, reason: str) -> None:
        async with live.lock:
            try:
                stop_screen = live.state.end_acw(at)
            except LifecycleError:
                return
            if live.acw_timer is not None and live.acw_timer is not asyncio.current_task():
                live.acw_timer.cancel()
            await asyncio.to_thread(self._repo.save, live.state, None)
            self._publish(live, EventType.ACW_ENDED)
            if stop_screen:
                self._command(live, EventType.SCREEN_STOP, at)
            else:
                self._forget(live)
            log.info("interaction %s: after-call work ended (%s)", live.state.interaction_id, reason)

    async def _acw_limit_timer(self, live: LiveCall) -> None:
        deadline = live.state.acw_deadline or time.time()
        await asyncio.sleep(max(0.0, deadline - time.time()))
        await self._end_acw(live, time.time(), "ACW limit")

    async def _await_screen(self, live: LiveCall, state: ScreenState, what: str) -> None:
        key = (live.state.interaction_id, state)
        event = self._waiters.setdefault(key, asyncio.Event())
        try:
            if live.state.screen is not state:
                await asyncio.wait_for(event.wait(), self._confirm_timeout)
        except TimeoutError as exc:
            self._publish(live, EventType.CALL_UPDATED)
            raise CallActionError(
                504,
                "screen_not_confirmed",
                f"voice {what}d, but the screen recorder did not confirm within {self._confirm_timeout:g} s",
            ) from exc
        finally:
            self._waiters.pop(key, None)

    def _own_call(self, interaction_id: str, agent_id: int) -> LiveCall:
        live = self._calls.get(interaction_id)
        if live is None:
            raise CallActionError(404, "unknown_interaction", "no live call with that id")
        if live.state.agent_id != agent_id:
            raise CallActionError(403, "forbidden", "that call belongs to another agent")
        return live

    def _forget(self, live: LiveCall) -> None:
        self._calls.pop(live.state.interaction_id, None)
        if self._current.get(live.state.agent_id) == live.state.interaction_id:
            del self._current[live.state.agent_id]

    def _publish(self, live: LiveCall, event: EventType) -> None:
        self._hub.publish(live.state.agent_id, event, asdict(live.state.to_info()))

    def _command(self, live: LiveCall, event: EventType, at: float) -> None:
        fps = self._fps if event is EventType.SCREEN_START else None
        self._hub.publish(
            live.state.agent_id, event, asdict(ScreenCommand(live.state.interaction_id, at, fps))
        )

    # -- start-up and shutdown -------------------------------------------------------------
    async def recover(self) -> None:
        """A previous process died mid-call: keep what it recorded, mark it interrupted."""
        for interaction_id, state, answered_at in await asyncio.to_thread(self._repo.unfinished):
            now = time.time()
            if state == "acw":
                await asyncio.to_thread(self._repo.mark, interaction_id, "done", "server restart in ACW", now)
                continue
            await asyncio.to_thread(
                self._repo.mark, interaction_id, "interrupted", "server stopped mid-call", now
            )
            voice = self._live_dir / interaction_id / "voice.wav"
            if voice.exists():
                self._media.submit_voice(interaction_id, voice, answered_at or now)
            log.warning(
                "interaction %s was interrupted by a server stop; its recording is kept", interaction_id
            )

    async def shutdown(self) -> None:
        for live in list(self._calls.values()):
            if live.acw_timer is not None:
                live.acw_timer.cancel()
