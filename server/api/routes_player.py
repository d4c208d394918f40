"""What the player needs besides the media itself: the voice's waveform peaks, the interaction's
timeline (call start, holds, pauses with who and why, auto-pauses, missing screen, call end, ACW
end) and bookmarks. Same access rule as the media (``may_play_media`` under the admin's agent
playback setting); every read, write and refusal is audited like other recording access.

All times are server time (Unix seconds); ``files`` gives each playable file's ``started_at`` so
the page converts to the played file's time."""

from __future__ import annotations

import base64
import functools
import logging
import os
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

import av
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from sqlalchemy.orm import Session

from server.api.actors import actor_of
from server.api.context import ServerContext
from server.api.deps import AuthUser, current_user, get_context, get_db, require_roles
from server.api.errors import ApiError
from server.api.routes_recordings import _allowed, _refuse, _visible, summary
from server.errors import ProbeError
from server.media import peaks as peaks_mod
from server.media.segment_join import MISSING_LABEL, RESUMED_LABEL
from server.services import agent_playback, bookmarks, pause_reasons
from server.store import models

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api")
_PEAKS_LOCK = threading.Lock()  # one computation at a time: two first views compute it once


def _playable(session: Session, user: AuthUser, interaction_id: str, request: Request, action: str) -> Any:
    return _visible(session, user, interaction_id, request, action, agent_playback.play_rule(session))


def _file(row: models.Interaction, kind: str) -> models.MediaFile | None:
    return next((m for m in row.media if m.kind == kind), None)


# ---- peaks -------------------------------------------------------------------------------------


def peaks_cache_path(data_dir: Path, voice_sha256: str) -> Path:
    """Derived file of a voice file's peaks, by the file's hash (a stored recording never changes),
    under ``<data_dir>/derived/peaks/``: never next to, or over, the recording."""
    return data_dir / "derived" / "peaks" / f"{voice_sha256[:64]}.tpk"


def voice_peaks(ctx: ServerContext, voice: models.MediaFile) -> peaks_mod.Peaks:
    """The cached peaks of ``voice``, computed (once) from the stored WAV when there are none."""
    path = peaks_cache_path(ctx.settings.data_dir, voice.sha256)
    with _PEAKS_LOCK:
        if path.is_file():
            try:
                return peaks_mod.decode(path.read_bytes())
            except ValueError:
                pass  # a damaged derived file is made again
        with ctx.storage.open_read(voice.storage_key) as fh:
            result = peaks_mod.compute(fh, ctx.storage.size(voice.storage_key))
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.part")
        partial.write_bytes(peaks_mod.encode(result))
        os.replace(partial, path)
        return result


@router.get("/interactions/{interaction_id}/peaks")
def get_peaks(
    interaction_id: str,
    request: Request,
    user: AuthUser = Depends(current_user),
    session: Session = Depends(get_db, scope="function"),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    """Per channel (caller, agent; or one mixed), the loudest sample of each 1/bins_per_second s
    of the voice WAV as 0..255, base64; ``started_at`` is the server time of bin 0."""
    action = "recording.peaks"
    row = _playable(session, user, interaction_id, request, action)
    voice = _file(row, "voice")
    if voice is None:
        error = ApiError(404, "media_not_ready", "no voice recording for this interaction (yet)")
        raise _refuse(session, user, interaction_id, action, request, error, "no voice")
    try:
        result = voice_peaks(ctx, voice)
    except ProbeError as exc:
        error = ApiError(422, "no_peaks", f"the voice recording has no waveform: {exc}")
        raise _refuse(session, user, interaction_id, action, request, error, str(exc)[:200]) from exc
    _allowed(session, user, interaction_id, request, action, f"voice peaks {len(result.channels)} channels")
    return {
        "started_at": voice.started_at,
        "bins_per_second": result.bins_per_second,
        "duration": result.duration,
        "channels": [
            {"name": name, "peaks": base64.b64encode(data).decode()}
            for name, data in zip(result.names, result.channels, strict=True)
        ],
    }


# ---- timeline ----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _missing_spans(path: str, sha256: str) -> tuple[tuple[float, float], ...]:
    """``screen_missing``..``screen_resumed`` chapter pairs of a muxed file, in file seconds.
    Cached by the file's hash: a muxed file never changes (a new mux is a new file)."""
    del sha256  # the cache key only
    spans: list[tuple[float, float]] = []
    opened: float | None = None
    with av.open(path, "r") as container:
        for chapter in container.chapters():
            at = float(chapter["start"] * (chapter["time_base"] or 1))
            title = chapter["metadata"].get("title", "")
            if title == MISSING_LABEL:
                opened = at
            elif title == RESUMED_LABEL and opened is not None:
                spans.append((opened, at))
                opened = None
    return tuple(spans)


def _pause_kind(reason: str) -> str:
    if reason == "hold":
        return "hold"
    if reason.startswith("auto:"):
        return "auto-pause"
    return "pause"


def _pause_why(reason: str, label: str = "") -> str:
    if label:  # the agent's pause reason (a "pause" code's label when he gave it)
        return f"paused by the agent: {label}"
    return {
        "agent": "paused by the agent",
        "control": "paused through the API",
        "a=inactive": "the call's media was put on hold (a=inactive)",
        "hold": "call on hold",
    }.get(reason, f"masking rule {reason[5:]!r} on screen" if reason.startswith("auto:") else reason)


def timeline(ctx: ServerContext, session: Session, row: models.Interaction) -> dict[str, Any]:
    base = asdict(summary(row))
    warnings = {round(p.started_at, 6): p.warning for p in summary(row).pauses}
    no_reason = pause_reasons.missing_reasons(session, list(row.pauses))
    spans: list[dict[str, Any]] = [
        {
            "kind": _pause_kind(p.reason),
            "start": p.started_at,
            "end": p.ended_at,
            "who": p.by_username,
            "why": _pause_why(p.reason, p.reason_label),
            "reason_code": p.reason_code,  # the agent's pause reason, None when he gave none
            "reason": p.reason_label,  # its label as it was then ("" without one)
            # The admin requires a reason of this agent's team and none came (it is asked after
            # the pause starts, so an agent may never answer): shown, not left blank.
            "reason_missing": p.id in no_reason,
            "warning": warnings.get(round(p.started_at, 6), ""),
        }
        for p in row.pauses
    ]
    muxed = _file(row, "muxed")
    if muxed is not None:
        local = ctx.storage.local_path(muxed.storage_key)
        try:
            missing = _missing_spans(str(local), muxed.sha256) if local is not None else ()
        except (av.error.FFmpegError, OSError) as exc:  # a damaged derived file: the rest still shows
            log.error("interaction %s: cannot read the muxed file's chapters: %s", row.id, exc)
            missing = ()
        if missing:
            for start, end in missing:
                spans.append(
                    {
                        "kind": "screen-missing",
                        "start": muxed.started_at + start,
                        "end": muxed.started_at + end,
                        "who": "",
                        "why": "no screen recorded (recorder not connected or not capturing)",
                        "reason_code": None,
                        "reason": "",
                        "reason_missing": False,
                        "warning": "",
                    }
                )
    events = [
        {"kind": kind, "at": at}
        for kind, at in (
            ("call-start", row.answered_at or row.started_at),
            ("call-end", row.ended_at),
            ("acw-end", row.acw_ended_at),
        )
        if at is not None
    ]
    files = {m.kind: {"started_at": m.started_at, "duration": m.duration} for m in row.media}
    return {
        "interaction": base,
        "events": events,
        "spans": sorted(spans, key=lambda s: s["start"]),
        "files": files,
    }


@router.get("/interactions/{interaction_id}/timeline")
def get_timeline(
    interaction_id: str,
    request: Request,
    user: AuthUser = Depends(current_user),
    session: Session = Depends(get_db, scope="function"),
    ctx: ServerContext = Depends(get_context),
) -> Any:
    action = "recording.timeline"
    row = _playable(session, user, interaction_id, request, action)
    _allowed(session, user, interaction_id, request, action)
    return timeline(ctx, session, row)


# ---- bookmarks ---------------------------------------------------------------------------------


class BookmarkIn(BaseModel):
    at: float  # server time (Unix seconds)
    text: str
    shared: bool = False


@router.get("/interactions/{interaction_id}/bookmarks")
def list_bookmarks(
    interaction_id: str,
    request: Request,
    user: AuthUser = Depends(current_user),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    _playable(session, user, interaction_id, request, bookmarks.ACTION_READ)
    return [asdict(b) for b in bookmarks.visible(session, actor_of(user, request), interaction_id)]


@router.post("/interactions/{interaction_id}/bookmarks", status_code=201)
def create_bookmark(
    interaction_id: str,
    body: BookmarkIn,
    request: Request,
    user: AuthUser = Depends(current_user),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    row = _playable(session, user, interaction_id, request, bookmarks.ACTION_CREATE)
    return asdict(bookmarks.create(session, actor_of(user, request), row, body.at, body.text, body.shared))


class BookmarkPatch(BaseModel):
    text: str | None = None
    shared: bool | None = None


@router.patch("/interactions/{interaction_id}/bookmarks/{bookmark_id}")
def update_bookmark(
    interaction_id: str,
    bookmark_id: int,
    body: BookmarkPatch,
    request: Request,
    user: AuthUser = Depends(current_user),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    _playable(session, user, interaction_id, request, bookmarks.ACTION_UPDATE)
    view = bookmarks.update(
        session, actor_of(user, request), interaction_id, bookmark_id, body.text, body.shared
    )
    return asdict(view)


@router.delete("/interactions/{interaction_id}/bookmarks/{bookmark_id}", status_code=204)
def delete_bookmark(
    interaction_id: str,
    bookmark_id: int,
    request: Request,
    user: AuthUser = Depends(current_user),
    session: Session = Depends(get_db, scope="function"),
) -> None:
    _playable(session, user, interaction_id, request, bookmarks.ACTION_DELETE)
    bookmarks.delete(session, actor_of(user, request), interaction_id, bookmark_id)


# ---- agent playback (admin) --------------------------------------------------------------------

admin_only = require_roles("admin")


class AgentPlaybackIn(BaseModel):
    teams: list[str]  # team names; [] for none


@router.get("/admin/agent-playback")
def get_agent_playback(
    _user: AuthUser = Depends(admin_only), session: Session = Depends(get_db, scope="function")
) -> Any:
    """The teams whose agents may play their own recordings."""
    return {"teams": agent_playback.team_names(session)}


@router.put("/admin/agent-playback")
def put_agent_playback(
    body: AgentPlaybackIn,
    request: Request,
    user: AuthUser = Depends(admin_only),
    session: Session = Depends(get_db, scope="function"),
) -> Any:
    return {"teams": agent_playback.set_teams(session, actor_of(user, request), body.teams)}
