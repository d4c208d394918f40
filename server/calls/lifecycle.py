"""The lifecycle of one recorded interaction, as an explicit state machine.

Pure: no I/O, no clock — every transition is given its server time. The coordinator applies
transitions, persists the result and publishes events; tests drive this directly.

    RINGING --answer--> ACTIVE --end_call--> ACW --end_acw--> DONE
                         |  ^   \
                  pause  v  |    stop: no more recording (voice file ends, screen stops) for
                         resume         the rest of the call; the call itself goes on to ACW
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from server.calls import secure_pause as sp
from server.errors import LifecycleError
from tandem_protocol.events import CallInfo, PauseSpanInfo, PauseState, Phase, ScreenState, VoiceState

# Screen states in which the recorder is (or is about to be) capturing.
CAPTURING = frozenset({ScreenState.REQUESTED, ScreenState.RECORDING})


@dataclass
class Interaction:
    interaction_id: str
    call_id: str
    agent_id: int | None  # None: an "unassigned" call that named no known party
    dn: str
    caller: str
    callee: str
    started_at: float
    screen_decision: bool
    phase: Phase = Phase.RINGING
    voice: VoiceState = VoiceState.RECORDING
    screen: ScreenState = ScreenState.OFF
    # The secure pause (``server.calls.secure_pause``): every pause and resume, whatever its
    # reason, goes through it; ``paused`` (voice AND screen safe) is read off it.
    secure: sp.SecurePause = field(default_factory=sp.SecurePause)
    # Legs that could not be confirmed, per pause ({started_at, leg, warning, at}): stored in the
    # interaction's recording_meta["pause_warnings"] for the supervisor's timeline.
    pause_warnings: list[dict[str, Any]] = field(default_factory=list)
    answered_at: float | None = None
    ended_at: float | None = None
    acw_ended_at: float | None = None
    acw_deadline: float | None = None
    stopped_at: float | None = None
    pauses: list[PauseSpanInfo] = field(default_factory=list)
    parent_id: str | None = None  # the agent's call this one overlapped (a second call)
    # What the SIP side said about the call, for the agent's call panel: inbound/outbound ("" not
    # known) and the recording parameters (Request-URI / X-Recording-* headers: queue, service...).
    direction: str = ""
    metadata: dict[str, str] = field(default_factory=dict)

    # -- transitions -----------------------------------------------------------------------
    def answer(self, at: float, recorder: bool = True) -> bool:
        """Returns True when the recorder must be told to start capturing. ``recorder``: the
        agent's recorder is connected; without it a sampled screen is NO_RECORDER at once (the
        agent and supervisors see why, rather than "requested" for ever)."""
        self._require(self.phase is Phase.RINGING, "not_ringing", "call was already answered")
        self.phase = Phase.ACTIVE
        self.answered_at = at
        if self.screen_decision:
            self.screen = ScreenState.REQUESTED if recorder else ScreenState.NO_RECORDER
            return recorder
        return False

    def recorder_lost(self) -> bool:
        """The agent's recorder went away (and stayed away) while it should be capturing: True
        when that changed the screen state to NO_RECORDER."""
        if self.phase not in (Phase.ACTIVE, Phase.ACW) or self.stopped_at is not None:
            return False
        if self.screen not in CAPTURING and self.screen is not ScreenState.PAUSED:
            return False
        self.screen = ScreenState.NO_RECORDER
        self._apply(sp.RecorderGone())  # nothing captures the screen now: that leg is safe
        return True

    def recorder_back(self) -> bool:
        """The agent's recorder connected: a screen it was missing for is requested again (its
        resync then starts the capture, paused if the call is). True when that changed."""
        if self.screen is not ScreenState.NO_RECORDER or self.stopped_at is not None:
            return False
        if self.phase not in (Phase.ACTIVE, Phase.ACW):
            return False
        self.screen = ScreenState.REQUESTED
        return True

    def begin_pause(self, at: float, recorder: bool = True) -> bool:
        """Voice pauses at ``at``. Returns True when the screen must confirm a pause too: it is
        captured (or starting) and ``recorder`` (the agent's recorder is connected). A captured
        screen whose recorder is not connected (within its grace) cannot confirm: unconfirmed at
        once, nothing to wait for."""
        self._require(self.phase is Phase.ACTIVE, "not_active", "only an active call can be paused")
        self._require(self.stopped_at is None, "stopped", "recording was stopped for this call")
        self._require(not self.pause_open, "already_paused", "recording is already paused")
        effects = self._apply(sp.Request(at, self.screen in CAPTURING))
        if sp.Effect.PAUSE_SCREEN in effects and not recorder:
            self._apply(sp.ScreenUnreachable(), at)
            return False
        return sp.Effect.PAUSE_SCREEN in effects

    def begin_resume(self, at: float) -> bool:
        """Voice records again from ``at``. Returns True when the screen must confirm."""
        self._require(self.phase is Phase.ACTIVE, "not_active", "only an active call can be resumed")
        self._require(self.pause_open, "not_paused", "recording is not paused")
        self._require(self.stopped_at is None, "stopped", "recording was stopped for this call")
        self._apply(sp.Resume(at))
        needs_screen = self.screen is ScreenState.PAUSED or (self.screen in CAPTURING)
        if self.screen is ScreenState.PAUSED:
            # Asked to capture again: until its ack the screen is not "paused" — a pause clicked
            # meanwhile must ask the recorder and wait for a new ack, not take the stale one.
            self.screen = ScreenState.REQUESTED
        return needs_screen

    def stop(self, at: float) -> bool:
        """No more recording for this call. Returns True when the screen must stop now."""
        self._require(self.phase is Phase.ACTIVE, "not_active", "only an active call can stop recording")
        self._require(self.stopped_at is None, "already_stopped", "recording is already stopped")
        self._apply(sp.CallEnd(at))
        self.stopped_at = at
        self.voice = VoiceState.STOPPED
        return self.screen in CAPTURING or self.screen is ScreenState.PAUSED

    def fail_voice(self, at: float) -> None:
        """The voice could no longer be recorded (its worker died, the disk is full): like a stop
        at ``at`` — nothing more is written, the call goes on to its BYE — but FAILED, not the
        agent's choice. The screen is left as it is: a paused screen stays paused (it may be a
        secure pause), a recording one goes on (the call is still evidence)."""
        self._require(self.phase is Phase.ACTIVE, "not_active", "only an active call can fail")
        if self.voice is VoiceState.FAILED:
            return
        if self.stopped_at is None:
            self.stopped_at = at
        self._apply(sp.CallEnd(at))
        self.voice = VoiceState.FAILED

    def end_call(self, at: float, acw_limit: float) -> bool:
        """BYE. A pause never outlives the call's recording: an open span closes here.
        Returns True when the screen, paused, must be resumed for after-call work."""
        self._require(self.phase in (Phase.RINGING, Phase.ACTIVE), "not_active", "call already ended")
        was_paused_screen = self.screen is ScreenState.PAUSED and self.stopped_at is None
        self._apply(sp.CallEnd(at))
        self.phase = Phase.ACW
        if self.voice is not VoiceState.FAILED:  # a failed recording stays failed
            self.voice = VoiceState.STOPPED
        self.ended_at = at
        self.acw_deadline = at + acw_limit
        return was_paused_screen

    def end_acw(self, at: float) -> bool:
        """Done (or the ACW limit). Returns True when the recorder must stop and upload."""
        self._require(self.phase is Phase.ACW, "not_in_acw", "the call is not in after-call work")
        self.phase = Phase.DONE
        self.acw_ended_at = at
        return self.screen in CAPTURING or self.screen is ScreenState.PAUSED

    def screen_reported(self, state: ScreenState, detail: str = "") -> None:
        """The recorder's ack. Late acks never move an uploaded screen backwards."""
        if self.screen in (ScreenState.OFF, ScreenState.UPLOADED):
            return
        self.screen = state
        if state is ScreenState.PAUSED:
            self._apply(sp.ScreenConfirmed())
        elif state is ScreenState.FAILED:
            self._apply(sp.ScreenFailed(detail))

    def unconfirmed_pause_start(self) -> float | None:
        """The start of an open pause the screen has not confirmed (its recorder hung, or its
        connection dropped): a recorder that connects is told this pause again, so it cuts the
        frames from the pause's start even if its resync started capturing."""
        if self.secure.screen in (sp.LegState.PENDING, sp.LegState.UNCONFIRMED) and self.pause_open:
            return self.pauses[-1].started_at
        return None

    def screen_pause_confirmed(self) -> None:
        """The wait for the screen's pause ended with the screen paused."""
        self._apply(sp.ScreenConfirmed())

    def screen_not_confirmed(self, seconds: float, at: float) -> str:
        """No ack of the screen's pause within ``seconds``: the warning (empty when the pause
        was resumed, confirmed or ended meanwhile — nothing to warn about)."""
        effects = self._apply(sp.ScreenTimeout(seconds), at)
        return self.secure.warning if sp.Effect.WARN in effects else ""

    def screen_uploaded(self) -> None:
        self.screen = ScreenState.UPLOADED

    def _apply(self, event: sp.Event, now: float | None = None) -> tuple[sp.Effect, ...]:
        """One step of the secure pause; the effects that are this object's own (the voice
        state, the span, the warning record) are done here, the rest by the caller."""
        result = sp.step(self.secure, event)
        self.secure = result.state
        at = getattr(event, "at", now)
        for effect in result.effects:
            if effect is sp.Effect.SILENCE_VOICE:
                self.voice = VoiceState.PAUSED
            elif effect is sp.Effect.RESUME_VOICE:
                self.voice = VoiceState.RECORDING
            elif effect is sp.Effect.OPEN_SPAN and at is not None:
                self.pauses.append(PauseSpanInfo(started_at=at))
            elif effect is sp.Effect.CLOSE_SPAN and self.pause_open and at is not None:
                self.pauses[-1].ended_at = at
            elif effect is sp.Effect.WARN and self.pause_open:
                legs = ", ".join(result.state.unconfirmed_legs)
                self.pause_warnings.append(
                    {
                        "started_at": self.pauses[-1].started_at,
                        "leg": legs,
                        "warning": result.state.warning,
                        "at": at,
                    }
                )
        return result.effects

    # -- views -----------------------------------------------------------------------------
    @property
    def paused(self) -> bool:
        """Voice AND screen safe (confirmed, or nothing capturing)."""
        return self.secure.whole is PauseState.PAUSED

    @property
    def pause_open(self) -> bool:
        return bool(self.pauses) and self.pauses[-1].ended_at is None

    def to_info(self) -> CallInfo:
        return CallInfo(
            interaction_id=self.interaction_id,
            call_id=self.call_id,
            dn=self.dn,
            caller=self.caller,
            callee=self.callee,
            phase=self.phase,
            voice=self.voice,
            screen=self.screen,
            paused=self.paused,
            started_at=self.started_at,
            answered_at=self.answered_at,
            ended_at=self.ended_at,
            acw_ended_at=self.acw_ended_at,
            acw_deadline=self.acw_deadline,
            pauses=[PauseSpanInfo(p.started_at, p.ended_at) for p in self.pauses],
            pause=self.secure.whole,
            pause_warning=self.secure.warning,
            direction=self.direction,
            metadata=dict(self.metadata),
        )

    def _require(self, condition: bool, code: str, message: str) -> None:
        if not condition:
            raise LifecycleError(code, message)
