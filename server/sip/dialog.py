"""One recorded call: the SIP dialog state the UAS keeps and the ``RecordedCall`` handle given to
the listener. Media is reached through the ``MediaSession`` protocol, which
``server.rtp.session.RtpSession`` implements; tests may plug in another implementation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from server.sip.message import SipRequest


class MediaSession(Protocol):
    port: int
    last_packet_at: float | None

    def start(self, answered_at: float) -> None: ...
    def pause(self, at: float) -> None: ...
    def resume(self, at: float) -> None: ...
    async def close(self, ended_at: float) -> None: ...


# (bind_host, port_range, voice_path, codec) -> session
MediaFactory = Callable[[str, tuple[int, int], Path, str], Awaitable[MediaSession]]


async def rtp_session_factory(
    bind_host: str, port_range: tuple[int, int], voice_path: Path, codec: str
) -> MediaSession:
    """The production factory: ``server.rtp.session.RtpSession.open``."""
    from server.rtp.session import RtpSession  # deferred: the SIP layer must not need numpy/PyAV

    session: MediaSession = await RtpSession.open(bind_host, port_range, voice_path, codec)
    return session


@dataclass(eq=False)
class Call:
    """Dialog + recording state. ``state``: answering → answered (ACK seen) → ended."""

    call_id: str
    local_tag: str
    remote_tag: str | None
    invite: SipRequest
    source: tuple[str, int]
    interaction_id: str
    voice_path: Path
    media: MediaSession
    answer_sdp: bytes = b""
    final_response: bytes = b""
    answered_at: float | None = None
    state: str = "answering"
    local_cseq: int = 1
    retransmit_task: asyncio.Task[None] | None = field(default=None, repr=False)
    end_reason: str | None = None

    def pause(self, at: float) -> None:
        self.media.pause(at)

    def resume(self, at: float) -> None:
        self.media.resume(at)

    @property
    def ended(self) -> bool:
        return self.state == "ended"
