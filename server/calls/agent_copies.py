"""When both parties of one SIPREC session are agents (an internal call, a transfer between two
agents' DNs), each gets the recording.

Decision: one recorded voice, **two interactions, two byte-identical files**. The first matched
(or SRC-marked) agent's interaction is recorded as usual; every other participant that is another
agent's DN gets its own interaction (linked to the first, ``parent_interaction_id``), whose voice
is a copy of the finished WAV master, stored by the same protocol with its own SHA-256 — equal
to the original's, which proves the copy unaltered. Two interactions sharing one media row would
break the unique (interaction, kind) rule of ``media_store`` and tie one agent's retention and
access to the other's; a copy keeps each agent's recording, audit trail and visibility (their
team's supervisors) their own. The copy has no screen (each desktop shows its own call) and its
pause spans are the original's, by the same users.

Where the metadata marks the recorded party (``Party.recorded``), only marked parties are
recorded: the SRC said whose recording this is.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path

from server.calls.lifecycle import Interaction
from server.calls.media_jobs import MediaJobs
from server.calls.offer_policy import assign_roles, party_record
from server.calls.repository import CallRepository
from server.calls.session_records import SessionRecords
from server.sip.listener import CallOffer, Party
from tandem_protocol.events import PauseSpanInfo

log = logging.getLogger(__name__)

SpanActors = Mapping[float, tuple[tuple[int | None, str], str]]


class AgentCopies:
    def __init__(
        self, repo: CallRepository, records: SessionRecords, media: MediaJobs, live_dir: Path
    ) -> None:
        self._repo = repo
        self._records = records
        self._media = media
        self._live_dir = live_dir
        self._copies: dict[str, list[Interaction]] = {}  # first interaction id -> copies

    async def offered(
        self, offer: CallOffer, first: Interaction, party: Party | None, percentage: float
    ) -> None:
        """After the first interaction is created: an interaction for every other agent named."""
        if not offer.siprec or party is None:
            return
        marked = any(p.recorded is True for p in offer.participants)
        agents = {first.agent_id}
        for other in offer.participants:
            if other.participant_id == party.participant_id or not other.numbers:
                continue
            if other.recorded is False or (marked and other.recorded is not True):
                continue
            found = await asyncio.to_thread(self._records.recording_party, other.numbers)
            if found is None or found.agent.user_id in agents:
                continue
            agents.add(found.agent.user_id)
            roles = assign_roles(offer, other, found.dn)
            copy = Interaction(
                interaction_id=str(uuid.uuid4()),
                call_id=offer.call_id,
                agent_id=found.agent.user_id,
                dn=found.dn,
                caller=roles.caller,
                callee=roles.callee or offer.callee,
                started_at=first.started_at,
                screen_decision=False,
                parent_id=first.interaction_id,
            )
            try:
                await asyncio.to_thread(self._repo.create, copy, percentage)
                roster = [
                    party_record(
                        p, "agent" if p.participant_id == other.participant_id else "other", first.started_at
                    )
                    for p in offer.participants
                ]
                await asyncio.to_thread(
                    self._records.describe,
                    copy.interaction_id,
                    kind="siprec",
                    session_id=offer.session_id,
                    source=f"{offer.source[0]}:{offer.source[1]}",
                    participants=roster,
                    meta={
                        "copy_of": first.interaction_id,
                        "voice": "a byte-identical copy of the linked interaction's voice (same SHA-256)",
                        "screen": "none: the other agent's call",
                        "full_time": found.full_time,
                    },
                    parent_interaction_id=first.interaction_id,
                )
            except Exception:  # the first agent's recording goes on whatever happens here
                log.exception("call %s: no copy of the recording for DN %s", offer.call_id, found.dn)
                continue
            self._copies.setdefault(first.interaction_id, []).append(copy)
            log.info(
                "call %s: both parties are agents; DN %s gets interaction %s (a copy of %s)",
                offer.call_id,
                found.dn,
                copy.interaction_id,
                first.interaction_id,
            )

    def of(self, first_id: str) -> list[Interaction]:
        return list(self._copies.get(first_id, []))

    async def answered(self, first: Interaction) -> None:
        for copy in self._copies.get(first.interaction_id, []):
            copy.answer(first.answered_at or first.started_at)
            await self._save(copy, None, {})
            await self._audit(
                "recording.start",
                copy,
                f"call {copy.call_id}: {copy.caller} → {copy.callee} (DN {copy.dn}); both parties are "
                f"agents: a copy of {first.interaction_id}",
            )

    async def ended(
        self, first: Interaction, voice_path: Path, voice_started: float, reason: str, actors: SpanActors
    ) -> None:
        """Before the first's voice job moves the master away: each copy gets the same spans and
        end, a byte-identical copy of the WAV, and its own voice job."""
        for copy in self._copies.pop(first.interaction_id, []):
            copy.pauses = [PauseSpanInfo(p.started_at, p.ended_at) for p in first.pauses]
            copy.stopped_at = first.stopped_at
            try:
                copy.end_call(first.ended_at or voice_started, 0.0)
                copy.end_acw(first.ended_at or voice_started)  # no after-call work: not its desktop's call
            except Exception:
                log.exception("interaction %s: copy lifecycle", copy.interaction_id)
            copy.voice = first.voice
            await self._save(copy, reason, actors)
            target = self._live_dir / copy.interaction_id / "voice.wav"
            try:
                await asyncio.to_thread(_copy_file, voice_path, target)
            except OSError as exc:
                log.error("interaction %s: the voice could not be copied: %s", copy.interaction_id, exc)
                await self._audit("recording.failed", copy, f"voice copy failed: {exc}", outcome="failed")
                continue
            await self._audit("recording.end", copy, f"call ended: {reason}")
            self._media.submit_voice(copy.interaction_id, target, voice_started)

    async def withdrawn(self, first_id: str, reason: str, at: float) -> None:
        for copy in self._copies.pop(first_id, []):
            await asyncio.to_thread(self._repo.mark, copy.interaction_id, "done", reason, at)

    async def _save(self, copy: Interaction, reason: str | None, actors: SpanActors) -> None:
        try:
            await asyncio.to_thread(self._repo.save, copy, reason, actors=dict(actors))
        except Exception:
            log.exception("interaction %s: state of the copy not saved", copy.interaction_id)

    async def _audit(self, action: str, copy: Interaction, detail: str, outcome: str = "allowed") -> None:
        try:
            await asyncio.to_thread(self._records.audit, action, copy.interaction_id, detail, outcome=outcome)
        except Exception:
            log.exception("audit %s for %s failed", action, copy.interaction_id)


def _copy_file(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
