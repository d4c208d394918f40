"""The desktop's pause reason rules (agent_app.pause_reason): asked only when the admin defined
pause codes, required means the chooser cannot be dismissed, only a listed code is sent."""

from __future__ import annotations

from agent_app.model import AgentCodes, CodeOption, parse_codes
from agent_app.pause_reason import (
    Close,
    ReasonPrompt,
    Send,
    StillNeeded,
    decide,
    failed_text,
    prompt_for,
    saved_text,
)

CARD = CodeOption("CARD", "Card payment")
HEALTH = CodeOption("HEALTH", "Health data")


def test_no_pause_codes_means_no_question() -> None:
    assert prompt_for(AgentCodes(loaded=True), "int-1") is None


def test_the_server_codes_are_parsed_into_the_prompt() -> None:
    codes = parse_codes(
        {
            "reason_codes": [],
            "disposition_codes": [],
            "pause_codes": [{"kind": "pause", "code": "CARD", "label": "Card payment", "active": True}],
            "pause_reason_required": True,
        }
    )
    assert prompt_for(codes, "int-1") == ReasonPrompt("int-1", (CARD,), True)
    # An older server without pause codes: no chooser, nothing required.
    older = parse_codes({"reason_codes": [], "disposition_codes": []})
    assert older.pause_reasons == () and older.pause_reason_required is False


def test_a_listed_code_is_sent_anything_else_is_asked_again() -> None:
    prompt = ReasonPrompt("int-1", (CARD, HEALTH), required=False)
    assert decide(prompt, "HEALTH") == Send("HEALTH")
    assert isinstance(decide(prompt, "LUNCH"), StillNeeded)
    assert saved_text(prompt, "HEALTH") == "Pause reason saved: Health data"


def test_dismissing_closes_when_optional_and_asks_again_when_required() -> None:
    assert decide(ReasonPrompt("int-1", (CARD,), required=False), None) == Close()
    again = decide(ReasonPrompt("int-1", (CARD,), required=True), None)
    assert isinstance(again, StillNeeded) and "must give a reason" in again.message
    assert failed_text("no pause").startswith("The pause stands")


def test_the_chooser_translates_exactly_these_texts() -> None:
    from agent_app.pause_reason import CHOOSE_TEXT, REQUIRED_TEXT
    from agent_app.widgets.pause_reason_dialog import TEXTS

    assert set(TEXTS) == {REQUIRED_TEXT, CHOOSE_TEXT}
