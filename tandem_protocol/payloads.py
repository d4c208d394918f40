"""REST payloads shared by server and clients (see docs/api.md for the endpoints)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ClientKind = Literal["desktop", "recorder", "web", "api"]
Role = Literal["agent", "supervisor", "evaluator", "compliance", "admin"]


@dataclass
class LoginRequest:
    username: str
    password: str
    dn: str | None = None  # agents on the desktop: binds the agent to this DN until logout
    client: ClientKind = "api"


@dataclass
class UserInfo:
    id: int
    username: str
    role: str
    full_name: str = ""
    team_id: int | None = None
    dn: str | None = None


@dataclass
class LoginResponse:
    token: str
    expires_at: float  # Unix seconds, server clock
    user: UserInfo


@dataclass
class ErrorBody:
    error: str  # stable machine code, e.g. "invalid_credentials"
    message: str  # sentence for a person


@dataclass
class PauseSpan:
    started_at: float
    ended_at: float | None = None
    by: str = ""
    # A leg of the secure pause that could not be confirmed (e.g. the screen recorder did not
    # answer): from the interaction's recording_meta["pause_warnings"]; empty when confirmed.
    warning: str = ""


@dataclass
class InteractionSummary:
    id: str
    call_id: str
    dn: str
    agent: str
    caller: str
    callee: str
    state: str
    started_at: float
    answered_at: float | None
    ended_at: float | None
    acw_ended_at: float | None
    screen_decision: bool
    media_started_at: float | None = None  # server time of the muxed file's t=0
    media: list[str] = field(default_factory=list)  # kinds present: voice, screen, muxed
    pauses: list[PauseSpan] = field(default_factory=list)
    # Encodings of the voice present besides the WAV master, e.g. "mp3_16k_stereo"; each is
    # downloaded as media kind "voice:<format>".
    voice_formats: list[str] = field(default_factory=list)
    # How the voice recording went ("stopped" when saved; "failed" when it could not go on) and
    # why the recording ended ("bye", "rtp timeout", "rtp worker died", "disk full", …).
    voice_state: str = ""
    end_reason: str = ""
    # The agent's call this one overlapped (a second simultaneous call: three-way, call
    # waiting, consultation — recorded voice-only, its own interaction); None for most calls.
    linked_to: str | None = None
    # Recorded although it named no known party (admin policy ``record_unassigned``): no agent;
    # admins and compliance see it, supervisors do not (it belongs to no team).
    unassigned: bool = False
    # The screen recording's state: "off" (not sampled), "requested", "recording", "paused",
    # "stopped", "uploaded", "failed", or "no_recorder" (sampled, but the agent's recorder was not
    # connected: the screen of this call is missing, not pending).
    screen_state: str = ""
    # What the SIP side said: "inbound", "outbound" or "" (not known; every call before 0017).
    direction: str = ""


@dataclass
class SamplingPolicy:
    """Share of interactions that also get a screen recording, 0–100, with per-team overrides
    (team id as a string key, because JSON object keys are strings)."""

    percentage: float
    team_overrides: dict[str, float] = field(default_factory=dict)


@dataclass
class VoiceFormatOption:
    id: str  # e.g. "mp3_16k_stereo"
    label: str  # e.g. "MP3 16 kbit/s stereo"
    available: bool  # this server's FFmpeg build can encode it


@dataclass
class VoiceFormatsPolicy:
    """Formats each call's voice is encoded into when the call ends, besides the 16-bit PCM WAV
    the server records, which is always kept as the master. A PUT sends ``formats``; the answer
    adds ``options``, every format the server knows."""

    formats: list[str]
    options: list[VoiceFormatOption] = field(default_factory=list)


@dataclass
class RecorderEnrolmentRequest:
    """``POST /api/admin/recorders/enrolments`` (admin): a one-time code for this agent's recorder."""

    username: str


@dataclass
class RecorderEnrolmentCode:
    code: str  # shown once; the server keeps only its hash
    username: str
    expires_at: float  # Unix seconds, server clock


@dataclass
class RecorderEnrollRequest:
    """``POST /api/recorders/enroll``: the recorder exchanges its code (once) for a recorder token,
    answered as a ``LoginResponse``. ``hostname`` and ``os_user`` name the PC on the fleet page
    when the code is refused."""

    code: str
    hostname: str = ""
    os_user: str = ""


class UploadHeaders:
    """Headers of ``PUT /api/interactions/{id}/screen`` (body: the raw MP4 bytes). A stored screen
    recording is answered ``409 already_uploaded`` with its ``sha256`` in the body; an upload under
    way with ``409 upload_in_progress`` (retry later)."""

    STARTED_AT = "X-Tandem-Started-At"  # server-clock Unix seconds of the file's pts 0
    SHA256 = "X-Tandem-Sha256"  # hex digest of the whole body
