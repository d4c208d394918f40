"""After a segment mux: the endpoint audio of the segments (if any has an audio track) as a
derived file, media kind ``endpoint_audio`` (M4A, AAC stereo: left = the agent's microphone,
right = what the agent heard), starting at the mux's t=0 so the player plays it beside the SIP
voice at the same time. Made from the same segments as the mux and named after them, so a late
segment makes it again (the derived row moves to the new file); segments are only read.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from server.calls.repository import CallRepository
from server.media.endpoint_audio_track import build_endpoint_audio

log = logging.getLogger(__name__)

KIND = "endpoint_audio"


def endpoint_audio_name(muxed_name: str) -> str:
    """``muxed-<digest>.mp4`` → ``endpoint-audio-<digest>.m4a`` (the same set of segments)."""
    stem = muxed_name.removesuffix(".mp4").removeprefix("muxed-")
    return f"endpoint-audio-{stem}.m4a"


def store_endpoint_audio(
    repo: CallRepository,
    interaction_id: str,
    segments: list[tuple[Path, float]],
    *,
    origin: float,
    duration: float,
    muxed_name: str,
    tmp_dir: Path,
) -> bool:
    """Build and store the track; False when no segment has audio. A failure is logged and
    leaves the mux as it is (the endpoint audio is a check beside the SIP voice, not evidence)."""
    name = endpoint_audio_name(muxed_name)
    try:
        with tempfile.TemporaryDirectory(dir=tmp_dir) as tmp:
            out = Path(tmp) / name
            track = build_endpoint_audio(
                segments,
                out,
                started_at=origin,
                ended_at=origin + duration,
                pauses=repo.pause_spans(interaction_id),
            )
            if track is None:
                return False
            repo.store_media(interaction_id, KIND, out, name, "audio/mp4", origin, track.seconds)
    except Exception:
        log.exception("interaction %s: endpoint audio not made", interaction_id)
        return False
    log.info("interaction %s: endpoint audio from %d segment(s) stored", interaction_id, track.segments)
    return True
