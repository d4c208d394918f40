"""Event channel messages (WebSocket ``/api/events``), versioned.

Every message in either direction is one JSON object, an *envelope*::

    {"v": 1, "seq": 17, "type": "call.started", "at": 1763712000.25, "data": {...}}

``seq`` increases by one per message the server sends on an agent's channel (the client's own
messages carry ``seq`` 0). ``at`` is the server's clock (Unix seconds) for server messages and
the client's clock for client messages. The first message after connecting is always
``state``: the agent's current call, so a client that reconnects needs nothing else to resync.

Times in ``data`` are Unix seconds on the **server's** clock (floats): the server is the clock.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

PROTOCOL_VERSION = 1


class EventType(StrEnum):
    """Messages the server sends on an agent's channel."""

    # data: {"agent": UserInfo dict, "call": CallInfo dict | None}; to a desktop also "recorder":
    # the recorder.health data (None if it could not be read)
    STATE = "state"
    CALL_STARTED = "call.started"  # data: CallInfo
    CALL_ENDED = "call.ended"  # data: CallInfo (phase "acw")
    SCREEN_START = "screen.start"  # data: ScreenCommand — recorder begins capture
    SCREEN_PAUSE = "screen.pause"  # data: ScreenCommand — recorder stops capture, acks
    SCREEN_RESUME = "screen.resume"  # data: ScreenCommand — recorder captures again, acks
    SCREEN_STOP = "screen.stop"  # data: ScreenCommand — recorder finalises and uploads
    RECORDING_PAUSED = "recording.paused"  # data: CallInfo, sent once voice AND screen confirm
    RECORDING_RESUMED = "recording.resumed"  # data: CallInfo
    RECORDING_STOPPED = "recording.stopped"  # data: CallInfo — no more recording for this call
    CALL_UPDATED = "call.updated"  # data: CallInfo (any other state change, e.g. upload done)
    ACW_ENDED = "acw.ended"  # data: CallInfo (phase "done")
    TIME_PONG = "time.pong"  # data: TimePong
    ERROR = "error"  # data: {"message": str}
    # data: RecorderPolicy.to_dict() — the admin changed it; the recorder applies it from its next
    # capture or heartbeat (clients that do not know an event type ignore it).
    RECORDER_POLICY = "recorder.policy"
    # data: the agent's own recorder as its desktop shows it (server.services.recorder_health_event:
    # connected, last_seen, heartbeat, problems) — on each heartbeat and recorder (dis)connect; a
    # desktop that connects finds it in its ``state``.
    RECORDER_HEALTH = "recorder.health"


class ClientMessageType(StrEnum):
    """Messages a client sends on its channel."""

    TIME_PING = "time.ping"  # data: TimePing
    SCREEN_STATUS = "screen.status"  # data: ScreenStatus (recorder only)
    SCREEN_AUTO_PAUSE = "screen.auto_pause"  # data: ScreenAutoPause (recorder only)
    # data: tandem_protocol.recorder_health.Heartbeat (recorder only, every policy.heartbeat_seconds)
    RECORDER_HEARTBEAT = "recorder.heartbeat"


class Phase(StrEnum):
    """Where a call is in its life, as the agent sees it."""

    RINGING = "ringing"
    ACTIVE = "active"
    ACW = "acw"
    DONE = "done"


class VoiceState(StrEnum):
    RECORDING = "recording"
    PAUSED = "paused"
    STOPPED = "stopped"  # call ended, file finalised
    FAILED = "failed"


class ScreenState(StrEnum):
    OFF = "off"  # not sampled for this interaction
    REQUESTED = "requested"  # screen.start sent, recorder has not confirmed yet
    RECORDING = "recording"
    PAUSED = "paused"
    STOPPED = "stopped"  # recorder finalised its file, upload pending
    UPLOADED = "uploaded"
    FAILED = "failed"
    # Sampled, but the agent's recorder is not connected (never was, or gone longer than three
    # heartbeats): said at once instead of "requested" for ever; back to "requested" when it returns.
    NO_RECORDER = "no_recorder"


class PauseState(StrEnum):
    """The agent's secure pause as a whole (``server.calls.secure_pause``): "paused" only once
    voice AND screen are safe; "unconfirmed" when a leg could not be confirmed (``pause_warning``
    names it). Resume is possible from requested, paused and unconfirmed."""

    RECORDING = "recording"  # no pause
    REQUESTED = "requested"  # voice silenced; the screen recorder is confirming
    PAUSED = "paused"
    UNCONFIRMED = "unconfirmed"
    ENDED = "ended"  # the call's recording is over


@dataclass(slots=True)
class PauseSpanInfo:
    started_at: float
    ended_at: float | None = None


@dataclass(slots=True)
class CallInfo:
    """The agent's current interaction, as both clients need it."""

    interaction_id: str
    call_id: str
    dn: str
    caller: str
    callee: str
    phase: Phase
    voice: VoiceState
    screen: ScreenState
    paused: bool
    started_at: float
    answered_at: float | None = None
    ended_at: float | None = None
    acw_ended_at: float | None = None
    acw_deadline: float | None = None
    pauses: list[PauseSpanInfo] = field(default_factory=list)
    # The secure pause's whole state and, when a leg is not confirmed, the warning naming it
    # (defaults: what a server without them means).
    pause: PauseState = PauseState.RECORDING
    pause_warning: str = ""
    # What the SIP side said (defaults: a server that sends none): "inbound", "outbound" or ""
    # (not known), and the recording parameters / X-headers (e.g. queue, service) as strings.
    direction: str = ""
    metadata: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> CallInfo:
        try:
            return cls(
                interaction_id=str(raw["interaction_id"]),
                call_id=str(raw["call_id"]),
                dn=str(raw["dn"]),
                caller=str(raw["caller"]),
                callee=str(raw["callee"]),
                phase=Phase(raw["phase"]),
                voice=VoiceState(raw["voice"]),
                screen=ScreenState(raw["screen"]),
                paused=bool(raw["paused"]),
                started_at=float(raw["started_at"]),
                answered_at=_opt_float(raw.get("answered_at")),
                ended_at=_opt_float(raw.get("ended_at")),
                acw_ended_at=_opt_float(raw.get("acw_ended_at")),
                acw_deadline=_opt_float(raw.get("acw_deadline")),
                pauses=[
                    PauseSpanInfo(float(p["started_at"]), _opt_float(p.get("ended_at")))
                    for p in raw.get("pauses", [])
                ],
                pause=PauseState(raw.get("pause", PauseState.PAUSED if raw["paused"] else "recording")),
                pause_warning=str(raw.get("pause_warning", "")),
                direction=str(raw.get("direction", "")),
                metadata=_str_dict(raw.get("metadata")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed CallInfo: {exc}") from exc


@dataclass(slots=True)
class ScreenCommand:
    """Server → recorder. ``at`` is the server time the command takes effect: on pause the
    recorder drops any frame stamped at or after it; on resume it keeps frames from it on."""

    interaction_id: str
    at: float
    fps: float | None = None
    # screen.start: the admin's recorder policy (tandem_protocol.recorder_policy.RecorderPolicy
    # as a dict); None from a server that sends none — the recorder then uses the defaults.
    policy: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ScreenCommand:
        try:
            fps = raw.get("fps")
            policy = raw.get("policy")
            if policy is not None and not isinstance(policy, dict):
                raise ValueError("policy must be an object")
            return cls(
                str(raw["interaction_id"]),
                float(raw["at"]),
                None if fps is None else float(fps),
                policy,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed ScreenCommand: {exc}") from exc


@dataclass(slots=True)
class ScreenStatus:
    """Recorder → server: what the capture is doing now (the ack of a ScreenCommand)."""

    interaction_id: str
    state: ScreenState  # RECORDING, PAUSED, STOPPED or FAILED
    at: float  # server-clock time the recorder applied it
    detail: str = ""

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ScreenStatus:
        try:
            return cls(
                str(raw["interaction_id"]),
                ScreenState(raw["state"]),
                float(raw["at"]),
                str(raw.get("detail", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed ScreenStatus: {exc}") from exc


@dataclass(slots=True)
class ScreenAutoPause:
    """Recorder → server: a masking rule's window was on screen, so the screen recording paused
    itself from ``started_at`` (server clock) — sent when it starts (``ended_at`` None) and again
    when it ends. The server stores it as a pause span with reason ``auto:<rule>``."""

    interaction_id: str
    rule: str
    started_at: float
    ended_at: float | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ScreenAutoPause:
        try:
            msg = cls(
                str(raw["interaction_id"]),
                str(raw["rule"]),
                float(raw["started_at"]),
                _opt_float(raw.get("ended_at")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed ScreenAutoPause: {exc}") from exc
        if not msg.rule.strip():
            raise ValueError("malformed ScreenAutoPause: empty rule name")
        if msg.ended_at is not None and msg.ended_at < msg.started_at:
            raise ValueError("malformed ScreenAutoPause: ended_at before started_at")
        return msg


@dataclass(slots=True)
class TimePing:
    t0: float  # client clock when sent


@dataclass(slots=True)
class TimePong:
    """NTP-style: offset = ((t1 - t0) + (t2 - t3)) / 2 with t3 the client's receive time."""

    t0: float
    t1: float  # server clock on receipt
    t2: float  # server clock on send


@dataclass(slots=True)
class Envelope:
    type: str
    data: dict[str, Any]
    seq: int = 0
    at: float = 0.0
    v: int = PROTOCOL_VERSION

    def to_json(self) -> str:
        return json.dumps({"v": self.v, "seq": self.seq, "type": self.type, "at": self.at, "data": self.data})


def parse_envelope(text: str | bytes) -> Envelope:
    """Parse one message; ``ValueError`` with a clear reason for anything malformed."""
    try:
        raw = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"message is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValueError("message is not a JSON object")
    version = raw.get("v")
    if version != PROTOCOL_VERSION:
        raise ValueError(f"unsupported protocol version {version!r} (expected {PROTOCOL_VERSION})")
    kind = raw.get("type")
    data = raw.get("data", {})
    if not isinstance(kind, str) or not isinstance(data, dict):
        raise ValueError("message needs a string 'type' and an object 'data'")
    try:
        seq = int(raw.get("seq", 0))
        at = float(raw.get("at", 0.0))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bad seq/at: {exc}") from exc
    return Envelope(type=kind, data=data, seq=seq, at=at)


def to_data(obj: Any) -> dict[str, Any]:
    """A protocol dataclass as the ``data`` dict of an envelope."""
    return asdict(obj)


def _str_dict(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("metadata must be an object")
    return {str(k): str(v) for k, v in value.items()}


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
