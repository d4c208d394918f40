"""The pause reason chooser's rules (issue 13 item 2), without Qt: testable directly.

The rule of the desktop: every way to pause — the button, the tray, the global hotkey — sends the
pause at once and only then asks why. Asking first would keep the recording running while the
agent reads a list, and the pause exists to keep a card number out of it. The reason goes to the
server afterwards (``POST /api/interactions/{id}/pause-reason``) on the same worker thread, so it
always arrives after the pause it belongs to. When the admin requires a reason the chooser
cannot be waved away; otherwise "No reason" closes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent_app.model import AgentCodes, CodeOption


@dataclass(frozen=True, slots=True)
class ReasonPrompt:
    interaction_id: str
    options: tuple[CodeOption, ...]
    required: bool


@dataclass(frozen=True, slots=True)
class Send:
    code: str


@dataclass(frozen=True, slots=True)
class Close:
    """Nothing to send: the agent gave no reason and none is required."""


@dataclass(frozen=True, slots=True)
class StillNeeded:
    message: str


Decision = Send | Close | StillNeeded
REQUIRED_TEXT = "Your team must give a reason for every pause: choose one and press Enter."
CHOOSE_TEXT = "Choose one of the reasons in the list."


def prompt_for(codes: AgentCodes, interaction_id: str) -> ReasonPrompt | None:
    """What to ask after a pause was sent; None without pause codes (nothing to choose from)."""
    if not codes.pause_reasons:
        return None
    return ReasonPrompt(interaction_id, codes.pause_reasons, codes.pause_reason_required)


def decide(prompt: ReasonPrompt, chosen: str | None) -> Decision:
    """The agent chose ``chosen`` (a code), or dismissed the chooser (None)."""
    if chosen is not None:
        if any(o.code == chosen for o in prompt.options):
            return Send(chosen)
        return StillNeeded(CHOOSE_TEXT)
    return StillNeeded(REQUIRED_TEXT) if prompt.required else Close()


def saved_text(prompt: ReasonPrompt, code: str) -> str:
    label = next((o.label for o in prompt.options if o.code == code), code)
    return f"Pause reason saved: {label}"


def failed_text(message: str) -> str:
    """The server refused or could not take the reason (the pause itself stands)."""
    return f"The pause stands, but its reason was not saved: {message}"
