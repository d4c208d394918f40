"""The recorder's state machine: server commands in, capture actions and acks out.

Pure (no I/O, no threads): the capture and the upload queue are injected behind two small
interfaces, the server clock as a function. ``handle`` takes one envelope from the event channel
and returns the ``ScreenStatus`` acks to send back.

States: IDLE → CAPTURING ⇄ PAUSED → FINALISING → IDLE (FINALISING lasts while the capture
closes its file). Commands are idempotent: a duplicate is acknowledged again with the current
state, never applied twice. Decisions that are not obvious from the protocol:

* A pause for an interaction that is not being captured yet ("pause before start") is
  remembered; the later ``screen.start`` opens the capture already paused, so nothing of the
  paused span is ever grabbed. It is acked ``paused``: nothing is being captured.
* Interactions stopped by this run are "done": a late or repeated ``screen.start`` for them is
  acked with their final state instead of starting again. An interaction found in the spool
  after a crash is not: when the server's ``state`` says it is still going on with the screen
  sampled, capture resumes at once (a new run, new segments).
* ``screen.start`` carries the admin's recorder policy; an invalid one is logged, the defaults
  are used and the ack says so.
* ``state`` (sent first on every connection) is a resync: the controller converges on what the
  server says instead of replaying commands it may have missed.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Protocol

from recorder_service.errors import RecorderError
from tandem_protocol.events import (
    CallInfo,
    Envelope,
    EventType,
    Phase,
    ScreenCommand,
    ScreenState,
    ScreenStatus,
)
from tandem_protocol.recorder_policy import PolicyError, RecorderPolicy

log = logging.getLogger(__name__)

_MAX_REMEMBERED = 256


class Mode(StrEnum):
    IDLE = "idle"
    CAPTURING = "capturing"
    PAUSED = "paused"
    FINALISING = "finalising"


class CaptureBackend(Protocol):
    def start(
        self, interaction_id: str, fps: float, paused_at: float | None, policy: RecorderPolicy
    ) -> None: ...

    def pause(self, interaction_id: str, at: float) -> str:
        """Returns what had to be cut because frames past ``at`` were already encoded ("" when
        the pause was honoured exactly)."""
        ...

    def resume(self, interaction_id: str, at: float) -> None: ...

    def stop(self, interaction_id: str, at: float) -> str:
        """Finalise; returns "" when the last segment is ready to upload, else why it failed."""
        ...

    def problem(self, interaction_id: str) -> str:
        """Why the capture is not taking frames although asked to (spool quota), else ""."""
        ...


class UploadQueue(Protocol):
    def enqueue(self, interaction_id: str) -> None:
        """The interaction's capture ended: its last segment may go at once."""
        ...


class Controller:
    def __init__(
        self,
        capture: CaptureBackend,
        uploads: UploadQueue,
        server_now: Callable[[], float],
        *,
        default_fps: float,
        done: Iterable[tuple[str, ScreenState]] = (),
        notices: Iterable[tuple[str, str]] = (),
        default_policy: RecorderPolicy | None = None,
        on_policy: Callable[[RecorderPolicy], None] | None = None,
    ) -> None:
        self._capture = capture
        self._uploads = uploads
        self._now = server_now
        self._default_fps = default_fps
        self.mode = Mode.IDLE
        self.current: str | None = None
        self._pending_pauses: OrderedDict[str, float] = OrderedDict()
        self._done: OrderedDict[str, ScreenState] = OrderedDict()
        for interaction_id, state in done:
            self._remember_done(interaction_id, state)
        # Problems found in the spool at start-up, said in the interaction's next ack.
        self._notices: dict[str, list[str]] = {}
        for interaction_id, notice in notices:
            self._notices.setdefault(interaction_id, []).append(notice)
        self._default_policy = default_policy or RecorderPolicy()
        self._policy = self._default_policy
        self._on_policy_change = on_policy
        self.bad_messages = 0

    # -- entry points -------------------------------------------------------------------------

    def handle(self, envelope: Envelope) -> list[ScreenStatus]:
        try:
            kind = envelope.type
            if kind == EventType.STATE:
                return self._on_state(envelope.data)
            if kind == EventType.RECORDER_POLICY:
                return self._on_policy(envelope.data)
            if kind == EventType.ACW_ENDED:
                call = CallInfo.from_dict(envelope.data)
                return self._stop(call.interaction_id, call.acw_ended_at or self._now())
            handlers: dict[str, Callable[[ScreenCommand], list[ScreenStatus]]] = {
                EventType.SCREEN_START: self._on_start,
                EventType.SCREEN_PAUSE: self._on_pause,
                EventType.SCREEN_RESUME: self._on_resume,
                EventType.SCREEN_STOP: self._on_stop,
            }
            handler = handlers.get(kind)
            if handler is None:
                return []  # events meant for the desktop (call.started, ...) need nothing here
            return handler(ScreenCommand.from_dict(envelope.data))
        except ValueError as exc:
            self.bad_messages += 1
            log.warning(
                "ignoring malformed %s message (%d so far): %s", envelope.type, self.bad_messages, exc
            )
            return []

    def shutdown(self) -> list[ScreenStatus]:
        """The service is stopping: finalise a capture in progress (it stays in the spool)."""
        if self.current is None:
            return []
        return self._stop(self.current, self._now(), upload=False)

    def is_done(self, interaction_id: str) -> bool:
        return interaction_id in self._done

    # -- commands -----------------------------------------------------------------------------

    def _on_policy(self, data: dict[str, object]) -> list[ScreenStatus]:
        """The admin changed the policy: the uploader applies it at once (bandwidth, window),
        the next capture starts with it (a capture in progress keeps the one it started with)."""
        try:
            policy = RecorderPolicy.from_dict(data)
        except PolicyError as exc:
            log.error("invalid recorder policy pushed by the server, keeping the current one: %s", exc)
            return []
        self._default_policy = policy
        if self._on_policy_change is not None:
            self._on_policy_change(policy)
        return []

    def _on_start(self, cmd: ScreenCommand) -> list[ScreenStatus]:
        try:
            problem = ""
            if cmd.policy is None:  # a server that sends none: the command line's settings
                self._policy = self._default_policy
            else:
                self._policy = RecorderPolicy.from_dict(cmd.policy)
        except PolicyError as exc:
            log.error("invalid recorder policy from the server, using the defaults: %s", exc)
            self._policy = self._default_policy
            problem = f"invalid recorder policy ({exc}): defaults used"
        fps = cmd.fps or (self._policy.fps if cmd.policy and not problem else None)
        acks = self._start(cmd.interaction_id, fps)
        if problem and acks:
            acks[-1].detail = "; ".join(d for d in (acks[-1].detail, problem) if d)
        return acks

    def _on_pause(self, cmd: ScreenCommand) -> list[ScreenStatus]:
        return self._pause(cmd.interaction_id, cmd.at)

    def _on_resume(self, cmd: ScreenCommand) -> list[ScreenStatus]:
        return self._resume(cmd.interaction_id, cmd.at)

    def _on_stop(self, cmd: ScreenCommand) -> list[ScreenStatus]:
        return self._stop(cmd.interaction_id, cmd.at)

    def _start(self, interaction_id: str, fps: float | None) -> list[ScreenStatus]:
        if interaction_id in self._done:
            return [self._status(interaction_id, self._done[interaction_id], "already finished")]
        if interaction_id == self.current:
            return [self._current_ack(interaction_id)]
        out: list[ScreenStatus] = []
        if self.current is not None:
            # A new interaction while another is open: the old one's stop was missed.
            out += self._stop(self.current, self._now())
        paused_at = self._pending_pauses.pop(interaction_id, None)
        try:
            self._capture.start(interaction_id, fps or self._default_fps, paused_at, self._policy)
        except RecorderError as exc:
            log.error("cannot start capture for %s: %s", interaction_id, exc)
            return [*out, self._status(interaction_id, ScreenState.FAILED, str(exc))]
        self.current = interaction_id
        self.mode = Mode.PAUSED if paused_at is not None else Mode.CAPTURING
        return [*out, self._current_ack(interaction_id)]

    def _pause(self, interaction_id: str, at: float) -> list[ScreenStatus]:
        if interaction_id in self._done:
            return [self._status(interaction_id, self._done[interaction_id], "already finished")]
        if interaction_id != self.current:
            self._pending_pauses[interaction_id] = at
            while len(self._pending_pauses) > _MAX_REMEMBERED:
                self._pending_pauses.popitem(last=False)
            return [self._status(interaction_id, ScreenState.PAUSED, "not capturing")]
        if self.mode == Mode.PAUSED:
            return [self._status(interaction_id, ScreenState.PAUSED)]
        detail = self._capture.pause(interaction_id, at)
        self.mode = Mode.PAUSED
        return [self._status(interaction_id, ScreenState.PAUSED, detail)]

    def _resume(self, interaction_id: str, at: float) -> list[ScreenStatus]:
        if interaction_id in self._done:
            return [self._status(interaction_id, self._done[interaction_id], "already finished")]
        if interaction_id != self.current:
            self._pending_pauses.pop(interaction_id, None)
            return [self._status(interaction_id, ScreenState.STOPPED, "no capture in progress")]
        if self.mode == Mode.PAUSED:
            self._capture.resume(interaction_id, at)
            self.mode = Mode.CAPTURING
        return [self._current_ack(interaction_id)]

    def _stop(self, interaction_id: str, at: float, *, upload: bool = True) -> list[ScreenStatus]:
        if interaction_id in self._done:
            return [self._status(interaction_id, self._done[interaction_id])]
        if interaction_id != self.current:
            self._pending_pauses.pop(interaction_id, None)
            self._remember_done(interaction_id, ScreenState.STOPPED)
            return [self._status(interaction_id, ScreenState.STOPPED, "nothing was captured")]
        self.mode = Mode.FINALISING
        try:
            problem = self._capture.stop(interaction_id, at)
        except RecorderError as exc:
            problem = str(exc)
        self.current = None
        self.mode = Mode.IDLE
        if problem:
            log.error("capture %s failed: %s", interaction_id, problem)
            self._remember_done(interaction_id, ScreenState.FAILED)
            return [self._status(interaction_id, ScreenState.FAILED, problem)]
        self._remember_done(interaction_id, ScreenState.STOPPED)
        if upload:
            self._uploads.enqueue(interaction_id)
        return [self._status(interaction_id, ScreenState.STOPPED)]

    def _on_state(self, data: dict[str, object]) -> list[ScreenStatus]:
        raw_call = data.get("call")
        if raw_call is None:
            return self._stop(self.current, self._now()) if self.current else []
        if not isinstance(raw_call, dict):
            raise ValueError("state.call is neither an object nor null")
        call = CallInfo.from_dict(raw_call)
        iid = call.interaction_id
        out: list[ScreenStatus] = []
        if self.current is not None and self.current != iid:
            out += self._stop(self.current, self._now())
        wanted = call.screen in (ScreenState.REQUESTED, ScreenState.RECORDING, ScreenState.PAUSED)
        if not wanted or call.phase not in (Phase.ACTIVE, Phase.ACW):
            if self.current == iid:
                out += self._stop(iid, call.acw_ended_at or self._now())
            return out
        if call.paused or call.screen == ScreenState.PAUSED:
            open_pauses = [p.started_at for p in call.pauses if p.ended_at is None]
            at = open_pauses[-1] if open_pauses else self._now()
            if self.current == iid:
                return out + self._pause(iid, at)
            if iid not in self._done:
                self._pending_pauses[iid] = at
            return out + self._start(iid, None)
        if self.current == iid:
            return out + self._resume(iid, self._now())
        return out + self._start(iid, None)

    # -- helpers ------------------------------------------------------------------------------

    def _current_ack(self, interaction_id: str) -> ScreenStatus:
        """The truth about the capture in progress: recording, paused, or failed while the spool
        quota keeps it stopped (it resumes by itself and says so)."""
        problem = self._capture.problem(interaction_id) if self.mode == Mode.CAPTURING else ""
        if problem:
            return self._status(interaction_id, ScreenState.FAILED, problem)
        return self._status(interaction_id, self._current_state())

    def _current_state(self) -> ScreenState:
        return ScreenState.PAUSED if self.mode == Mode.PAUSED else ScreenState.RECORDING

    def _remember_done(self, interaction_id: str, state: ScreenState) -> None:
        self._done[interaction_id] = state
        self._done.move_to_end(interaction_id)
        while len(self._done) > _MAX_REMEMBERED:
            self._done.popitem(last=False)

    def _status(self, interaction_id: str, state: ScreenState, detail: str = "") -> ScreenStatus:
        notices = self._notices.pop(interaction_id, [])
        detail = "; ".join(d for d in (detail, *notices) if d)
        return ScreenStatus(interaction_id=interaction_id, state=state, at=self._now(), detail=detail)
