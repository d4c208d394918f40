"""Wire-protocol types shared by the Tandem server, agent desktop and recorder service.

Dependency-free on purpose (stdlib only): the agent PC imports it without pulling in the
server's stack, and the server imports it so both sides agree on one definition. FastAPI
accepts these dataclasses directly as request and response models.
"""

from tandem_protocol.events import (
    PROTOCOL_VERSION,
    CallInfo,
    ClientMessageType,
    Envelope,
    EventType,
    Phase,
    ScreenCommand,
    ScreenState,
    ScreenStatus,
    TimePing,
    TimePong,
    VoiceState,
    parse_envelope,
)
from tandem_protocol.payloads import (
    ErrorBody,
    InteractionSummary,
    LoginRequest,
    LoginResponse,
    PauseSpan,
    SamplingPolicy,
    UploadHeaders,
    UserInfo,
)

__all__ = [
    "PROTOCOL_VERSION",
    "CallInfo",
    "ClientMessageType",
    "Envelope",
    "ErrorBody",
    "EventType",
    "InteractionSummary",
    "LoginRequest",
    "LoginResponse",
    "PauseSpan",
    "Phase",
    "SamplingPolicy",
    "ScreenCommand",
    "ScreenState",
    "ScreenStatus",
    "TimePing",
    "TimePong",
    "UploadHeaders",
    "UserInfo",
    "VoiceState",
    "parse_envelope",
]
