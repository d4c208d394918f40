"""Database side of recorded calls. Synchronous; the coordinator runs it in worker threads so the
event loop that carries SIP and RTP never waits on the database."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from server.calls.lifecycle import Interaction
from server.calls.media_store import MediaStore
from server.media.segment_join import SegmentRef, order_segments
from server.policy.voice_formats import VOICE_FORMATS_KEY, parse_stored
from server.store import models
from server.store.db import session_scope
from server.store.storage import Storage, sha256_file
from tandem_protocol import dn as dn_rules

SCREEN_PERCENTAGE_KEY = "screen_percentage"
AUTO_PAUSE_SLACK = 5.0  # seconds an auto-pause may start outside its interaction (clock offset)


@dataclass(frozen=True, slots=True)
class BoundAgent:
    user_id: int
    username: str
    team_id: int | None
    team_percentage: float | None


@dataclass(frozen=True, slots=True)
class StoredMedia:
    kind: str
    key: str
    started_at: float


class CallRepository:
    def __init__(self, factory: sessionmaker[Session], storage: Storage, default_percentage: float) -> None:
        self._factory = factory
        self._storage = storage
        self._default_percentage = default_percentage
        self.media_store = MediaStore(factory, storage)

    # -- policy ----------------------------------------------------------------------------
    def screen_percentage(self) -> float:
        with session_scope(self._factory) as s:
            row = s.get(models.Setting, SCREEN_PERCENTAGE_KEY)
            return float(json.loads(row.value)) if row else self._default_percentage

    def voice_formats(self) -> list[str]:
        """Formats a finished call's voice is encoded into, besides the WAV master."""
        with session_scope(self._factory) as s:
            row = s.get(models.Setting, VOICE_FORMATS_KEY)
            return parse_stored(row.value if row else None)

    def agent_on_dn(self, dn: str) -> BoundAgent | None:
        with session_scope(self._factory) as s:
            row = s.execute(
                select(models.User, models.Team)
                .join(models.DnBinding, models.DnBinding.user_id == models.User.id)
                .outerjoin(models.Team, models.Team.id == models.User.team_id)
                .where(models.DnBinding.dn == dn_rules.lookup_key(dn), models.DnBinding.released_at.is_(None))
                .order_by(models.DnBinding.bound_at.desc())
            ).first()
            if row is None:
                return None
            user, team = row
            return BoundAgent(user.id, user.username, user.team_id, team.screen_percentage if team else None)

    # -- interactions ----------------------------------------------------------------------
    def create(self, live: Interaction, percentage: float) -> None:
        with session_scope(self._factory) as s:
            s.add(
                models.Interaction(
                    id=live.interaction_id,
                    call_id=live.call_id,
                    dn=live.dn,
                    agent_id=live.agent_id,
                    caller=live.caller,
                    callee=live.callee,
                    state=live.phase.value,
                    started_at=live.started_at,
                    screen_decision=live.screen_decision,
                    screen_percentage=percentage,
                    voice_state=live.voice.value,
                    screen_state=live.screen.value,
                    direction=live.direction,
                )
            )

    def save(
        self,
        live: Interaction,
        end_reason: str | None = None,
        by: tuple[int | None, str] | None = None,
        pause_reason: str = "",
        actors: Mapping[float, tuple[tuple[int | None, str], str]] | None = None,
    ) -> None:
        """Persist the live state, including pause spans (who paused is ``by``, and why).

        ``actors`` (span start rounded to µs -> (who, why)) names who paused each span: a span is
        first stored by whichever save runs first — not always the pause's own, when the database
        was busy — and must still carry its user."""
        with session_scope(self._factory) as s:
            row = s.get(models.Interaction, live.interaction_id)
            if row is None:
                return
            row.state = live.phase.value
            row.answered_at = live.answered_at
            row.ended_at = live.ended_at
            row.acw_ended_at = live.acw_ended_at
            row.voice_state = live.voice.value
            row.screen_state = live.screen.value
            row.stopped_at = live.stopped_at
            if end_reason is not None:
                row.end_reason = end_reason
            existing = {round(p.started_at, 6): p for p in row.pauses}
            for span in live.pauses:
                stored = existing.get(round(span.started_at, 6))
                if stored is None:
                    who, why = (actors or {}).get(round(span.started_at, 6), (by, pause_reason))
                    s.add(
                        models.PauseSpan(
                            interaction_id=row.id,
                            started_at=span.started_at,
                            ended_at=span.ended_at,
                            by_user_id=who[0] if who else None,
                            by_username=who[1] if who else "",
                            reason=why,
                        )
                    )
                else:
                    stored.ended_at = span.ended_at

    def set_screen_state(self, interaction_id: str, state: str) -> None:
        with session_scope(self._factory) as s:
            row = s.get(models.Interaction, interaction_id)
            if row is not None:
                row.screen_state = state

    # -- media -----------------------------------------------------------------------------
    def store_media(
        self,
        interaction_id: str,
        kind: str,
        source: Path,
        name: str,
        content_type: str,
        started_at: float,
        duration: float | None,
        sha256: str | None = None,
    ) -> StoredMedia:
        """Move a finished file into storage and record it. The file is gone from ``source``.

        Evidence (voice, screen) already stored raises ``MediaExistsError``: it is never replaced.
        Derived files (muxed, voice:<format>) are regenerated from evidence and may replace the
        earlier copy. See server/calls/media_store.py for the claim/put/complete protocol."""
        digest = sha256 or sha256_file(source)
        claim = self.media_store.store(
            interaction_id, kind, source, name, content_type, started_at, duration, digest
        )
        return StoredMedia(kind, claim.key, started_at)

    def recover_pending_media(self) -> tuple[int, int]:
        """Start-up: finish or roll back media a crash left half stored."""
        return self.media_store.recover_pending()

    def media(self, interaction_id: str) -> dict[str, StoredMedia]:
        with session_scope(self._factory) as s:
            rows = s.execute(
                select(models.MediaFile).where(
                    models.MediaFile.interaction_id == interaction_id, models.MediaFile.state == "complete"
                )
            ).scalars()
            return {m.kind: StoredMedia(m.kind, m.storage_key, m.started_at) for m in rows}

    def pause_spans(self, interaction_id: str) -> list[tuple[float, float | None]]:
        with session_scope(self._factory) as s:
            rows = s.execute(
                select(models.PauseSpan)
                .where(models.PauseSpan.interaction_id == interaction_id)
                .order_by(models.PauseSpan.started_at)
            ).scalars()
            return [(p.started_at, p.ended_at) for p in rows]

    def screen_segments(self, interaction_id: str) -> list[SegmentRef]:
        """The interaction's stored screen segments, in server-time order."""
        with session_scope(self._factory) as s:
            rows = s.execute(
                select(models.ScreenSegment).where(models.ScreenSegment.interaction_id == interaction_id)
            ).scalars()
            return order_segments(
                SegmentRef(
                    r.storage_key, r.run, r.seq, r.sha256, r.started_at, r.first_frame_at, r.last_frame_at
                )
                for r in rows
            )

    def interaction_over(self, interaction_id: str) -> bool:
        """Done or interrupted: its screen gets no new frames, only late uploads."""
        with session_scope(self._factory) as s:
            row = s.get(models.Interaction, interaction_id)
            return row is not None and row.state in ("done", "interrupted")

    def segments_after(self, mark: int | None) -> tuple[int, set[str]]:
        """The highest segment row id and the interactions of segments stored after ``mark`` (a
        row id; ``None``: none, only the current highest id — where a sweep starts)."""
        seg = models.ScreenSegment
        with session_scope(self._factory) as s:
            if mark is None:
                return int(s.execute(select(func.max(seg.id))).scalar() or 0), set()
            rows = s.execute(select(seg.id, seg.interaction_id).where(seg.id > mark)).all()
            return max((r[0] for r in rows), default=mark), {r[1] for r in rows}

    def screen_mux_due(
        self, now: float, quiet: float, horizon: float, also: Sequence[str] = ()
    ) -> list[tuple[str, int, int]]:
        """Interactions with screen segments that are over (done or interrupted; started within
        ``horizon`` s, or named in ``also``) and quiet for ``quiet`` s: Done, the last stored
        segment and the last upload activity all that long ago. Returns (id, number of segments,
        highest segment row id) — the pair changes when a segment is added. Correlated
        sub-queries, so each uses the ``interaction_id`` index and only the recent interactions
        are looked at."""
        seg = models.ScreenSegment
        upl = models.ScreenUpload
        inter = models.Interaction
        count = select(func.count(seg.id)).where(seg.interaction_id == inter.id).scalar_subquery()
        last_id = select(func.max(seg.id)).where(seg.interaction_id == inter.id).scalar_subquery()
        last_segment = (
            select(func.max(seg.created_at)).where(seg.interaction_id == inter.id).scalar_subquery()
        )
        last_upload = select(func.max(upl.updated_at)).where(upl.interaction_id == inter.id).scalar_subquery()
        cutoff = now - quiet
        with session_scope(self._factory) as s:
            rows = s.execute(
                select(inter.id, count, last_id).where(
                    inter.state.in_(("done", "interrupted")),
                    or_(inter.started_at > now - horizon, inter.id.in_(list(also))),
                    func.coalesce(inter.acw_ended_at, inter.ended_at, inter.started_at) <= cutoff,
                    last_segment <= cutoff,
                    func.coalesce(last_upload, 0.0) <= cutoff,
                )
            ).all()
            return [(r[0], int(r[1]), int(r[2])) for r in rows]

    def record_auto_pause(
        self,
        interaction_id: str,
        agent: tuple[int, str],
        rule: str,
        started_at: float,
        ended_at: float | None,
    ) -> str:
        """The agent's recorder paused the screen itself (a masking rule's window was shown):
        a pause span with reason ``auto:<rule>``, found again by start and reason when its end
        arrives (a resent message changes nothing). Returns "stored", "ended" or "unchanged";
        raises ``ValueError`` (the recorder is told why) for another agent's interaction or a
        span outside the interaction."""
        reason = f"auto:{rule}"[:100]
        with session_scope(self._factory) as s:
            row = s.get(models.Interaction, interaction_id)
            if row is None or row.agent_id != agent[0]:
                raise ValueError(f"screen.auto_pause: no interaction {interaction_id} of yours")
            finished = row.acw_ended_at or row.stopped_at
            # Slack for the recorder's clock offset: it stamps in server time, to within a second.
            if started_at < row.started_at - AUTO_PAUSE_SLACK or (
                finished is not None and started_at > finished + AUTO_PAUSE_SLACK
            ):
                raise ValueError("screen.auto_pause: started_at is outside the interaction")
            key = (reason, round(started_at, 6))
            span = next((p for p in row.pauses if (p.reason, round(p.started_at, 6)) == key), None)
            if span is None:
                s.add(
                    models.PauseSpan(
                        interaction_id=row.id,
                        started_at=started_at,
                        ended_at=ended_at,
                        by_user_id=agent[0],
                        by_username=agent[1],
                        reason=reason,
                    )
                )
                return "stored"
            if ended_at is not None and span.ended_at != ended_at:
                span.ended_at = ended_at
                return "ended"
            return "unchanged"

    def close_auto_pauses(self, interaction_id: str, at: float) -> int:
        """Done: the recorder captures no longer, so an auto-pause whose end never arrived (the
        recorder lost its connection) ends here rather than lasting for ever (which would cut
        the rest of the screen from the mux). Returns how many were closed."""
        with session_scope(self._factory) as s:
            rows = s.execute(
                select(models.PauseSpan).where(
                    models.PauseSpan.interaction_id == interaction_id,
                    models.PauseSpan.reason.startswith("auto:"),
                    models.PauseSpan.ended_at.is_(None),
                )
            ).scalars()
            closed = 0
            for span in rows:
                span.ended_at = max(at, span.started_at)
                closed += 1
            return closed

    # -- recovery --------------------------------------------------------------------------
    def unfinished(self) -> list[tuple[str, str, float | None, float | None]]:
        """Interactions a previous process left mid-call or mid-ACW:
        (id, state, answered_at, ended_at)."""
        with session_scope(self._factory) as s:
            rows = s.execute(
                select(models.Interaction).where(models.Interaction.state.in_(("ringing", "active", "acw")))
            ).scalars()
            return [(r.id, r.state, r.answered_at, r.ended_at) for r in rows]

    def interrupted_call(self, call_id: str) -> bool:
        """Whether SIP Call-ID ``call_id`` is a call a server stop interrupted (a BYE for it after
        the restart is answered, not refused)."""
        with session_scope(self._factory) as s:
            row = s.execute(
                select(models.Interaction.id)
                .where(models.Interaction.call_id == call_id, models.Interaction.state == "interrupted")
                .limit(1)
            ).first()
            return row is not None

    def mark(self, interaction_id: str, state: str, reason: str, at: float) -> None:
        with session_scope(self._factory) as s:
            row = s.get(models.Interaction, interaction_id)
            if row is None:
                return
            row.state = state
            row.end_reason = reason
            row.voice_state = "stopped"
            if row.ended_at is None:
                row.ended_at = at
            if row.acw_ended_at is None and state in ("done", "interrupted"):
                row.acw_ended_at = at
            for span in row.pauses:
                if span.ended_at is None:
                    span.ended_at = row.ended_at
