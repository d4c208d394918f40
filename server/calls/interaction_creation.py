"""A call offer made an interaction: its voice directory, its database row and session record
(roles, roster, metadata), its ``LiveCall`` — or the refusal (disk, database) when one cannot be
made; and the offer that names no known party, recorded unassigned or refused by the admin's
policy.

A mixin of ``CallCoordinator`` (it adds to the coordinator's live calls): separate because
creating the interaction's records is one concern, apart from choosing the agent and linking a
second call (``on_call_offered``) and from what happens to the call afterwards.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import logging
import time
import uuid
from dataclasses import asdict
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from server.calls.control import LiveCall
from server.calls.lifecycle import Interaction
from server.calls.offer_policy import assign_roles, numbers_to_try, offer_direction, party_record
from server.calls.repository import CallRepository
from server.calls.session_records import RecordingParty, SessionRecords
from server.diskguard import RETRY_AFTER_SECONDS, DiskGuard
from server.sip.listener import CallAccepted, CallOffer, CallRejected, Party
from tandem_protocol.dn import lookup_key

log = logging.getLogger("server.calls.coordinator")


class InteractionCreation:
    """Offer → interaction (see the module text)."""

    # Set by CallCoordinator.__init__.
    _repo: CallRepository
    _records: SessionRecords
    _live_dir: Path
    _calls: dict[str, LiveCall]
    disk: DiskGuard | None
    unknown_party: collections.Counter[str]

    async def _no_known_party(self, offer: CallOffer) -> CallAccepted | CallRejected:
        """No number of the call is a known DN: logged and counted; recorded as an "unassigned"
        interaction (no agent, admins and compliance see it) when the admin's policy says so,
        else refused with 404 — which the SIP engine stores as a missed recording."""
        numbers = [n for _, n in numbers_to_try(offer)]
        shown = ", ".join(n[:40] for n in numbers[:6]) or "none"
        policy = await asyncio.to_thread(self._records.dn_policy)
        if not policy.record_unassigned:
            self.unknown_party["refused"] += 1
            log.warning("call %s names no known party (numbers: %s): refused", offer.call_id, shown)
            what = (
                "No recording-enabled party in the metadata"
                if offer.siprec
                else "No agent logged in on this DN"
            )
            return CallRejected(404, what)
        self.unknown_party["recorded"] += 1
        log.warning("call %s names no known party (numbers: %s): recorded unassigned", offer.call_id, shown)
        guess = lookup_key(numbers[0]) if numbers else ""
        global_pct = await asyncio.to_thread(self._repo.screen_percentage)
        return await self._accept(
            offer,
            str(uuid.uuid4()),
            None,
            guess[:64],
            None,
            "",
            global_pct,
            False,
            {"unassigned": True, "numbers": numbers[:20]},
            None,
        )

    async def _accept(
        self,
        offer: CallOffer,
        interaction_id: str,
        party: Party | None,
        dn: str,
        agent_id: int | None,
        username: str,
        percentage: float,
        screen: bool,
        extra_meta: dict[str, object],
        parent: str | None,
    ) -> CallAccepted | CallRejected:
        roles = assign_roles(offer, party, dn)
        now = time.time()
        live = Interaction(
            interaction_id=interaction_id,
            call_id=offer.call_id,
            agent_id=agent_id,
            dn=dn,
            caller=roles.caller,
            callee=roles.callee or offer.callee,
            started_at=now,
            screen_decision=screen,
            parent_id=parent,
            direction=offer_direction(offer, party),
            metadata=dict(offer.params),
        )
        voice_dir = self._live_dir / interaction_id
        try:  # first: a disk that cannot take the call's directory cannot take its voice
            voice_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return self._storage_refusal(offer, exc)
        try:
            await asyncio.to_thread(self._repo.create, live, percentage)
        except SQLAlchemyError as exc:  # a locked (or gone) database: the SRC may retry, not a 500
            log.error("call %s refused: the database is busy: %s", offer.call_id, str(exc).splitlines()[0])
            with contextlib.suppress(OSError):
                voice_dir.rmdir()
            return CallRejected(503, "Recorder Database Busy", headers=(("retry-after", "5"),))
        roster = [
            party_record(
                p, "agent" if party is not None and p.participant_id == party.participant_id else "other", now
            )
            for p in offer.participants
        ]
        meta = {
            "streams": [asdict(s) for s in offer.streams],
            "agent_streams": sorted(roles.agent_streams),
            "warnings": list(offer.warnings),
            "params": dict(offer.params),
            "deferred": offer.deferred,
            **extra_meta,
        }
        if parent is not None:
            meta["linked_to"] = parent
            meta["screen"] = "voice only: the screen is recorded with the linked first call"
        await asyncio.to_thread(
            self._records.describe,
            interaction_id,
            kind="siprec" if offer.siprec else "plain",
            session_id=offer.session_id,
            source=f"{offer.source[0]}:{offer.source[1]}",
            participants=roster,
            meta=meta,
            parent_interaction_id=live.parent_id,
        )
        self._calls[interaction_id] = LiveCall(
            live, username, roster=roster, offer=offer, quiet=parent is not None
        )
        log.info(
            "call %s (%s) on DN %s → interaction %s (screen %s%s)",
            offer.call_id,
            "SIPREC" if offer.siprec else "plain",
            dn or "-",
            interaction_id,
            live.screen_decision,
            f", second call linked to {live.parent_id}" if live.parent_id else "",
        )
        return CallAccepted(interaction_id, voice_dir / "voice.wav", roles.agent_streams)

    def _storage_refusal(self, offer: CallOffer, exc: OSError) -> CallRejected:
        """The live directory refused the call's directory: 503 (the SRC retries or fails over),
        not a 500; a full disk (or no inode left) is noted at once, not at the next check."""
        log.error("call %s refused: cannot create its voice directory: %s", offer.call_id, exc)
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        if full and self.disk is not None:
            self.disk.note_enospc(f"live directory {self._live_dir}: {exc.strerror}")
        retry = (("retry-after", str(RETRY_AFTER_SECONDS)),)
        return CallRejected(
            503, "Recorder Disk Full" if full else "Recorder Storage Unavailable", headers=retry
        )

    async def _resolve(self, offer: CallOffer) -> tuple[Party | None, RecordingParty | None]:
        pairs = numbers_to_try(offer)
        found = await asyncio.to_thread(self._records.recording_party, [n for _, n in pairs])
        if found is None:
            return None, None
        party = next((p for p, n in pairs if n == found.number), None)
        return party, found
