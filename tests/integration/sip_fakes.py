"""A stand-in for the server core on the SIP engine's listener contract, shared by the SIP tests."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from server.sip.listener import CallAccepted, CallOffer, CallRejected, CallUpdate, RecordedCall


class FakeListener:
    """Records DN 1001 into ``voice_dir`` (after ``answer_delay`` s); every other DN gets 404."""

    def __init__(self, voice_dir: Path, answer_delay: float = 0.0) -> None:
        self.voice_dir = voice_dir
        self.answer_delay = answer_delay
        self.offered: list[CallOffer] = []
        self.answered: list[RecordedCall] = []
        self.ended: list[tuple[RecordedCall, float, str]] = []
        self.withdrawn: list[tuple[CallOffer, CallAccepted, str]] = []
        self.updates: list[tuple[RecordedCall, CallUpdate]] = []
        self.ended_event = asyncio.Event()

    async def on_call_offered(self, offer: CallOffer) -> CallAccepted | CallRejected:
        self.offered.append(offer)
        if self.answer_delay:
            await asyncio.sleep(self.answer_delay)
        if offer.dn != "1001":
            return CallRejected(404, "No agent on DN")
        iid = uuid.uuid4().hex
        return CallAccepted(iid, self.voice_dir / f"{iid}.wav")

    async def on_call_answered(self, call: RecordedCall) -> None:
        self.answered.append(call)

    async def on_call_ended(self, call: RecordedCall, ended_at: float, reason: str) -> None:
        self.ended.append((call, ended_at, reason))
        self.ended_event.set()

    async def on_offer_withdrawn(self, offer: CallOffer, accepted: CallAccepted, reason: str) -> None:
        self.withdrawn.append((offer, accepted, reason))

    async def on_call_updated(self, call: RecordedCall, update: CallUpdate) -> None:
        self.updates.append((call, update))
