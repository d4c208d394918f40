"""Pause, resume and stop of a live recording — from the agent's desktop or the SIP side, through
the same transitions — and what each one tells the world: the recorder (screen commands, whose
acknowledgement a change waits for), the agent's channel (events) and the audit log.

Overlapping pause reasons (the agent's secure pause, the SRC's ``a=inactive``, a hold) are kept
in ``LiveCall.reasons``: the recording is paused while any is present, so lifting one (the SRC's
resume) never lifts another (the agent's pause).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from server.calls.lifecycle import Interaction
from server.calls.offer_policy import PauseReasons
from server.calls.repository import CallRepository
from server.calls.session_records import SessionRecords
from server.errors import CallActionError, LifecycleError
from server.events.hub import EventHub
from server.sip.listener import CallOffer, RecordedCall
from server.store.audit_queue import WriteBacklog
from tandem_protocol.events import CallInfo, EventType, ScreenCommand, ScreenState

log = logging.getLogger(__name__)


@dataclass(eq=False)
class LiveCall:
    state: Interaction
    agent_username: str
    handle: RecordedCall | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    acw_timer: asyncio.Task[None] | None = None
    pause_timer: asyncio.Task[None] | None = None  # the maximum pause length (pause policy)
    reasons: PauseReasons = field(default_factory=PauseReasons)
    roster: list[dict[str, Any]] = field(default_factory=list)  # participants, as stored
    offer: CallOffer | None = None
    # Who paused each span (start rounded to µs): whichever save stores the span names its user.
    span_actors: dict[float, tuple[Actor, str]] = field(default_factory=dict)
    voice_failure: str | None = None  # why the voice could no longer be recorded (end reason)
    quiet: bool = False  # not on the agent's desktop: a second simultaneous call, voice only

    @property
    def interaction_id(self) -> str:
        return self.state.interaction_id


Actor = tuple[int | None, str]  # (user id, username) of who paused/stopped; (None, "sip") for the SIP side
SIP: Actor = (None, "sip")


class RecordingControl:
    def __init__(
        self,
        repo: CallRepository,
        records: SessionRecords,
        hub: EventHub,
        *,
        screen_fps: float,
        confirm_timeout: float,
        backlog: WriteBacklog | None = None,
    ) -> None:
        self.backlog = backlog or WriteBacklog()
        self._repo = repo
        self._records = records
        self._hub = hub
        self._fps = screen_fps
        self._confirm_timeout = confirm_timeout
        self._waiters: dict[tuple[str, ScreenState], asyncio.Event] = {}
        self._waiting: dict[tuple[str, ScreenState], int] = {}
        self._watchers: set[asyncio.Task[None]] = set()  # background screen acks (SIP side)
        # The admin's recorder policy (RecorderPolicy.to_dict()), sent in every screen.start;
        # kept current by server.calls.recorder_link.RecorderLink.
        self.recorder_policy: dict[str, Any] | None = None

    def close(self) -> None:
        """Shutdown: stop watching for screen acks that will not come now."""
        for task in list(self._watchers):
            task.cancel()

    def screen_acknowledged(self, interaction_id: str, state: ScreenState) -> None:
        waiter = self._waiters.get((interaction_id, state))
        if waiter is not None:
            waiter.set()

    async def pause(
        self,
        live: LiveCall,
        at: float,
        reason: str,
        by: Actor,
        detail: str,
        *,
        strict: bool = False,
        recorder: bool = True,
    ) -> CallInfo:
        async with live.lock:
            if live.state.stopped_at is not None:
                raise CallActionError(409, "stopped", "recording was stopped for this call")
            if not live.reasons.add(reason):
                return live.state.to_info()  # already paused for another reason: nothing changes
            try:
                needs_screen = live.state.begin_pause(at, recorder)
            except LifecycleError as exc:
                live.reasons.remove(reason)
                raise CallActionError(409, exc.code, str(exc)) from exc
            # Safety first: voice and screen stop capturing before any database work, which may
            # wait on a lock (the pause happens even if its record must be written later).
            if live.handle is not None:
                live.handle.pause(at)
            if needs_screen:
                self.command(live, EventType.SCREEN_PAUSE, at)
            live.span_actors[round(at, 6)] = (by, reason)
            await self.save(live)
            await self.audit("recording.pause", live.interaction_id, detail, by)
        # The screen's ack is awaited outside the lock: a SIP resume or hold arriving meanwhile
        # must reach the voice at once (a late resume would silence audio the spans call live).
        if needs_screen:
            await self._confirm(live, ScreenState.PAUSED, "pause", strict)
            if strict:  # the wait ended with the screen paused (a resume meanwhile: no change)
                live.state.screen_pause_confirmed()
        self.publish(live, EventType.RECORDING_PAUSED)
        return live.state.to_info()

    async def resume(
        self,
        live: LiveCall,
        at: float,
        reasons: tuple[str, ...],
        detail: str,
        *,
        strict: bool = False,
        actor: Actor = SIP,
    ) -> CallInfo:
        async with live.lock:
            if not live.reasons.remove(*reasons):
                return live.state.to_info()  # not paused, or still paused for another reason
            try:
                needs_screen = live.state.begin_resume(at)
            except LifecycleError as exc:
                if exc.code == "not_paused":
                    return live.state.to_info()
                raise CallActionError(409, exc.code, str(exc)) from exc
            if live.handle is not None:
                live.handle.resume(at)
            if needs_screen:
                self.command(live, EventType.SCREEN_RESUME, at)
            await self.save(live)
            await self.audit("recording.resume", live.interaction_id, detail, actor)
        if needs_screen:
            await self._confirm(live, ScreenState.RECORDING, "resume", strict)
        self.publish(live, EventType.RECORDING_RESUMED)
        return live.state.to_info()

    async def stop(self, live: LiveCall, at: float, by: Actor, detail: str) -> CallInfo:
        async with live.lock:
            try:
                stop_screen = live.state.stop(at)
            except LifecycleError as exc:
                if exc.code == "already_stopped":
                    return live.state.to_info()
                raise CallActionError(409, exc.code, str(exc)) from exc
            live.reasons.active.clear()
            if live.handle is not None:
                await live.handle.stop(at)
            await self.save(live)
            await self.audit("recording.stop", live.interaction_id, detail, by)
            if stop_screen:
                self.command(live, EventType.SCREEN_STOP, at)
            self.publish(live, EventType.RECORDING_STOPPED)
            log.info("interaction %s: recording stopped (%s)", live.interaction_id, detail)
            return live.state.to_info()

    async def _confirm(self, live: LiveCall, state: ScreenState, what: str, strict: bool) -> None:
        """The agent's own pause/resume (``strict``) waits for the recorder's ack and gets an
        error without it: that wait is the secure pause's safety. A SIP-side hold or resume never
        waits on the screen (often no recorder is connected, e.g. a full-time DN): the voice has
        already changed; the ack is watched in the background and a missing one only logged."""
        if strict:
            await self._await_screen(live, state, what)
            return
        task = asyncio.create_task(self._watch_screen(live, state, what))
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    async def _watch_screen(self, live: LiveCall, state: ScreenState, what: str) -> None:
        try:
            await self._await_screen(live, state, what)
        except CallActionError:
            log.warning("interaction %s: screen recorder did not confirm %s", live.interaction_id, what)

    async def save(self, live: LiveCall, end_reason: str | None = None) -> bool:
        """Persist the call's state; False if the database refused and the write was queued
        (it is retried until written; the state it writes is the newest, with every span's user)."""

        def write() -> None:
            self._repo.save(live.state, end_reason, actors=dict(live.span_actors))

        return await self.backlog.write(f"state of interaction {live.interaction_id}", write)

    async def audit(
        self, action: str, interaction_id: str, detail: str, by: Actor = SIP, outcome: str = "allowed"
    ) -> bool:
        """Write an audit record; never lost to a busy database (queued and retried in order),
        never raised to the caller (the audit log must not take a live call down with it)."""
        when = time.time()
        attempts = 0

        def write() -> None:
            nonlocal attempts
            attempts += 1
            late = "" if attempts == 1 else f" [event at {_iso(when)}; written late: the database was busy]"
            self._records.audit(
                action, interaction_id, detail + late, user_id=by[0], username=by[1], outcome=outcome
            )

        try:
            return await self.backlog.write(f"audit {action} for {interaction_id or '-'}", write)
        except Exception:
            log.exception("audit record %s for %s failed", action, interaction_id)
            return False

    async def _await_screen(self, live: LiveCall, state: ScreenState, what: str) -> None:
        key = (live.state.interaction_id, state)
        event = self._waiters.setdefault(key, asyncio.Event())
        self._waiting[key] = self._waiting.get(key, 0) + 1  # an agent's wait and a SIP watcher may share it
        try:
            if live.state.screen is not state:
                await asyncio.wait_for(event.wait(), self._confirm_timeout)
        except TimeoutError as exc:
            if what == "pause":  # the secure pause's screen leg: unconfirmed, the agent warned
                warning = live.state.screen_not_confirmed(self._confirm_timeout, time.time())
                if warning:
                    await self.pause_warning(live, warning)
            self.publish(live, EventType.CALL_UPDATED)
            raise CallActionError(
                504,
                "screen_not_confirmed",
                f"voice {what}d, but the screen recorder did not confirm within {self._confirm_timeout:g} s",
            ) from exc
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]
                self._waiters.pop(key, None)

    async def pause_warning(self, live: LiveCall, warning: str) -> None:
        """A pause leg not confirmed: in recording_meta["pause_warnings"] (the supervisor's
        timeline shows it on the pause) and in the audit log, as a failure."""
        warnings = [dict(w) for w in live.state.pause_warnings]

        def write() -> None:
            self._records.update_meta(live.interaction_id, patch={"pause_warnings": warnings})

        await self.backlog.write(f"pause warning of {live.interaction_id}", write)
        await self.audit("recording.pause_unconfirmed", live.interaction_id, warning, outcome="failed")

    def publish(self, live: LiveCall, event: EventType) -> None:
        # The desktop shows one call: an unassigned call has no desktop, and an agent's second
        # simultaneous call is recorded voice-only without taking the first one's place there.
        if live.state.agent_id is not None and not live.quiet:
            self._hub.publish(live.state.agent_id, event, asdict(live.state.to_info()))

    def command(self, live: LiveCall, event: EventType, at: float) -> None:
        if live.state.agent_id is None or live.quiet:
            return  # no screen is recorded for these (see ``publish``)
        start = event is EventType.SCREEN_START
        policy = dict(self.recorder_policy) if start and self.recorder_policy is not None else None
        # The admin's policy decides the frame rate (settings.screen_fps is its initial value).
        fps = float(policy.get("fps", self._fps)) if policy else self._fps if start else None
        self._hub.publish(
            live.state.agent_id, event, asdict(ScreenCommand(live.state.interaction_id, at, fps, policy))
        )


def _iso(at: float) -> str:
    return datetime.datetime.fromtimestamp(at, datetime.UTC).isoformat(timespec="milliseconds")
