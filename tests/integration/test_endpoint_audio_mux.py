"""The mux job of segments with endpoint audio (real database, local storage, segments from the
recorder's own encoder): the muxed video as before, plus the derived ``endpoint_audio`` M4A from
the mux's t=0 with each tone at its server time, silence in the gap and in a pause span the
server knows of; a late segment makes it again under a new name."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import av
import numpy as np
import pytest
from sqlalchemy import select

from recorder_service.encoder import AudioFormat, ScreenEncoder
from server.calls.endpoint_audio_job import KIND, endpoint_audio_name
from server.store import models
from server.store.db import session_scope
from server.store.storage import recording_key
from tests.integration.test_mux_segments import IID, World, _world
from tests.unit.test_endpoint_audio import onsets

RATE = 48000


def _add_audio_segment(
    world: World, run: str, seq: int, start: float, seconds: float, tones: list[float]
) -> None:
    """A segment from ``ScreenEncoder`` (5 fps) with endpoint audio: 1 kHz bursts of 0.2 s at
    ``tones`` (seconds from the segment's pts 0) on both channels."""
    src = world.tmp / f"{run}-{seq}.mp4"
    enc = ScreenEncoder(src, fps=5, audio=AudioFormat())
    signal = np.zeros(round(seconds * RATE), np.float32)
    for at in tones:
        i = round(at * RATE)
        t = np.arange(round(0.2 * RATE)) / RATE
        signal[i : i + len(t)] = 0.5 * np.sin(2 * np.pi * 1000 * t)
    frames = round(seconds * 5)
    for k in range(frames):
        enc.encode(np.full((64, 128, 4), (k * 17) % 256, np.uint8), k * 200)
        a = round(k * 0.2 * RATE)
        enc.encode_audio(np.stack([signal[a : a + RATE // 5]] * 2, axis=1), a)
    enc.close()
    started_at = world.base + start
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    key = recording_key(IID, world.base, f"screen/{run}-{seq:05d}.mp4")
    size = world.storage.put_file(key, src)
    with session_scope(world.factory) as s:  # type: ignore[arg-type]
        s.add(
            models.ScreenSegment(
                interaction_id=IID,
                run=run,
                seq=seq,
                storage_key=key,
                size=size,
                sha256=digest,
                started_at=started_at,
                first_frame_at=started_at,
                last_frame_at=started_at + (frames - 1) * 0.2,
                frames=frames,
                width=128,
                height=64,
                has_audio=True,
                created_at=time.time(),
            )
        )


def _endpoint_audio(world: World) -> tuple[str, Path, float]:
    with session_scope(world.factory) as s:  # type: ignore[arg-type]
        row = s.execute(
            select(models.MediaFile).where(
                models.MediaFile.interaction_id == IID, models.MediaFile.kind == KIND
            )
        ).scalar_one()
        path = world.storage.local_path(row.storage_key)
        assert path is not None and row.state == "complete" and row.content_type == "audio/mp4"
        return row.storage_key, path, row.started_at


def _onsets(path: Path, origin: float, channel: int) -> list[float]:
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        assert stream.codec_context.name == "aac" and stream.channels == 2
        assert stream.time_base is not None
        chunks = []
        for frame in c.decode(stream):
            assert frame.pts is not None
            chunks.append((round(float(frame.pts * stream.time_base) * RATE), frame.to_ndarray()[channel]))
    grid = np.zeros(max(i + len(d) for i, d in chunks), np.float32)
    for i, d in chunks:
        if i >= 0:
            grid[i : i + len(d)] = d
    return [origin + s for s in onsets(grid)]


def test_mux_makes_the_endpoint_audio_track_on_the_server_clock(tmp_path: Path) -> None:
    world = _world(tmp_path)
    _add_audio_segment(world, "r1", 0, 1.0, 6.0, [1.0, 4.0])  # tones at base+2.0 and base+5.0 (paused)
    _add_audio_segment(world, "r2", 0, 10.0, 4.0, [1.5])  # a restart after a gap: tone at base+11.5
    with session_scope(world.factory) as s:  # type: ignore[arg-type]
        s.add(models.PauseSpan(interaction_id=IID, started_at=world.base + 4.5, ended_at=world.base + 6.0))
    world.jobs._mux(IID)
    key, path, origin = _endpoint_audio(world)
    _, muxed_path, muxed_origin = world.muxed()
    assert origin == pytest.approx(muxed_origin)  # played from the same t=0 as the video
    assert Path(key).name == endpoint_audio_name(muxed_path.name)
    for channel in (0, 1):
        found = [t - world.base for t in _onsets(path, origin, channel)]
        # the tone at 5.0 lies in the pause [4.5, 6.0): silent (the upload would have refused it;
        # the derived track silences it anyway); the gap 7.0-10.0 is silence
        assert found == [pytest.approx(2.0, abs=0.005), pytest.approx(11.5, abs=0.005)]
    with av.open(str(muxed_path)) as c:  # the mux itself: the screen and the SIP voice as before
        assert len(c.streams.video) == 1 and len(c.streams.audio) == 1

    # A late segment: the mux and the endpoint audio are made again, the old file removed.
    _add_audio_segment(world, "r2", 1, 14.0, 2.0, [0.5])
    world.jobs._mux(IID)
    new_key, new_path, _ = _endpoint_audio(world)
    assert new_key != key and not path.exists()
    found = [t - world.base for t in _onsets(new_path, origin, 0)]
    assert found[-1] == pytest.approx(14.5, abs=0.005)


def test_no_endpoint_audio_without_audio_in_the_segments(tmp_path: Path) -> None:
    world = _world(tmp_path)
    world.add_segment("r1", 0, 1.0, 30)
    world.jobs._mux(IID)
    world.muxed()
    with session_scope(world.factory) as s:  # type: ignore[arg-type]
        kinds = {m.kind for m in s.execute(select(models.MediaFile)).scalars()}
    assert KIND not in kinds
