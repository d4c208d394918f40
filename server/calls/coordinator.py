"""Ties a recorded call together: SIP engine ⇄ interaction lifecycle ⇄ database ⇄ agent channel.

Implements ``CallListener`` for the SIP engine and the agent's call actions for the API. All of
it runs on the event loop; database work goes to threads. Pause and resume wait for the
recorder's acknowledgement so the desktop shows "paused" only once voice AND screen are paused.
A pause from the desktop and one from the SIP side (``a=inactive``, hold, a control header) go
through the same transitions; overlapping reasons are counted so that lifting one (the SRC's
resume) never lifts another (the agent's secure pause). Every session start, update, pause,
resume, stop and end is published on the agent's channel and written to the audit log.
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

from server.calls.agent_copies import AgentCopies
from server.calls.control import SIP, LiveCall, RecordingControl
from server.calls.lifecycle import Interaction
from server.calls.media_jobs import MediaJobs
from server.calls.offer_policy import assign_roles, merge_parties, numbers_to_try, party_record
from server.calls.recovery import interrupted_call_bye, recover_interrupted
from server.calls.repository import CallRepository
from server.calls.session_records import RecordingParty, SessionRecords
from server.calls.voice_failure import VoiceFailures
from server.diskguard import RETRY_AFTER_SECONDS, DiskGuard
from server.errors import CallActionError, LifecycleError
from server.events.hub import EventHub
from server.policy.sampling import decide_screen, effective_percentage
from server.sip.listener import (
    CallAccepted,
    CallOffer,
    CallRejected,
    CallUpdate,
    Party,
    RecordedCall,
    UpdateKind,
)
from server.store.audit_queue import WriteBacklog
from tandem_protocol.dn import lookup_key
from tandem_protocol.events import CallInfo, EventType, Phase, ScreenState, ScreenStatus

log = logging.getLogger(__name__)
DRAIN_RETRY_AFTER = 30  # seconds an SRC refused during a restart is asked to wait


class CallCoordinator:
    def __init__(
        self,
        repo: CallRepository,
        hub: EventHub,
        media: MediaJobs,
        records: SessionRecords,
        *,
        hold_suppression: bool = True,
        live_dir: Path,
        screen_fps: float,
        acw_limit: float,
        confirm_timeout: float,
        backlog: WriteBacklog | None = None,
        disk: DiskGuard | None = None,
    ) -> None:
        self._repo = repo
        self.disk = disk
        self._draining = False
        self._media = media
        self._records = records
        self._hold_suppression = hold_suppression
        self._live_dir = live_dir
        self._acw_limit = acw_limit
        self._control = RecordingControl(
            repo, records, hub, screen_fps=screen_fps, confirm_timeout=confirm_timeout, backlog=backlog
        )
        self.backlog = self._control.backlog
        self._calls: dict[str, LiveCall] = {}
        self.voice_failures = VoiceFailures(self._calls, self._control, disk)
        self._copies = AgentCopies(repo, records, media, live_dir)  # both parties are agents
        self._current: dict[int, str] = {}  # agent id -> interaction id shown on his desktop
        # Calls that named no known party, by what became of them (logged each time as well).
        self.unknown_party: collections.Counter[str] = collections.Counter()

    # -- CallListener ----------------------------------------------------------------------
    async def on_call_offered(self, offer: CallOffer) -> CallAccepted | CallRejected:
        if offer.consent_declined:
            await self._control.audit(
                "recording.declined",
                "",
                f"call {offer.call_id} from {offer.source[0]}: the caller declined recording consent",
            )
            return CallRejected(603, "Caller Declined Recording")
        if self._draining:  # a graceful restart: the SRC retries later, or elsewhere
            return CallRejected(
                503, "Recorder Restarting", headers=(("retry-after", str(DRAIN_RETRY_AFTER)),)
            )
        if self.disk is not None and not self.disk.ok:  # refuse before the disk is full
            return CallRejected(
                503, "Recorder Disk Space Low", headers=(("retry-after", str(RETRY_AFTER_SECONDS)),)
            )
        party, found = await self._resolve(offer)
        if found is None:
            return await self._no_known_party(offer)
        agent = found.agent
        interaction_id = str(uuid.uuid4())
        # One call per agent, decided with no await between the look and the claim: of two
        # INVITEs for one DN arriving together exactly one becomes the desktop's call, the other
        # its linked second call. A call whose BYE has come in (its file still closing) no
        # longer holds the DN: the next INVITE is the agent's call, never a 486 or a link.
        claimed = self._current.get(agent.user_id)
        previous = self._calls.get(claimed or "")
        parent: str | None = None
        if claimed is not None and previous is None:
            parent = claimed  # claimed by an offer still being set up: it rings
        elif previous is not None and previous.state.phase in (Phase.RINGING, Phase.ACTIVE):
            if not _hanging_up(previous):
                parent = previous.interaction_id
        if parent is None:
            self._current[agent.user_id] = interaction_id
        if previous is not None and parent is None and previous.state.phase is Phase.ACW:
            await self._end_acw(previous, time.time(), "next call")
        global_pct = await asyncio.to_thread(self._repo.screen_percentage)
        percentage = effective_percentage(global_pct, agent.team_percentage)
        # A second simultaneous call is voice-only: there is one screen, and it stays with the
        # first call (the recorder captures one interaction at a time).
        screen = parent is None and decide_screen(interaction_id, percentage)
        accepted = await self._accept(
            offer,
            interaction_id,
            party,
            found.dn,
            agent.user_id,
            agent.username,
            percentage,
            screen,
            {"full_time": found.full_time},
            parent,
        )
        if isinstance(accepted, CallRejected):
            if self._current.get(agent.user_id) == interaction_id:
                del self._current[agent.user_id]
        else:
            await self._copies.offered(offer, self._calls[interaction_id].state, party, percentage)
        return accepted

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

    async def on_offer_withdrawn(self, offer: CallOffer, accepted: CallAccepted, reason: str) -> None:
        live = self._calls.get(accepted.interaction_id)
        if live is None:
            return
        now = time.time()
        await asyncio.to_thread(self._repo.mark, live.interaction_id, "done", reason, now)
        await self._copies.withdrawn(live.interaction_id, reason, now)
        await self._control.audit("recording.cancelled", live.interaction_id, reason)
        self._forget(live)
        with contextlib.suppress(OSError):
            accepted.voice_path.unlink(missing_ok=True)
            accepted.voice_path.parent.rmdir()
        log.info("interaction %s withdrawn: %s", live.interaction_id, reason)

    async def on_call_updated(self, call: RecordedCall, update: CallUpdate) -> None:
        live = self._calls.get(call.interaction_id)
        if live is None:
            return
        detail = f"{update.kind.value}: {update.reason}"
        try:
            if update.kind is UpdateKind.PAUSE:
                await self._control.pause(live, update.at, "sip", SIP, detail)
            elif update.kind is UpdateKind.HOLD:
                if self._hold_suppression:
                    await self._control.pause(live, update.at, "hold", SIP, detail)
                else:
                    await self._control.resume(live, update.at, ("sip",), detail)
            elif update.kind is UpdateKind.RESUME:
                await self._control.resume(live, update.at, ("sip", "hold"), detail)
            elif update.kind is UpdateKind.STOP:
                await self._control.stop(live, update.at, SIP, detail)
            else:
                await self._metadata(live, update)
        except CallActionError as exc:
            log.warning(
                "interaction %s: SIP-side %s not applied (%s): %s",
                live.interaction_id,
                update.kind,
                live.state.phase,
                exc,
            )

    async def _metadata(self, live: LiveCall, update: CallUpdate) -> None:
        """A transfer or conference: keep the roster; stop once no recording-enabled party is left."""
        enabled = []
        for party in update.participants:
            if await asyncio.to_thread(self._records.recording_party, party.numbers):
                enabled.append(party.participant_id)
        live.roster = merge_parties(
            live.roster,
            update.participants,
            update.at,
            lambda p: "agent" if p.participant_id in enabled else "other",
        )
        await asyncio.to_thread(self._records.update_meta, live.interaction_id, participants=live.roster)
        names = ", ".join(p.display() for p in update.participants)
        await self._control.audit("recording.update", live.interaction_id, f"participants now: {names}")
        self._control.publish(live, EventType.CALL_UPDATED)
        # Only a complete list (two or more parties) can say the recorded party has left; an
        # unassigned call named nobody known from the start, so a list without one changes nothing.
        if len(update.participants) >= 2 and not enabled and live.state.agent_id is not None:
            await self._control.stop(
                live, update.at, SIP, "no recording-enabled party remains after a transfer"
            )

    async def on_call_answered(self, call: RecordedCall) -> None:
        live = self._calls.get(call.interaction_id)
        if live is None:
            return
        async with live.lock:
            live.handle = call
            at = call.answered_at or time.time()
            start_screen = live.state.answer(at)
            await self._control.save(live)
            self._control.publish(live, EventType.CALL_STARTED)
            if start_screen:
                self._control.command(live, EventType.SCREEN_START, at)
        await self._copies.answered(live.state)
        linked = (
            f"; the agent's second call, linked to {live.state.parent_id}" if live.state.parent_id else ""
        )
        unassigned = "; names no known party: unassigned" if live.state.agent_id is None else ""
        await self._control.audit(
            "recording.start",
            live.interaction_id,
            f"call {live.state.call_id}: {live.state.caller} → {live.state.callee} (DN {live.state.dn})"
            + linked
            + unassigned,
        )

    async def on_call_ended(self, call: RecordedCall, ended_at: float, reason: str) -> None:
        live = self._calls.get(call.interaction_id)
        if live is None:
            return
        stored_reason = live.voice_failure or reason  # the true end of the recording, not "bye"
        async with live.lock:
            with contextlib.suppress(LifecycleError):
                resume_screen = live.state.end_call(ended_at, self._acw_limit)
                await self._control.save(live, stored_reason)
                if resume_screen:
                    self._control.command(live, EventType.SCREEN_RESUME, ended_at)
                self._control.publish(live, EventType.CALL_ENDED)
                live.acw_timer = asyncio.create_task(self._acw_limit_timer(live))
        for child in self._children(live):  # the secure pause of an ended call covers them no more
            with contextlib.suppress(CallActionError):
                await self._control.resume(
                    child, ended_at, ("agent",), "the first call ended: its pause lifted"
                )
        await asyncio.to_thread(
            self._records.update_meta,
            live.interaction_id,
            patch={"rtp": call.media_stats(), "end_reason": stored_reason, "call_end": reason},
        )
        await self._control.audit("recording.end", live.interaction_id, f"call ended: {reason}")
        voice_started = call.answered_at or live.state.started_at
        await self._copies.ended(live.state, call.voice_path, voice_started, stored_reason, live.span_actors)
        self._media.submit_voice(live.state.interaction_id, call.voice_path, voice_started)
        if not self._on_desktop(live):
            # No after-call work for a call the desktop does not show: an unassigned call, an
            # agent's second call, or one whose agent's next call already came in.
            await self._end_acw(live, time.time(), "not the desktop's call")

    def _on_desktop(self, live: LiveCall) -> bool:
        agent_id = live.state.agent_id
        return agent_id is not None and self._current.get(agent_id) == live.interaction_id

    # -- agent actions ---------------------------------------------------------------------
    def current_call(self, agent_id: int) -> CallInfo | None:
        live = self._calls.get(self._current.get(agent_id, ""))
        if live is None or live.state.phase is Phase.DONE:
            return None
        return live.state.to_info()

    async def pause(self, interaction_id: str, agent_id: int, username: str) -> CallInfo:
        live = self._own_call(interaction_id, agent_id)
        at = time.time()
        # The secure pause covers the agent's second call too (a card number read out during a
        # consultation must not be on that recording either); its voice pauses at once.
        for child in self._children(live):
            with contextlib.suppress(CallActionError):
                await self._control.pause(
                    child, at, "agent", (agent_id, username), "secure pause (first call)"
                )
        return await self._control.pause(live, at, "agent", (agent_id, username), "secure pause", strict=True)

    async def resume(self, interaction_id: str, agent_id: int, username: str = "") -> CallInfo:
        live = self._own_call(interaction_id, agent_id)
        at = time.time()
        actor = (agent_id, username or live.agent_username)
        info = await self._control.resume(live, at, ("agent",), "agent resumed", strict=True, actor=actor)
        for child in self._children(live):
            with contextlib.suppress(CallActionError):
                await self._control.resume(child, at, ("agent",), "agent resumed (first call)", actor=actor)
        return info

    def _children(self, live: LiveCall) -> list[LiveCall]:
        """The agent's live second calls linked to ``live``."""
        return [
            c
            for c in self._calls.values()
            if c.state.parent_id == live.interaction_id and c.state.phase is Phase.ACTIVE
        ]

    async def stop(self, interaction_id: str, agent_id: int, username: str) -> CallInfo:
        live = self._own_call(interaction_id, agent_id)
        return await self._control.stop(
            live, time.time(), (agent_id, username), "agent stopped the recording"
        )

    async def done(self, interaction_id: str, agent_id: int) -> CallInfo:
        live = self._own_call(interaction_id, agent_id)
        if live.state.phase is Phase.DONE:
            return live.state.to_info()
        if live.state.phase is not Phase.ACW:
            raise CallActionError(409, "not_in_acw", "the call is still active; Done is for after-call work")
        await self._end_acw(live, time.time(), "done")
        return live.state.to_info()

    async def screen_status(self, agent_id: int, status: ScreenStatus) -> None:
        live = self._calls.get(status.interaction_id)
        if live is None or live.state.agent_id != agent_id:
            log.info("screen.status for unknown/foreign interaction %s ignored", status.interaction_id)
            return
        live.state.screen_reported(status.state)
        # Acknowledged before the database write: a busy database must not turn the recorder's
        # confirmed pause into a 504 (the state is written with the call's next save anyway).
        self._control.screen_acknowledged(status.interaction_id, status.state)
        await self._control.save(live)
        if status.state in (ScreenState.STOPPED, ScreenState.FAILED):
            self._control.publish(live, EventType.CALL_UPDATED)

    async def screen_uploaded(self, interaction_id: str) -> None:
        live = self._calls.get(interaction_id)
        if live is not None:
            live.state.screen_uploaded()
            self._control.publish(live, EventType.CALL_UPDATED)
            if live.state.phase is Phase.DONE:
                self._forget(live)
        self._media.submit_mux(interaction_id)

    # -- lifecycle helpers -----------------------------------------------------------------
    async def _end_acw(self, live: LiveCall, at: float, reason: str) -> None:
        async with live.lock:
            try:
                stop_screen = live.state.end_acw(at)
            except LifecycleError:
                return
            if live.acw_timer is not None and live.acw_timer is not asyncio.current_task():
                live.acw_timer.cancel()
            await self._control.save(live)
            self._control.publish(live, EventType.ACW_ENDED)
            if stop_screen:
                self._control.command(live, EventType.SCREEN_STOP, at)
            else:
                self._forget(live)
            log.info("interaction %s: after-call work ended (%s)", live.state.interaction_id, reason)

    async def _acw_limit_timer(self, live: LiveCall) -> None:
        deadline = live.state.acw_deadline or time.time()
        await asyncio.sleep(max(0.0, deadline - time.time()))
        await self._end_acw(live, time.time(), "ACW limit")

    def _own_call(self, interaction_id: str, agent_id: int) -> LiveCall:
        live = self._calls.get(interaction_id)
        if live is None:
            raise CallActionError(404, "unknown_interaction", "no live call with that id")
        if live.state.agent_id != agent_id:
            raise CallActionError(403, "forbidden", "that call belongs to another agent")
        return live

    def _forget(self, live: LiveCall) -> None:
        self._calls.pop(live.state.interaction_id, None)
        agent_id = live.state.agent_id
        if agent_id is not None and self._current.get(agent_id) == live.state.interaction_id:
            del self._current[agent_id]

    # -- faults: a voice that can no longer be recorded ------------------------------------
    def media_lost(self, voice_path: Path, error: str, at: float) -> None:
        """The RTP worker pool's report: the worker carrying this call died (``VoiceFailures``)."""
        self.voice_failures.media_lost(voice_path, error, at)

    async def watch_media(self) -> None:
        await self.voice_failures.watch()

    async def audit_server_event(self, action: str, detail: str, outcome: str = "allowed") -> None:
        """An audit record about the server itself (disk low, disk back), for admins."""
        await self._control.audit(action, "", detail, outcome=outcome)

    # -- graceful restart ------------------------------------------------------------------
    def start_drain(self) -> None:
        """Refuse new calls from now on (may be called from a signal handler: only a flag)."""
        self._draining = True

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def calls_in_progress(self) -> int:
        return sum(live.state.phase in (Phase.RINGING, Phase.ACTIVE) for live in self._calls.values())

    # -- start-up and shutdown -------------------------------------------------------------
    async def recover(self) -> None:
        await recover_interrupted(self._repo, self._media, self._live_dir)

    async def on_stray_bye(self, call_id: str) -> bool:
        """Asked by the UAS for a BYE with no dialog: 200 for a call a restart interrupted."""
        return await interrupted_call_bye(self._repo, self._control, call_id)

    async def shutdown(self) -> None:
        self._control.close()
        for live in list(self._calls.values()):
            if live.acw_timer is not None:
                live.acw_timer.cancel()
        await self.voice_failures.stop()
        if not await self.backlog.flush(5.0):
            log.error("%d database writes still queued at shutdown are lost", self.backlog.pending)


def _hanging_up(live: LiveCall) -> bool:
    """The SIP side has the call's BYE (its file is being closed; ``on_call_ended`` follows):
    the dialog's state, read off the handle the engine gave (``None`` before the answer)."""
    return getattr(live.handle, "state", None) in ("ending", "ended")
