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

from server.errors import LifecycleError
from tandem_protocol.events import CallInfo, PauseSpanInfo, Phase, ScreenState, VoiceState

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
    paused: bool = False  # confirmed by voice AND screen
    answered_at: float | None = None
    ended_at: float | None = None
    acw_ended_at: float | None = None
    acw_deadline: float | None = None
    stopped_at: float | None = None
    pauses: list[PauseSpanInfo] = field(default_factory=list)
    parent_id: str | None = None  # the agent's call this one overlapped (a second call)

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

    def begin_pause(self, at: float) -> bool:
        """Voice pauses at ``at``. Returns True when the screen must confirm a pause too."""
        self._require(self.phase is Phase.ACTIVE, "not_active", "only an active call can be paused")
        self._require(self.stopped_at is None, "stopped", "recording was stopped for this call")
        self._require(not self.pause_open, "already_paused", "recording is already paused")
        self.pauses.append(PauseSpanInfo(started_at=at))
        self.voice = VoiceState.PAUSED
        return self.screen in CAPTURING

    def begin_resume(self, at: float) -> bool:
        """Voice records again from ``at``. Returns True when the screen must confirm."""
        self._require(self.phase is Phase.ACTIVE, "not_active", "only an active call can be resumed")
        self._require(self.pause_open, "not_paused", "recording is not paused")
        self._require(self.stopped_at is None, "stopped", "recording was stopped for this call")
        self.pauses[-1].ended_at = at
        self.voice = VoiceState.RECORDING
        self.paused = False
        return self.screen is ScreenState.PAUSED or (self.screen in CAPTURING)

    def stop(self, at: float) -> bool:
        """No more recording for this call. Returns True when the screen must stop now."""
        self._require(self.phase is Phase.ACTIVE, "not_active", "only an active call can stop recording")
        self._require(self.stopped_at is None, "already_stopped", "recording is already stopped")
        if self.pause_open:
            self.pauses[-1].ended_at = at
        self.paused = False
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
        if self.pause_open:
            self.pauses[-1].ended_at = at
        self.paused = False
        self.voice = VoiceState.FAILED

    def end_call(self, at: float, acw_limit: float) -> bool:
        """BYE. A pause never outlives the call's recording: an open span closes here.
        Returns True when the screen, paused, must be resumed for after-call work."""
        self._require(self.phase in (Phase.RINGING, Phase.ACTIVE), "not_active", "call already ended")
        was_paused_screen = self.screen is ScreenState.PAUSED and self.stopped_at is None
        if self.pause_open:
            self.pauses[-1].ended_at = at
        self.paused = False
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

    def screen_reported(self, state: ScreenState) -> None:
        """The recorder's ack. Late acks never move an uploaded screen backwards."""
        if self.screen in (ScreenState.OFF, ScreenState.UPLOADED):
            return
        self.screen = state

    def screen_uploaded(self) -> None:
        self.screen = ScreenState.UPLOADED

    # -- views -----------------------------------------------------------------------------
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
        )

    def _require(self, condition: bool, code: str, message: str) -> None:
        if not condition:
            raise LifecycleError(code, message)
