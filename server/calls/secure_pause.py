"""The secure pause as one state machine: a state per leg (voice, screen) and one for the whole.

Pure: no asyncio, database or network, no clock — every event carries what it needs. The call's
lifecycle (``server.calls.lifecycle.Interaction``) keeps one ``SecurePause`` and feeds it the
events; ``RecordingControl`` carries out the effects each step returns (silence the voice, tell
the recorder, open/close the pause span, store and show a warning).

The rules (issue 13, item 1):

* A pause request silences the voice at once (the voice leg is safe from the request on).
* The screen leg is safe when the recorder confirms, or when nothing captures this call's
  screen (not sampled, the recorder missing past its grace — screen ``no_recorder`` —, screen
  stopped or failed): ``NOT_CAPTURED``. A screen being captured whose recorder has just dropped
  its connection (killed, network cut: within its grace it may still be capturing offline) cannot
  confirm: that leg is ``UNCONFIRMED`` at once, without waiting.
* The whole is ``PAUSED`` only when both legs are safe. A leg that cannot be confirmed (no ack
  within the timeout, or a failure) is ``UNCONFIRMED``: the whole says so and carries a warning
  naming the leg, for the agent and for the supervisor's timeline.
* Resume always works, from every pausing state (requested, paused, unconfirmed): the voice
  resumes at once and nothing waits on the recorder.
* A pause never outlives the call's recording: the call's end (or stop, or a failed voice)
  closes it, and the machine is ``ENDED`` for good.

    RECORDING --request--> REQUESTED --screen confirmed / not captured--> PAUSED
        ^                     |  \\--timeout / failure--> UNCONFIRMED --late ack--> PAUSED
        |                     |                              |
        +------ resume (from REQUESTED, PAUSED, UNCONFIRMED) -+
    any --call end--> ENDED
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from tandem_protocol.events import PauseState  # the whole, shared with the desktop


class LegState(StrEnum):
    LIVE = "live"  # recording (no pause)
    PENDING = "pending"  # told to pause, not confirmed yet
    SAFE = "safe"  # pause confirmed
    NOT_CAPTURED = "not_captured"  # nothing records this leg now: safe without a confirmation
    UNCONFIRMED = "unconfirmed"  # could not be confirmed (timeout, failure): the agent is warned


SAFE_LEGS = frozenset({LegState.SAFE, LegState.NOT_CAPTURED})


PAUSING = frozenset({PauseState.REQUESTED, PauseState.PAUSED, PauseState.UNCONFIRMED})


class Effect(StrEnum):
    """What the caller must do after a step, in this order."""

    SILENCE_VOICE = "silence_voice"
    PAUSE_SCREEN = "pause_screen"  # send screen.pause
    OPEN_SPAN = "open_span"
    RESUME_VOICE = "resume_voice"
    RESUME_SCREEN = "resume_screen"  # send screen.resume (never waited for)
    CLOSE_SPAN = "close_span"
    WARN = "warn"  # store and show ``state.warning`` (a leg not confirmed)
    CLEAR_WARNING = "clear_warning"  # the warning no longer holds (late ack, resume, end)
    SHOW = "show"  # the whole changed: tell the desktop


# ---- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    at: float
    screen_captured: bool  # a recorder is connected and capturing (or starting) this call's screen


@dataclass(frozen=True, slots=True)
class ScreenConfirmed:
    pass


@dataclass(frozen=True, slots=True)
class ScreenUnreachable:
    """The screen is being captured but its recorder's connection is down: no ack can come."""


@dataclass(frozen=True, slots=True)
class ScreenTimeout:
    seconds: float


@dataclass(frozen=True, slots=True)
class ScreenFailed:
    detail: str


@dataclass(frozen=True, slots=True)
class RecorderGone:
    """The agent's recorder is no longer connected (after its grace): it captures nothing here."""


@dataclass(frozen=True, slots=True)
class Resume:
    at: float


@dataclass(frozen=True, slots=True)
class CallEnd:
    """The call's recording is over (BYE, stop, failed voice)."""

    at: float


Event = (
    Request
    | ScreenConfirmed
    | ScreenUnreachable
    | ScreenTimeout
    | ScreenFailed
    | RecorderGone
    | Resume
    | CallEnd
)


# ---- state ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SecurePause:
    voice: LegState = LegState.LIVE
    screen: LegState = LegState.LIVE
    started_at: float | None = None  # the open pause's start
    warning: str = ""  # why a leg is unconfirmed, in words for the agent
    ended: bool = False

    @property
    def whole(self) -> PauseState:
        if self.ended:
            return PauseState.ENDED
        if self.started_at is None:
            return PauseState.RECORDING
        legs = (self.voice, self.screen)
        if LegState.UNCONFIRMED in legs:
            return PauseState.UNCONFIRMED
        if all(leg in SAFE_LEGS for leg in legs):
            return PauseState.PAUSED
        return PauseState.REQUESTED

    @property
    def unconfirmed_legs(self) -> tuple[str, ...]:
        return tuple(
            name
            for name, leg in (("voice", self.voice), ("screen", self.screen))
            if leg is LegState.UNCONFIRMED
        )


@dataclass(frozen=True, slots=True)
class Step:
    state: SecurePause
    effects: tuple[Effect, ...] = ()


def step(state: SecurePause, event: Event) -> Step:
    """The next state and what to do. Never raises: an event that does not apply to the state
    (a late ack after a resume, a second request) changes nothing and asks for nothing."""
    whole = state.whole
    if whole is PauseState.ENDED:
        return Step(state)
    match event:
        case Request(at=at, screen_captured=captured):
            if whole is not PauseState.RECORDING:
                return Step(state)  # already pausing: one pause at a time
            screen = LegState.PENDING if captured else LegState.NOT_CAPTURED
            nxt = SecurePause(voice=LegState.SAFE, screen=screen, started_at=at)
            effects = [Effect.SILENCE_VOICE, Effect.OPEN_SPAN]
            if captured:
                effects.append(Effect.PAUSE_SCREEN)
            return Step(nxt, (*effects, Effect.SHOW))
        case ScreenConfirmed():
            if whole not in PAUSING or state.screen not in (LegState.PENDING, LegState.UNCONFIRMED):
                return Step(state)
            return _settle(state, replace(state, screen=LegState.SAFE))
        case ScreenTimeout(seconds=seconds):
            if whole not in PAUSING or state.screen is not LegState.PENDING:
                return Step(state)
            warning = (
                f"Screen pause NOT confirmed: the screen recorder did not answer within {seconds:g} s "
                "— the screen may still be recording"
            )
            return Step(
                replace(state, screen=LegState.UNCONFIRMED, warning=warning), (Effect.WARN, Effect.SHOW)
            )
        case ScreenUnreachable():
            if whole not in PAUSING or state.screen is not LegState.PENDING:
                return Step(state)
            warning = (
                "Screen pause NOT confirmed: the screen recorder is not connected — if it is still "
                "capturing, it cuts this pause from its recording when it reconnects"
            )
            return Step(
                replace(state, screen=LegState.UNCONFIRMED, warning=warning), (Effect.WARN, Effect.SHOW)
            )
        case ScreenFailed(detail=detail):
            if whole not in PAUSING or state.screen is not LegState.PENDING:
                return Step(state)
            warning = f"Screen pause NOT confirmed: the screen recorder failed ({detail or 'no detail'})"
            return Step(
                replace(state, screen=LegState.UNCONFIRMED, warning=warning), (Effect.WARN, Effect.SHOW)
            )
        case RecorderGone():
            if whole not in PAUSING or state.screen not in (LegState.PENDING, LegState.UNCONFIRMED):
                return Step(state)
            return _settle(state, replace(state, screen=LegState.NOT_CAPTURED))
        case Resume():
            if whole not in PAUSING:
                return Step(state)  # resuming what is not paused: nothing to do, never an error
            effects = [Effect.RESUME_VOICE]
            # A recorder told to pause is told to capture again even if it never confirmed (a hung
            # one acts on it when it wakes); the resume is never waited for.
            if state.screen in (LegState.PENDING, LegState.SAFE, LegState.UNCONFIRMED):
                effects.append(Effect.RESUME_SCREEN)
            effects.append(Effect.CLOSE_SPAN)
            if state.warning:
                effects.append(Effect.CLEAR_WARNING)
            return Step(SecurePause(), (*effects, Effect.SHOW))
        case CallEnd():
            effects = [Effect.CLOSE_SPAN] if whole in PAUSING else []
            if state.warning:
                effects.append(Effect.CLEAR_WARNING)
            return Step(SecurePause(ended=True), (*effects, Effect.SHOW))
    raise TypeError(f"unknown event {event!r}")  # pragma: no cover - exhaustive match


def _settle(before: SecurePause, after: SecurePause) -> Step:
    """A leg became safe: the warning goes when no leg is unconfirmed any more."""
    effects: list[Effect] = []
    if before.warning and not after.unconfirmed_legs:
        after = replace(after, warning="")
        effects.append(Effect.CLEAR_WARNING)
    return Step(after, (*effects, Effect.SHOW))
