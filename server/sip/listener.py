"""The contract between the SIP/RTP engine and the rest of the server.

The engine (``server.sip.service.SipService``) owns sockets, dialogs, RTP and the voice file.
It knows nothing of users, databases or events: it asks a ``CallListener`` (implemented by the
server core) whether to record an offered call and tells it when the call is answered and
ended. The core drives pause/resume through the ``RecordedCall`` handle it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True)
class CallOffer:
    """An INVITE that passed parsing and SDP checks, before it is answered."""

    call_id: str
    dn: str  # Request-URI user part (the DN to record)
    caller: str  # From: display name or user part
    callee: str  # To: user part
    source: tuple[str, int]  # where the INVITE came from
    codec: str  # "PCMU" or "PCMA": the one the answer will use


@dataclass(frozen=True, slots=True)
class CallAccepted:
    interaction_id: str
    voice_path: Path  # where the engine writes the WAV while the call lasts (dir exists)


@dataclass(frozen=True, slots=True)
class CallRejected:
    status: int  # SIP status code, e.g. 404 when no agent is logged in on the DN
    reason: str


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


class CallListener(Protocol):
    async def on_call_offered(self, offer: CallOffer) -> CallAccepted | CallRejected: ...

    async def on_call_answered(self, call: RecordedCall) -> None:
        """ACK received (or 200 sent and media flowing): the call is live."""

    async def on_call_ended(self, call: RecordedCall, ended_at: float, reason: str) -> None:
        """BYE (either side), RTP timeout or shutdown. The WAV at ``call.voice_path`` is final,
        padded with silence to ``ended_at`` so its length equals the call's length."""
