"""The agent's call actions (pause, resume, stop, Done, the recorder's screen reports) and the
after-call-work end they lead to, on the live calls of ``server.calls.coordinator``.

A mixin of ``CallCoordinator`` (it works on the coordinator's live calls and its
``RecordingControl``): separate because what the agent's desktop asks of a call, and the checks
that it is his call, are one concern apart from the SIP side's offer, update and end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from server.calls.control import LiveCall, RecordingControl
from server.calls.media_jobs import MediaJobs
from server.calls.recorder_link import RecorderLink
from server.calls.repository import CallRepository
from server.errors import CallActionError, LifecycleError
from tandem_protocol.events import CallInfo, EventType, Phase, ScreenAutoPause, ScreenState, ScreenStatus

log = logging.getLogger("server.calls.coordinator")


class AgentActions:
    """The agent's actions on his live calls (see the module text)."""

    # Set by CallCoordinator.__init__.
    _calls: dict[str, LiveCall]
    _current: dict[int, str]  # agent id -> interaction id shown on his desktop
    _control: RecordingControl
    _media: MediaJobs
    _repo: CallRepository
    _pause_max_now: Callable[[], float | None] | None
    recorders: RecorderLink

    def current_call(self, agent_id: int) -> CallInfo | None:
        live = self._calls.get(self._current.get(agent_id, ""))
        if live is None or live.state.phase is Phase.DONE:
            return None
        return live.state.to_info()

    async def pause(self, interaction_id: str, agent_id: int, username: str) -> CallInfo:
        """The secure pause (``server.calls.secure_pause``): the voice at once; the screen's ack
        awaited for the confirmation timeout (504 ``screen_not_confirmed`` without it, the call's
        pause then "unconfirmed" with a warning naming the screen). A captured screen whose
        recorder is not connected cannot confirm: 200, "unconfirmed" with the warning, at once."""
        live = self._own_call(interaction_id, agent_id)
        at = time.time()
        recorder = self.recorders.connected(agent_id)
        # The secure pause covers the agent's second call too (a card number read out during a
        # consultation must not be on that recording either); its voice pauses at once.
        for child in self._children(live):
            with contextlib.suppress(CallActionError):
                await self._control.pause(
                    child, at, "agent", (agent_id, username), "secure pause (first call)"
                )
        warned = len(live.state.pause_warnings)
        info = await self._control.pause(
            live, at, "agent", (agent_id, username), "secure pause", strict=True, recorder=recorder
        )
        if len(live.state.pause_warnings) > warned and live.state.secure.warning:
            # Unconfirmed at once (the recorder's connection is down): stored and audited like a timeout.
            await self._control.pause_warning(live, live.state.secure.warning)
        if live.state.pause_open:  # the admin's maximum length, read off the answer's path
            spans = len(live.state.pauses)
            live.pause_timer = asyncio.create_task(self._pause_limit_timer(live, agent_id, spans))
        return info

    async def resume(self, interaction_id: str, agent_id: int, username: str = "") -> CallInfo:
        """Resume always works: from a requested, paused or unconfirmed pause, the voice records
        again at once and the answer never waits on the recorder (a missing or hung one gets
        screen.resume, or the resync's state, when it can take it; its ack is watched)."""
        live = self._own_call(interaction_id, agent_id)
        at = time.time()
        actor = (agent_id, username or live.agent_username)
        info = await self._control.resume(live, at, ("agent",), "agent resumed", actor=actor)
        for child in self._children(live):
            with contextlib.suppress(CallActionError):
                await self._control.resume(child, at, ("agent",), "agent resumed (first call)", actor=actor)
        return info

    def _children(self, live: LiveCall) -> list[LiveCall]:
        """The agent's live second calls linked to ``live``."""
        return [
            c
            for c in self._calls.values()
            if c.state.parent_id == live.interaction_id and c.state.phase is Phase.ACTIVE
        ]

    async def stop(self, interaction_id: str, agent_id: int, username: str) -> CallInfo:
        live = self._own_call(interaction_id, agent_id)
        return await self._control.stop(
            live, time.time(), (agent_id, username), "agent stopped the recording"
        )

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
        # The first ack of a start: the desktop and supervisors see it recording, not "starting".
        started = live.state.screen is ScreenState.REQUESTED and status.state is not ScreenState.REQUESTED
        pause_before = live.state.secure.whole
        live.state.screen_reported(status.state, status.detail)
        # Acknowledged before the database write: a busy database must not turn the recorder's
        # confirmed pause into a 504 (the state is written with the call's next save anyway).
        self._control.screen_acknowledged(status.interaction_id, status.state)
        await self._control.save(live)
        # A pause confirmed late (after its warning), or a leg failed: the desktop sees it at once.
        changed = live.state.secure.whole is not pause_before
        if changed and live.state.secure.warning:
            await self._control.pause_warning(live, live.state.secure.warning)
        if started or changed or status.state in (ScreenState.STOPPED, ScreenState.FAILED):
            self._control.publish(live, EventType.CALL_UPDATED)

    async def screen_auto_pause(self, agent_id: int, username: str, data: dict[str, Any]) -> None:
        """The recorder paused the screen itself while a masking rule's window was shown: a
        pause span (reason ``auto:<rule>``) on the interaction's timeline, and in the audit log.
        ``ValueError`` (sent back to the recorder) for anything refused, which is audited too."""
        try:
            msg = ScreenAutoPause.from_dict(data)
        except ValueError as exc:
            target = str(data.get("interaction_id", ""))[:64]
            await self._control.audit(
                "recording.auto_pause", target, str(exc), (agent_id, username), "denied"
            )
            raise
        what = "auto_resume" if msg.ended_at is not None else "auto_pause"
        detail = f"rule {msg.rule!r}, screen paused by the recorder"
        try:
            outcome = await asyncio.to_thread(
                self._repo.record_auto_pause,
                msg.interaction_id,
                (agent_id, username),
                msg.rule,
                msg.started_at,
                msg.ended_at,
            )
        except ValueError as exc:
            await self._control.audit(
                f"recording.{what}", msg.interaction_id, str(exc), (agent_id, username), outcome="denied"
            )
            raise
        if outcome != "unchanged":
            await self._control.audit(f"recording.{what}", msg.interaction_id, detail, (agent_id, username))

    async def screen_uploaded(self, interaction_id: str) -> None:
        live = self._calls.get(interaction_id)
        if live is not None:
            live.state.screen_uploaded()
            self._control.publish(live, EventType.CALL_UPDATED)
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
            await self._control.save(live)

            def close_auto_pauses() -> None:
                self._repo.close_auto_pauses(live.interaction_id, at)

            await self._control.backlog.write(f"auto-pauses of {live.interaction_id}", close_auto_pauses)
            self._control.publish(live, EventType.ACW_ENDED)
            if stop_screen:
                self._control.command(live, EventType.SCREEN_STOP, at)
            else:
                self._forget(live)
            log.info("interaction %s: after-call work ended (%s)", live.state.interaction_id, reason)

    async def _acw_limit_timer(self, live: LiveCall) -> None:
        deadline = live.state.acw_deadline or time.time()
        await asyncio.sleep(max(0.0, deadline - time.time()))
        await self._end_acw(live, time.time(), "ACW limit")

    async def _pause_limit_timer(self, live: LiveCall, agent_id: int, spans: int) -> None:
        """Resume the pause that made the ``spans``-th span once it has lasted the maximum length;
        a pause that ended (or a call that went) meanwhile is left alone."""
        if self._pause_max_now is None:
            return
        try:
            limit = await asyncio.to_thread(self._pause_max_now)
        except Exception as exc:  # a locked database: the pause lasts until the agent resumes
            log.warning("interaction %s: maximum pause length unreadable: %s", live.interaction_id, exc)
            return
        if limit is None:
            return
        started = live.state.pauses[spans - 1].started_at
        await asyncio.sleep(max(0.0, started + limit - time.time()))
        if self._calls.get(live.interaction_id) is not live or len(live.state.pauses) != spans:
            return
        if not live.state.pause_open:
            return
        log.info("interaction %s: pause longer than %g s, resumed by the server", live.interaction_id, limit)
        actor = (None, "system")
        detail = f"maximum pause length ({limit:g} s) reached"
        with contextlib.suppress(CallActionError):
            await self._control.resume(live, time.time(), ("agent",), detail, actor=actor)
        for child in self._children(live):
            with contextlib.suppress(CallActionError):
                await self._control.resume(
                    child, time.time(), ("agent",), detail + " (first call)", actor=actor
                )

    def _own_call(self, interaction_id: str, agent_id: int) -> LiveCall:
        live = self._calls.get(interaction_id)
        if live is None:
            raise CallActionError(404, "unknown_interaction", "no live call with that id")
        if live.state.agent_id != agent_id:
            raise CallActionError(403, "forbidden", "that call belongs to another agent")
        return live

    def _forget(self, live: LiveCall) -> None:
        self._calls.pop(live.state.interaction_id, None)
        agent_id = live.state.agent_id
        if agent_id is not None and self._current.get(agent_id) == live.state.interaction_id:
            del self._current[agent_id]
