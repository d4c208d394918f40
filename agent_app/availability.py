"""The state selector's rules (Ready / Not Ready ▸ reason), without Qt: testable directly.

The agent picks Ready or Not Ready (with one of the admin's reason codes) himself, and only
between calls. On call, paused and after-call work come from the call and end with it: during
them the selector shows that state as its only entry and cannot be used, so the box never says
"Ready" while the agent is busy, and Ready comes back with Done, not before. The reducer
(`agent_app.model`) refuses a choice these rules do not allow; the view (`agent_app.view`) copies
what the selector lists and shows.
"""

from __future__ import annotations

from agent_app.desktop_state import AgentState, DesktopState, Pending, agent_state

# The states the agent picks himself; On call, paused and ACW come from the call and end with it.
SELECTABLE_STATES = frozenset({AgentState.READY, AgentState.NOT_READY})

# What the state selector shows while the call decides the state (its only entry, not choosable):
# (state, reason code, label).
CALL_STATE_CHOICE = {
    AgentState.ON_CALL: ("on_call", "", "On call"),
    AgentState.PAUSED: ("on_call", "", "On call"),  # the header says the recording is paused
    AgentState.AFTER_CALL_WORK: ("acw", "", "After-call work"),
}


def can_choose_availability(state: DesktopState) -> bool:
    """Ready / Not Ready are chosen only between calls: during a call and its after-call work
    the selector shows that state, and Ready comes back with Done, not before."""
    return (
        state.logged_in
        and state.pending == Pending.NONE
        and state.codes.loaded
        and agent_state(state) in SELECTABLE_STATES
    )


def valid_availability(state: DesktopState, choice: str, reason_code: str) -> bool:
    """Ready without a reason, or Not Ready with one of the admin's (active) reasons."""
    if choice == "ready":
        return not reason_code
    return choice == "not_ready" and any(r.code == reason_code for r in state.codes.reasons)


def state_choices(state: DesktopState) -> tuple[tuple[str, str, str], ...]:
    """Ready and one "Not Ready ▸ reason" per code between calls; during a call or its ACW only
    that state, so the box never says "Ready" while the agent is busy."""
    if (during_call := CALL_STATE_CHOICE.get(agent_state(state))) is not None:
        return (during_call,)
    reasons = tuple(("not_ready", r.code, f"Not Ready ▸ {r.label}") for r in state.codes.reasons)
    return (("ready", "", "Ready"), *reasons)


def state_choice(state: DesktopState) -> tuple[str, str]:
    """The entry the selector shows: the call's state during a call, else the agent's choice as
    the server stored it (Not Ready chosen before a call is shown again after it)."""
    if (during_call := CALL_STATE_CHOICE.get(agent_state(state))) is not None:
        return during_call[0], during_call[1]
    return state.availability, state.reason_code
