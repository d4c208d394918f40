"""The admin's codes as the desktop knows them (``GET /api/agent/codes``), pure: Not Ready reasons
for the state selector, ACW dispositions, pause reasons, and whether a disposition or a pause
reason is required."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class CodeOption:
    code: str
    label: str


@dataclass(frozen=True, slots=True)
class AgentCodes:
    """What the admin defined (``GET /api/agent/codes``): Not Ready reasons, ACW dispositions,
    whether Done needs a disposition, the ACW limit. ``loaded`` False: not (yet) known — a server
    without codes leaves the state selector and the dispositions empty, never blocking Done."""

    reasons: tuple[CodeOption, ...] = ()
    dispositions: tuple[CodeOption, ...] = ()
    disposition_required: bool = False
    acw_limit_seconds: float | None = None
    may_play_own: bool = False  # the admin lets his team play its own recordings (web player)
    # Why he pauses (agent_app.pause_reason): the admin's pause codes, and whether his team must
    # name one. Asked after the pause is sent, never before (the pause is never held up).
    pause_reasons: tuple[CodeOption, ...] = ()
    pause_reason_required: bool = False
    loaded: bool = False


def parse_codes(raw: Any) -> AgentCodes:
    """`AgentCodes` from ``GET /api/agent/codes``; ValueError if malformed."""
    if not isinstance(raw, dict):
        raise ValueError(f"expected an object, got {type(raw).__name__}")
    data: dict[str, Any] = raw
    try:
        limit = data.get("acw_limit_seconds")
        return AgentCodes(
            reasons=tuple(CodeOption(str(c["code"]), str(c["label"])) for c in data.get("reason_codes", [])),
            dispositions=tuple(
                CodeOption(str(c["code"]), str(c["label"])) for c in data.get("disposition_codes", [])
            ),
            disposition_required=bool(data.get("disposition_required", False)),
            acw_limit_seconds=None if limit is None else float(limit),
            may_play_own=bool(data.get("may_play_own_recordings", False)),
            pause_reasons=tuple(
                CodeOption(str(c["code"]), str(c["label"])) for c in data.get("pause_codes", [])
            ),
            pause_reason_required=bool(data.get("pause_reason_required", False)),
            loaded=True,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed agent codes: {exc}") from exc
