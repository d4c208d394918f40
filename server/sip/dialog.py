"""One recorded call: the SIP dialog state the UAS keeps and the ``RecordedCall`` handle given to
the listener. Media is reached through the ``MediaSession`` protocol of
``server.callmedia.session``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from server.callmedia.media import open_call_media
from server.callmedia.plan import MediaPlan
from server.callmedia.session import MediaSession
from server.sip.message import SipRequest

# (bind_host, port_range, voice_path, plan) -> session
MediaFactory = Callable[[str, tuple[int, int], Path, MediaPlan], Awaitable[MediaSession]]


async def rtp_session_factory(
    bind_host: str, port_range: tuple[int, int], voice_path: Path, plan: MediaPlan
) -> MediaSession:
    """The production factory: one ``RtpSession`` per planned stream."""
    session: MediaSession = await open_call_media(bind_host, port_range, voice_path, plan)
    return session


MAX_INVITE_CSEQS = 32  # INVITE CSeq numbers a dialog remembers for matching ACKs


class MediaState(StrEnum):
    """What the SIP side says of the media, from the last offer (re-INVITE/UPDATE)."""

    ACTIVE = "active"
    PAUSED = "paused"  # every recorded stream inactive (or c=0.0.0.0)
    HOLD = "hold"  # some recorded streams inactive


@dataclass(eq=False)
class Call:
    """Dialog + recording state. ``state``: answering → answered (ACK seen) → ending → ended.

    ``media_started`` is False while a deferred offer (every stream inactive) waits for its
    first active re-INVITE; ``stopped_at`` is set once recording stopped for the rest of the call.
    """

    call_id: str
    local_tag: str
    remote_tag: str | None
    invite: SipRequest
    source: tuple[str, int]
    interaction_id: str
    voice_path: Path
    media: MediaSession
    plan: MediaPlan
    siprec: bool = False
    answer_sdp: bytes = b""
    final_response: bytes = b""
    answered_at: float | None = None
    media_started: bool = False
    media_state: MediaState = MediaState.ACTIVE
    active_since: float | None = None  # when media last became active (RTP timeout baseline)
    stopped_at: float | None = None
    state: str = "answering"
    local_cseq: int = 1
    remote_cseq: int = 0
    reinvite_response: bytes = b""  # 2xx to a re-INVITE, resent until its ACK
    reinvite_cseq: int | None = None
    # CSeq numbers of the peer's INVITEs in this dialog (newest last, bounded): an ACK that names
    # one of them is for that INVITE; an ACK naming none is a deviation (see uas.on_ack).
    invite_cseqs: list[int] = field(default_factory=list)
    retransmit_task: asyncio.Task[None] | None = field(default=None, repr=False)
    end_reason: str | None = None
    ended_event: asyncio.Event = field(default_factory=asyncio.Event, repr=False)  # set once "ended"

    def note_invite(self, cseq: int) -> None:
        if cseq in self.invite_cseqs:
            return
        self.invite_cseqs.append(cseq)
        del self.invite_cseqs[:-MAX_INVITE_CSEQS]

    def pause(self, at: float) -> None:
        if self.stopped_at is None:
            self.media.pause(at)

    def resume(self, at: float) -> None:
        if self.stopped_at is None:
            self.media.resume(at)

    async def stop(self, at: float) -> None:
        if self.stopped_at is not None:
            return
        self.stopped_at = at
        await self.media.close(at)

    def media_stats(self) -> dict[str, object]:
        return self.media.stats()

    @property
    def ended(self) -> bool:
        return self.state == "ended"
