"""The contract between the SIP/RTP engine and the rest of the server.

The engine (``server.sip.service.SipService``) owns sockets, dialogs, RTP and the voice file.
It knows nothing of users, databases or events: it asks a ``CallListener`` (implemented by the
server core) whether to record an offered call, and tells it when the call is answered, updated
(SIP-side pause, resume, stop, new metadata) and ended. The core drives pause/resume/stop
through the ``RecordedCall`` handle it is given, so a pause from the agent's desktop and a pause
from the SIP side go through the same state machine in the core.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Party:
    """A participant of the recorded call, as the SIPREC metadata (or the INVITE) names it."""

    participant_id: str
    aor: str | None  # first address of record, e.g. "sip:1001@pbx.example.com"
    name: str | None
    numbers: tuple[str, ...]  # user parts of every AOR ("1001", "+4930123"): matched to DNs
    sends: tuple[int, ...]  # m-line indices of the streams this party sends
    calling_party: bool | None = None  # vendor hint, None when unknown
    recorded: bool | None = None  # the SRC marks this party as the one recorded (None: not said)

    def display(self) -> str:
        number = self.numbers[0] if self.numbers else (self.aor or "")
        if self.name and number and self.name != number:
            return f"{self.name} <{number}>"
        return self.name or number or self.participant_id


@dataclass(frozen=True, slots=True)
class OfferedStream:
    index: int  # m-line index in the offer
    label: str | None
    codec: str
    sender: str | None  # participant_id of who sends it, if known


@dataclass(frozen=True, slots=True)
class CallOffer:
    """An INVITE that passed parsing and SDP checks, before it is answered."""

    call_id: str
    dn: str  # the DN to record: Request-URI user part, or a recording parameter (plain INVITE)
    caller: str  # "Name <number>" from From (plain) or the non-agent participant (SIPREC)
    callee: str  # To: user part
    source: tuple[str, int]  # where the INVITE came from
    codec: str  # codec of the first recorded stream ("PCMU", "PCMA", "G722")
    siprec: bool = False
    session_id: str | None = None  # the recorded communication session's id (metadata)
    participants: tuple[Party, ...] = ()
    streams: tuple[OfferedStream, ...] = ()  # the streams that can be recorded, offer order
    deferred: bool = False  # every stream inactive: media starts with a later re-INVITE
    consent_declined: bool = False
    params: tuple[tuple[str, str], ...] = ()  # recording parameters from the Request-URI/headers
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CallAccepted:
    interaction_id: str
    voice_path: Path  # where the engine writes the WAV while the call lasts (dir exists)
    # m-line indices whose audio is the agent's (right channel); the others are the caller's
    # (left). Empty with one recorded stream: a mono file.
    agent_streams: frozenset[int] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class CallRejected:
    status: int  # SIP status code, e.g. 404 when no agent is logged in on the DN
    reason: str
    headers: tuple[tuple[str, str], ...] = ()  # e.g. Retry-After on a 503


class UpdateKind(StrEnum):
    PAUSE = "pause"  # every recorded stream inactive (RFC 7866 §8.1.5), or a control header
    HOLD = "hold"  # some streams inactive: the call is on hold
    RESUME = "resume"
    STOP = "stop"  # no more recording for this call (control header, consent withdrawn)
    METADATA = "metadata"  # new participants (transfer, conference) in a re-INVITE


@dataclass(frozen=True, slots=True)
class CallUpdate:
    kind: UpdateKind
    at: float
    reason: str  # e.g. "a=inactive", "X-Recording-Control: pause", "consent withdrawn"
    participants: tuple[Party, ...] = ()  # METADATA: the parties named by the new metadata


class RecordedCall(Protocol):
    """Handle of one call the engine is recording."""

    @property
    def interaction_id(self) -> str: ...

    @property
    def voice_path(self) -> Path: ...

    @property
    def answered_at(self) -> float | None:
        """Server time (time.time()) that is sample 0 of the voice file."""

    def pause(self, at: float) -> None:
        """From server time ``at`` on, write silence instead of received audio."""

    def resume(self, at: float) -> None:
        """From server time ``at`` on, write received audio again."""

    async def stop(self, at: float) -> None:
        """End the voice file at ``at``; the dialog stays up until BYE, nothing more is written."""

    def media_stats(self) -> dict[str, object]:
        """RTP statistics of every recorded stream, for the interaction's metadata."""


class CallListener(Protocol):
    async def on_call_offered(self, offer: CallOffer) -> CallAccepted | CallRejected: ...

    async def on_offer_withdrawn(self, offer: CallOffer, accepted: CallAccepted, reason: str) -> None:
        """An accepted offer never became a call (CANCEL before the 200, no media port)."""

    async def on_call_answered(self, call: RecordedCall) -> None:
        """Media starts: ACK received (or, for a deferred offer, the first active re-INVITE)."""

    async def on_call_updated(self, call: RecordedCall, update: CallUpdate) -> None:
        """The SIP side paused, held, resumed or stopped the recording, or sent new metadata."""

    async def on_call_ended(self, call: RecordedCall, ended_at: float, reason: str) -> None:
        """BYE (either side), RTP timeout or shutdown. The WAV at ``call.voice_path`` is final,
        padded with silence to ``ended_at`` (or to the stop) so its length equals the call's."""
