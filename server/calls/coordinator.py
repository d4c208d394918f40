"""Ties a recorded call together: SIP engine ⇄ interaction lifecycle ⇄ database ⇄ agent channel.

Implements ``CallListener`` for the SIP engine and the agent's call actions for the API. All of
it runs on the event loop; database work goes to threads. Pause and resume wait for the
recorder's acknowledgement so the desktop shows "paused" only once voice AND screen are paused.
A pause from the desktop and one from the SIP side (``a=inactive``, hold, a control header) go
through the same transitions; overlapping reasons are counted so that lifting one (the SRC's
resume) never lifts another (the agent's secure pause). Every session start, update, pause,
resume, stop and end is published on the agent's channel and written to the audit log. The
agent's actions (pause, resume, stop, Done, screen reports) are the ``AgentActions`` mixin
(``server.calls.agent_actions``); making the interaction of an accepted offer is the
``InteractionCreation`` mixin (``server.calls.interaction_creation``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from server.calls.agent_actions import AgentActions
from server.calls.agent_copies import AgentCopies
from server.calls.control import SIP, LiveCall, RecordingControl
from server.calls.interaction_creation import InteractionCreation
from server.calls.media_jobs import MediaJobs
from server.calls.offer_policy import merge_parties
from server.calls.recorder_link import RecorderLink
from server.calls.recovery import interrupted_call_bye, recover_interrupted
from server.calls.repository import CallRepository
from server.calls.session_records import SessionRecords
from server.calls.voice_failure import VoiceFailures
from server.diskguard import RETRY_AFTER_SECONDS, DiskGuard
from server.errors import CallActionError, LifecycleError
from server.events.hub import EventHub
from server.policy.sampling import effective_percentage
from server.policy.screen_quota import ScreenQuota
from server.sip.listener import (
    CallAccepted,
    CallOffer,
    CallRejected,
    CallUpdate,
    RecordedCall,
    UpdateKind,
)
from server.store.audit_queue import WriteBacklog
from tandem_protocol.events import EventType, Phase, ScreenState

log = logging.getLogger(__name__)
DRAIN_RETRY_AFTER = 30  # seconds an SRC refused during a restart is asked to wait


class CallCoordinator(InteractionCreation, AgentActions):
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
        acw_limit_now: Callable[[], float] | None = None,
        pause_max_now: Callable[[], float | None] | None = None,
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
        # The admin's current limit (a stored setting); without one, the fixed ``acw_limit``.
        self._acw_limit_now = acw_limit_now
        self._pause_max_now = pause_max_now  # the admin's maximum pause length (None: no limit)
        self._screen_quota = ScreenQuota()  # per team: its share holds over every 20 calls
        self._control = RecordingControl(
            repo, records, hub, screen_fps=screen_fps, confirm_timeout=confirm_timeout, backlog=backlog
        )
        self.backlog = self._control.backlog
        self._calls: dict[str, LiveCall] = {}
        self.voice_failures = VoiceFailures(self._calls, self._control, disk)
        self._copies = AgentCopies(repo, records, media, live_dir)  # both parties are agents
        self._current: dict[int, str] = {}  # agent id -> interaction id shown on his desktop
        self.recorders = RecorderLink(hub, self._control, self._calls, self._current)
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
        screen = parent is None and self._screen_quota.decide(agent.team_id, percentage)
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
            start_screen = live.state.answer(at, self.recorders.connected(live.state.agent_id))
            await self._control.save(live)
            self._control.publish(live, EventType.CALL_STARTED)
            if start_screen:
                self._control.command(live, EventType.SCREEN_START, at)
        if live.state.screen is ScreenState.NO_RECORDER:
            await self.recorders.screen_unavailable(live)
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
        acw_limit = self._acw_limit
        if self._acw_limit_now is not None:
            acw_limit = await asyncio.to_thread(self._acw_limit_now)
        async with live.lock:
            with contextlib.suppress(LifecycleError):
                resume_screen = live.state.end_call(ended_at, acw_limit)
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
        self.recorders.close()
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
