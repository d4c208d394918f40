"""The mux of an interaction stored as screen segments (server/calls/media_jobs.py ``_mux``, with a
real database, local storage and PyAV-made segments): frames on the server clock, pause cut,
gaps kept and marked, a monitor change re-encoded, a late segment re-muxed, the sweep that muxes
when the recorder never says it is done, and memory that does not grow with the number of segments.

Every frame draws its own number as 16 black/white blocks, so each decoded frame says which source
frame it is, and so at what server time it was stamped."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from sqlalchemy import Engine, select

from server.calls.media_jobs import MediaJobs
from server.calls.repository import CallRepository
from server.media.segment_join import MISSING_LABEL, RESUMED_LABEL
from server.store import models
from server.store.db import make_engine, make_session_factory, migrate, session_scope
from server.store.storage import LocalStorage, recording_key
from tests.fd_guard import descriptors_under

IID = "i-seg"
FPS = 10
IV = 1 / FPS
W, H = 128, 64
ONE_FRAME = IV + 1e-3


def _bits_image(value: int, width: int = W, height: int = H) -> np.ndarray:
    """``value`` (16 bits) as 2 rows of 8 blocks: white is 1."""
    img = np.zeros((height, width, 3), np.uint8)
    bw, bh = width // 8, height // 2
    for bit in range(16):
        if value >> bit & 1:
            row, col = divmod(bit, 8)
            img[row * bh : (row + 1) * bh, col * bw : (col + 1) * bw] = 255
    return img


def _read_bits(gray: np.ndarray) -> int:
    height, width = gray.shape
    bw, bh = width // 8, height // 2
    value = 0
    for bit in range(16):
        row, col = divmod(bit, 8)
        if gray[row * bh : (row + 1) * bh, col * bw : (col + 1) * bw].mean() > 128:
            value |= 1 << bit
    return value


def make_segment(
    path: Path, numbers: list[int], *, first_number: int, size: tuple[int, int] = (W, H), key_every: int = 20
) -> None:
    """A recorder-like segment: fragmented MP4, H.264 without B-frames, pts in ms, FPS frames a
    second from pts 0, a keyframe every ``key_every`` frames; frame k draws ``numbers[k]``."""
    width, height = size
    with av.open(
        str(path),
        "w",
        format="mp4",
        options={"movflags": "frag_keyframe+empty_moov+default_base_moof", "video_track_timescale": "1000"},
    ) as out:
        stream = out.add_stream("libx264", rate=FPS, options={"bf": "0", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.codec_context.gop_size = 1000
        for k, number in enumerate(numbers):
            frame = av.VideoFrame.from_ndarray(_bits_image(number, width, height), format="rgb24")
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = k * 1000 // FPS, Fraction(1, 1000)
            frame.pict_type = (
                av.video.frame.PictureType.I if k % key_every == 0 else av.video.frame.PictureType.NONE
            )
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    assert first_number == numbers[0]


def make_wav(path: Path, seconds: float, rate: int = 8000) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(2 * int(seconds * rate)))


@dataclass
class World:
    factory: object
    storage: LocalStorage
    repo: CallRepository
    jobs: MediaJobs
    tmp: Path
    base: float  # server time the interaction started
    expected: dict[int, float]  # frame number -> server time it was stamped at
    next_number: int = 0

    def add_segment(
        self,
        run: str,
        seq: int,
        start: float,
        frames: int,
        *,
        size: tuple[int, int] = (W, H),
        created_at: float | None = None,
    ) -> str:
        """A segment whose pts 0 is at ``base + start``, stored and recorded as H1's upload would."""
        numbers = list(range(self.next_number, self.next_number + frames))
        self.next_number += frames
        started_at = self.base + start
        for k, n in enumerate(numbers):
            self.expected[n] = started_at + k * IV
        src = self.tmp / f"{run}-{seq}.mp4"
        make_segment(src, numbers, first_number=numbers[0], size=size)
        digest = hashlib.sha256(src.read_bytes()).hexdigest()
        key = recording_key(IID, self.base, f"screen/{run}-{seq:05d}.mp4")
        size_bytes = self.storage.put_file(key, src)
        with session_scope(self.factory) as s:  # type: ignore[arg-type]
            s.add(
                models.ScreenSegment(
                    interaction_id=IID,
                    run=run,
                    seq=seq,
                    storage_key=key,
                    size=size_bytes,
                    sha256=digest,
                    started_at=started_at,
                    first_frame_at=started_at,
                    last_frame_at=started_at + (frames - 1) * IV,
                    frames=frames,
                    width=size[0],
                    height=size[1],
                    has_audio=False,
                    created_at=time.time() if created_at is None else created_at,
                )
            )
        return key

    def muxed(self) -> tuple[str, Path, float]:
        with session_scope(self.factory) as s:  # type: ignore[arg-type]
            row = s.execute(
                select(models.MediaFile).where(
                    models.MediaFile.interaction_id == IID, models.MediaFile.kind == "muxed"
                )
            ).scalar_one()
            path = self.storage.local_path(row.storage_key)
            assert path is not None and row.state == "complete"
            return row.storage_key, path, row.started_at

    def segment_digests(self) -> dict[str, str]:
        with session_scope(self.factory) as s:  # type: ignore[arg-type]
            rows = s.execute(select(models.ScreenSegment)).scalars()
            return {r.storage_key: r.sha256 for r in rows}


_ENGINES: list[Engine] = []  # the worlds' engines, disposed after each test


@pytest.fixture(autouse=True)
def _close_worlds(tmp_path: Path) -> Iterator[None]:
    """Dispose of the test's database engines and check that nothing in its folder stays open:
    left to the garbage collector, each world kept the database, its WAL and shm open, and this
    module was named by tests/fd_guard.py for leaving 17 descriptors."""
    yield
    while _ENGINES:
        _ENGINES.pop().dispose()
    assert descriptors_under(tmp_path) == [], "the test left files open"


def _world(tmp_path: Path, *, acw_ended_ago: float = 60.0, voice: bool = True) -> World:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    migrate(url)
    engine = make_engine(url)
    _ENGINES.append(engine)
    factory = make_session_factory(engine)
    storage = LocalStorage(tmp_path / "store")
    base = time.time() - 120.0
    with session_scope(factory) as s:
        s.add(models.User(id=1, username="agent", role="agent", password_hash="x", created_at=0))
        s.add(
            models.Interaction(
                id=IID,
                call_id="c-seg",
                dn="100",
                agent_id=1,
                state="done",
                started_at=base,
                answered_at=base,
                ended_at=time.time() - acw_ended_ago - 5,
                acw_ended_at=time.time() - acw_ended_ago,
                screen_decision=True,
                screen_percentage=100,
                voice_state="stopped",
                screen_state="uploaded",
            )
        )
    repo = CallRepository(factory, storage, 100.0)
    if voice:
        wav = tmp_path / "voice.wav"
        make_wav(wav, 40.0)
        repo.store_media(IID, "voice", wav, "voice.wav", "audio/wav", base, 40.0)
    src = tmp_path / "src"
    src.mkdir()
    jobs = MediaJobs(repo, storage, tmp_path / "jobs")
    (tmp_path / "jobs").mkdir()
    return World(factory, storage, repo, jobs, src, base, {})


def _add_pause(world: World, start: float, end: float) -> None:
    with session_scope(world.factory) as s:  # type: ignore[arg-type]
        s.add(models.PauseSpan(interaction_id=IID, started_at=world.base + start, ended_at=world.base + end))


def _decoded(path: Path, origin: float) -> list[tuple[float, int, int]]:
    """(server time, drawn number, width) of every decoded frame."""
    with av.open(str(path)) as c:
        return [
            (origin + float(f.time), _read_bits(f.to_ndarray(format="gray")), f.width)
            for f in c.decode(c.streams.video[0])
        ]


def _chapters(path: Path, origin: float) -> list[tuple[float, str]]:
    with av.open(str(path)) as c:
        return [
            (origin + float(ch["start"] * (ch["time_base"] or 0)), ch["metadata"]["title"])
            for ch in c.chapters()
        ]


def _three_segments_gap_and_pause(world: World) -> None:
    world.add_segment("r1", 0, 1.0, 100)  # 1.0 … 10.9 s, keyframes every 2 s: 1, 3, 5, 7, 9
    world.add_segment("r1", 1, 11.0, 60)  # 11.0 … 16.9, contiguous
    world.add_segment("r2", 0, 20.0, 50)  # 20.0 … 24.9: a recorder restart, 3 s of screen lost
    # A pause the first segment recorded through (the recorder learnt of it late): 7.05 … 8.5.
    _add_pause(world, 7.05, 8.5)


def test_segments_mux_on_the_server_clock_with_the_pause_cut_and_the_gap_kept(tmp_path: Path) -> None:
    world = _world(tmp_path)
    _three_segments_gap_and_pause(world)
    evidence = world.segment_digests()
    world.jobs._mux(IID)

    key, path, origin = world.muxed()
    frames = _decoded(path, origin)
    b = world.base
    # every frame is a source frame at the server time it was stamped at (±1 frame)
    for at, number, width in frames:
        assert number in world.expected, f"frame at {at - b:.3f} s draws {number}: not a source frame"
        assert abs(at - world.expected[number]) <= ONE_FRAME
        assert width == W
    times = [at - b for at, _, _ in frames]
    numbers = [n for _, n, _ in frames]
    assert numbers == sorted(numbers)
    # nothing inside the pause, nor after it until the next keyframe (9.0 s)
    assert not [t for t in times if 7.05 - 1e-3 <= t < 9.0 - 1e-3]
    assert any(abs(t - 7.0) < 1e-3 for t in times) and any(abs(t - 9.0) < 1e-3 for t in times)
    # the gap stays a gap: no frame between 16.9 and 20.0, and the later frames are not moved
    assert not [t for t in times if 16.9 + 1e-3 < t < 20.0 - 1e-3]
    assert abs(times[-1] - 24.9) <= ONE_FRAME
    assert len(frames) == 100 + 60 + 50 - 19  # 7.1 … 8.9: 14 in the pause + 5 up to the keyframe
    # the gap and the unplayable tail of the pause are marked
    chapters = _chapters(path, origin)
    missing = [(round(at - b, 2), label) for at, label in chapters if label in (MISSING_LABEL, RESUMED_LABEL)]
    assert missing == [
        (8.5, MISSING_LABEL),
        (9.0, RESUMED_LABEL),
        (17.0, MISSING_LABEL),
        (20.0, RESUMED_LABEL),
    ]
    assert ("pause" in [label for _, label in chapters]) and ("resume" in [label for _, label in chapters])
    # the muxed file is named after its segments; the evidence is untouched
    assert Path(key).name.startswith("muxed-")
    assert world.segment_digests() == evidence
    for seg_key, digest in evidence.items():
        seg_path = world.storage.local_path(seg_key)
        assert seg_path is not None and hashlib.sha256(seg_path.read_bytes()).hexdigest() == digest
    # and the voice is there, from the interaction's start
    with av.open(str(path)) as c:
        assert len(c.streams.audio) == 1 and len(c.streams.video) == 1
    assert origin == pytest.approx(b)


def test_a_late_segment_of_another_size_is_re_encoded_and_re_muxed(tmp_path: Path) -> None:
    world = _world(tmp_path)
    _three_segments_gap_and_pause(world)
    world.jobs._mux(IID)
    old_key, old_path, _ = world.muxed()
    world.jobs._mux(IID)  # nothing new: the stored mux is current
    assert world.muxed()[0] == old_key

    # The recorder comes back after an outage with the part it could not send: another monitor.
    world.add_segment("r3", 0, 26.0, 30, size=(160, 96))  # 26.0 … 28.9
    world.add_segment("r3", 1, 29.0, 10)  # back on the first monitor's size: copied again
    world.jobs._mux(IID)

    new_key, new_path, origin = world.muxed()
    assert new_key != old_key and not old_path.exists()  # the derived file is replaced, not kept
    frames = _decoded(new_path, origin)
    late = [(at - world.base, n, width) for at, n, width in frames if at - world.base > 25.5]
    assert len(late) == 40
    assert {width for _, _, width in late} == {W}  # scaled to the first segment's size
    for at, number, _ in late:
        assert abs(at + world.base - world.expected[number]) <= ONE_FRAME
    # the earlier part decodes as before, after the re-encoded part too
    assert len(frames) == 100 + 60 + 50 - 19 + 40
    chapters = [(round(at - world.base, 2), label) for at, label in _chapters(new_path, origin)]
    assert (25.0, MISSING_LABEL) in chapters and (26.0, RESUMED_LABEL) in chapters


def test_an_unreadable_first_segment_is_left_out_and_the_rest_muxed(tmp_path: Path) -> None:
    """A storage fault (the file damaged on disk) costs that segment, not the recording."""
    world = _world(tmp_path)
    first = world.add_segment("r1", 0, 1.0, 20)
    world.add_segment("r1", 1, 3.0, 20)
    world.add_segment("r1", 2, 5.0, 20, size=(160, 96))
    path = world.storage.local_path(first)
    assert path is not None
    path.chmod(0o600)
    path.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(500))
    world.jobs._mux(IID)
    _, out, origin = world.muxed()
    frames = _decoded(out, origin)
    assert len(frames) == 40 and {w for _, _, w in frames} == {W}
    assert abs(frames[0][0] - (world.base + 3.0)) <= ONE_FRAME


def test_no_segment_mux_before_done_then_one_when_it_is(tmp_path: Path) -> None:
    """The voice is stored (and muxing asked for) at the hang-up, while the screen goes on through
    after-call work: muxing then would only make a file the next segment outdates."""
    world = _world(tmp_path)
    world.add_segment("r1", 0, 1.0, 30)
    with session_scope(world.factory) as s:  # type: ignore[arg-type]
        row = s.get(models.Interaction, IID)
        assert row is not None
        row.state, row.acw_ended_at = "acw", None
    world.jobs._mux(IID)
    assert "muxed" not in world.repo.media(IID)
    with session_scope(world.factory) as s:  # type: ignore[arg-type]
        row = s.get(models.Interaction, IID)
        assert row is not None
        row.state, row.acw_ended_at = "done", time.time()
    world.jobs._mux(IID)
    _, path, origin = world.muxed()
    assert len(_decoded(path, origin)) == 30


def test_the_sweep_muxes_a_done_interaction_whose_recorder_never_said_final(tmp_path: Path) -> None:
    world = _world(tmp_path, acw_ended_ago=2.0)
    world.add_segment("r1", 0, 1.0, 30, created_at=time.time())

    async def run() -> None:
        jobs = MediaJobs(world.repo, world.storage, tmp_path / "jobs", sweep_interval=0.1, quiet_seconds=1.0)
        jobs.start()
        try:
            deadline = time.monotonic() + 60
            while not world.repo.media(IID).get("muxed"):
                assert time.monotonic() < deadline, "the sweep never muxed the interaction"
                await asyncio.sleep(0.05)
            first = world.repo.media(IID)["muxed"].key
            # a late segment (after an outage) is muxed in once uploads are quiet again
            world.add_segment("r2", 0, 5.0, 20, created_at=time.time())
            # (while it is replaced the row is a pending claim: no "muxed" for a moment)
            while (muxed := world.repo.media(IID).get("muxed")) is None or muxed.key == first:
                assert time.monotonic() < deadline, "the late segment was never muxed in"
                await asyncio.sleep(0.05)
        finally:
            await jobs.stop()
        assert jobs.failures == 0

    asyncio.run(run())
    _, path, origin = world.muxed()
    assert len(_decoded(path, origin)) == 50


def test_a_failed_sweep_mux_is_tried_again_a_few_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mux the sweep queued that fails (a busy database, a full disk) is queued again, not left
    undone until a segment happens to arrive; one that keeps failing is given up after a few."""
    world = _world(tmp_path)
    world.add_segment("r1", 0, 1.0, 10, created_at=time.time() - 100)
    calls = 0
    real = world.repo.screen_segments

    def flaky(interaction_id: str) -> list[object]:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise OSError("database is locked")
        return real(interaction_id)  # type: ignore[return-value]

    monkeypatch.setattr(world.repo, "screen_segments", flaky)

    async def run(jobs: MediaJobs, until: object) -> None:
        jobs.start()
        try:
            deadline = time.monotonic() + 60
            while not until():  # type: ignore[operator]
                assert time.monotonic() < deadline, "the failed mux was not tried again"
                await asyncio.sleep(0.05)
            await jobs.drain()
        finally:
            await jobs.stop()

    jobs = MediaJobs(world.repo, world.storage, tmp_path / "jobs", sweep_interval=0.05)
    asyncio.run(run(jobs, lambda: "muxed" in world.repo.media(IID)))
    assert jobs.failures == 2

    def broken(interaction_id: str) -> list[object]:
        raise OSError("disk gone")

    monkeypatch.setattr(world.repo, "screen_segments", broken)
    world.add_segment("r2", 0, 5.0, 10, created_at=time.time() - 100)
    jobs = MediaJobs(world.repo, world.storage, tmp_path / "jobs", sweep_interval=0.05)
    asyncio.run(run(jobs, lambda: jobs.failures >= 4))
    sweeps = 0
    while sweeps < 20:  # it has given up: more sweeps queue nothing
        sweeps += 1
        assert asyncio.run(jobs.sweep()) == 0
    assert jobs.failures == 1 + 3


def test_a_restarted_server_muxes_what_it_left_unmuxed_at_once(tmp_path: Path) -> None:
    """The interaction ended and went quiet while the server was down: the first sweep runs when
    the media jobs start, not one interval later."""
    world = _world(tmp_path)
    world.add_segment("r1", 0, 1.0, 10, created_at=time.time() - 100)

    async def run() -> None:
        jobs = MediaJobs(world.repo, world.storage, tmp_path / "jobs", sweep_interval=3600.0)
        jobs.start()
        try:
            deadline = time.monotonic() + 60
            while "muxed" not in world.repo.media(IID):
                assert time.monotonic() < deadline, "not muxed at start-up"
                await asyncio.sleep(0.05)
        finally:
            await jobs.stop()

    asyncio.run(run())


def test_the_sweep_waits_for_done_and_for_uploads_to_be_quiet(tmp_path: Path) -> None:
    world = _world(tmp_path)
    world.add_segment("r1", 0, 1.0, 10, created_at=time.time() - 100)
    now = time.time()
    repo, quiet = world.repo, 30.0
    assert repo.screen_mux_due(now, quiet, 86400) == [(IID, 1, 1)]
    # an upload touched 10 s ago is under way: not yet
    with session_scope(world.factory) as s:  # type: ignore[arg-type]
        s.add(
            models.ScreenUpload(
                id="u1",
                interaction_id=IID,
                user_id=1,
                run="r1",
                seq=1,
                length=100,
                offset=10,
                sha256="0" * 64,
                started_at=world.base + 11,
                created_at=now - 20,
                updated_at=now - 10,
            )
        )
    assert repo.screen_mux_due(now, quiet, 86400) == []
    assert repo.screen_mux_due(now + 21, quiet, 86400) == [(IID, 1, 1)]  # abandoned: 31 s untouched
    # a call still in after-call work is not due, whatever its segments
    with session_scope(world.factory) as s:  # type: ignore[arg-type]
        row = s.get(models.Interaction, IID)
        assert row is not None
        row.state = "acw"
    assert repo.screen_mux_due(now + 100, quiet, 86400) == []

    async def sweeps() -> list[int]:
        jobs = MediaJobs(world.repo, world.storage, tmp_path / "jobs")
        with session_scope(world.factory) as s:  # type: ignore[arg-type]
            row = s.get(models.Interaction, IID)
            assert row is not None
            row.state = "done"
        counts = [await jobs.sweep(now + 100), await jobs.sweep(now + 101)]  # queued once per set
        world.add_segment("r2", 0, 5.0, 10, created_at=now)
        counts.append(await jobs.sweep(now + 102))
        return counts

    assert asyncio.run(sweeps()) == [1, 0, 1]


def test_a_late_segment_of_an_interaction_started_days_ago_is_muxed_in(tmp_path: Path) -> None:
    """Older interactions are not swept, except those a segment arrived for: an agent's PC off
    over a weekend uploads Monday what it had in its spool on Friday."""
    world = _world(tmp_path)
    world.add_segment("r1", 0, 1.0, 10, created_at=time.time() - 100)
    world.jobs._mux(IID)
    with session_scope(world.factory) as s:  # type: ignore[arg-type]
        row = s.get(models.Interaction, IID)
        assert row is not None
        row.started_at -= 3 * 86400  # as if the call were three days old
    now = time.time()

    async def sweeps() -> list[int]:
        jobs = MediaJobs(world.repo, world.storage, tmp_path / "jobs")
        counts = [await jobs.sweep(now)]  # the first sweep only notes where the segments are
        world.add_segment("r2", 0, 5.0, 10, created_at=now)
        counts.append(await jobs.sweep(now + 10))  # not quiet yet
        counts.append(await jobs.sweep(now + 31))
        counts.append(await jobs.sweep(now + 41))
        while not jobs._queue.empty():
            jobs._queue.get_nowait()
            jobs._queue.task_done()
        return counts

    assert asyncio.run(sweeps()) == [0, 0, 1, 0]
    world.jobs._mux(IID)
    _, path, origin = world.muxed()
    assert len(_decoded(path, origin)) == 20


def test_segments_uploaded_through_the_api_are_muxed_after_final_and_play_on_the_server_clock(
    tmp_path: Path,
) -> None:
    """The whole server path: the recorder's own encoder makes two segments of two runs (a restart
    between), uploaded by tus with a recorder token, the second ``final``; the mux is made by the
    running server and a supervisor plays it through the API."""
    from fastapi.testclient import TestClient

    from tests.integration.test_screen_segments import upload_all
    from tests.integration.test_screen_upload import IID as API_IID
    from tests.integration.test_screen_upload import (
        add_interaction,
        bearer,
        login,
        make_app,
        recorder_token,
        screen_file,
    )

    app = make_app(tmp_path / "data")
    with TestClient(app) as client:
        started = add_interaction(app, age=60.0)
        wav = tmp_path / "voice.wav"
        make_wav(wav, 58.0)
        ctx = app.state.ctx
        ctx.repo.store_media(API_IID, "voice", wav, "voice.wav", "audio/wav", started, 58.0)
        token = recorder_token(client)
        first = screen_file(tmp_path / "a.mp4")  # 15 frames, 200 ms apart
        second = screen_file(tmp_path / "b.mp4", shade=80)
        assert upload_all(client, token, first, started + 1.0, run="run-a", seq=0).status_code == 204
        assert "muxed" not in ctx.repo.media(API_IID)  # not final: no mux yet
        r = upload_all(client, token, second, started + 10.0, run="run-b", seq=0, final=True)
        assert r.status_code == 204, r.text
        deadline = time.monotonic() + 60
        while "muxed" not in ctx.repo.media(API_IID):
            assert time.monotonic() < deadline, "the final segment did not bring a mux"
            time.sleep(0.05)
        r = client.get(f"/api/interactions/{API_IID}/media/muxed", headers=bearer(login(client, "sup")))
        assert r.status_code == 200, r.text
        origin = ctx.repo.media(API_IID)["muxed"].started_at
    played = tmp_path / "played.mp4"
    played.write_bytes(r.content)
    with av.open(str(played)) as c:
        times = [origin + float(f.time) - started for f in c.decode(c.streams.video[0])]
    expected = [1.0 + 0.2 * k for k in range(15)] + [10.0 + 0.2 * k for k in range(15)]
    assert times == pytest.approx(expected, abs=ONE_FRAME)
    chapters = [(round(at - started, 1), label) for at, label in _chapters(played, origin)]
    assert (4.0, MISSING_LABEL) in chapters and (10.0, RESUMED_LABEL) in chapters


def test_voice_encoded_before_is_copied_in_sync_unless_it_needs_leading_silence(tmp_path: Path) -> None:
    from server.media import probe
    from server.media.mux import mux_segments_and_voice
    from server.media.segment_join import SegmentRef
    from server.media.segment_stream import SegmentInput
    from server.media.voice_aac import encode_voice_file
    from tests.unit.test_mux import SYNC_TOLERANCE, TONE_AT
    from tests.unit.test_mux import make_wav as make_tone_wav

    wav, m4a, seg = tmp_path / "voice.wav", tmp_path / "voice.m4a", tmp_path / "s.mp4"
    make_tone_wav(wav, rate=8000, channels=2)  # a tone from TONE_AT on
    encode_voice_file(wav, m4a)
    make_segment(seg, list(range(20)), first_number=0)
    onsets = {}
    for screen_at, aac in ((1000.5, None), (1000.5, m4a), (999.5, m4a)):
        out = tmp_path / f"out-{screen_at}-{aac is not None}.mp4"
        ref = SegmentRef("s", "r", 0, "x", screen_at, screen_at, screen_at + 1.9)
        result = mux_segments_and_voice([SegmentInput(ref, seg)], [], wav, 1000.0, out, voice_aac=aac)
        # copied exactly when the voice starts the output (no silence to put before it)
        assert result.audio_copied == (aac is not None and screen_at > 1000.0)
        onset = probe.audio_onset(out)
        assert onset is not None
        onsets[(screen_at, aac is not None)] = onset
        assert abs(onset - (result.audio_offset + TONE_AT)) <= SYNC_TOLERANCE
        assert probe.video_frame_times(out)[0] == pytest.approx(screen_at - result.origin, abs=1e-3)
    assert onsets[(1000.5, True)] == pytest.approx(onsets[(1000.5, False)], abs=0.005)


def test_the_voice_is_encoded_in_after_call_work_and_only_copied_after_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the supervisor waits for after Done is the screen's copy, not the voice's encoding."""
    from server.calls.media_jobs import _VoiceJob
    from server.media import probe
    from server.media.voice_aac import EncodedVoice
    from tests.unit.test_mux import SYNC_TOLERANCE, TONE_AT
    from tests.unit.test_mux import make_wav as make_tone_wav

    world = _world(tmp_path, voice=False)
    world.add_segment("r1", 0, 1.0, 20)
    with session_scope(world.factory) as s:  # type: ignore[arg-type]
        row = s.get(models.Interaction, IID)
        assert row is not None
        row.state, row.acw_ended_at = "acw", None
    live = tmp_path / "live" / IID / "voice.wav"
    live.parent.mkdir(parents=True)
    make_tone_wav(live, rate=8000, channels=2)
    world.jobs._store_voice(_VoiceJob(IID, live, world.base))  # at the hang-up
    world.jobs._mux(IID)  # asked for after the voice: nothing yet, the screen goes on
    cache = tmp_path / "jobs" / "voice-aac" / f"{IID}.m4a"
    assert cache.is_file() and "muxed" not in world.repo.media(IID)

    with session_scope(world.factory) as s:  # type: ignore[arg-type]
        row = s.get(models.Interaction, IID)
        assert row is not None
        row.state, row.acw_ended_at = "done", time.time()

    def no_encoding(self: object, out_stream: object) -> object:
        raise AssertionError("the voice was encoded again after Done")

    monkeypatch.setattr(EncodedVoice, "packets", no_encoding)
    world.jobs._mux(IID)
    _, path, origin = world.muxed()
    assert not cache.exists()  # a cache, used once
    onset = probe.audio_onset(path)
    assert onset is not None and abs(onset - TONE_AT) <= SYNC_TOLERANCE
    assert len(_decoded(path, origin)) == 20
    # an unused cache (a call whose mux never came) goes after a day
    cache.parent.mkdir(exist_ok=True)
    stale, fresh = cache.parent / "old.m4a", cache.parent / "new.m4a"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    os.utime(stale, (time.time() - 2 * 86400, time.time() - 2 * 86400))
    assert world.jobs._segments.drop_stale_caches(time.time()) == 1
    assert not stale.exists() and fresh.exists()


def test_the_voice_aac_is_made_before_the_formats_even_when_done_came_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A short ACW: Done arrives while the voice job still encodes the admin's formats. The mux's
    AAC is made first, so the mux after Done copies it instead of encoding the voice again."""
    from server.calls.media_jobs import _VoiceJob
    from server.media.voice_aac import EncodedVoice
    from tests.unit.test_mux import make_wav as make_tone_wav

    world = _world(tmp_path, voice=False)  # Done already (acw_ended_at set)
    world.add_segment("r1", 0, 1.0, 20)
    live = tmp_path / "live" / IID / "voice.wav"
    live.parent.mkdir(parents=True)
    make_tone_wav(live, rate=8000, channels=2)
    cache = tmp_path / "jobs" / "voice-aac" / f"{IID}.m4a"
    cache_when_formats: list[bool] = []
    store_encodings = world.jobs._store_encodings

    def formats(job: _VoiceJob, out_dir: Path, duration: float) -> None:
        cache_when_formats.append(cache.is_file())
        store_encodings(job, out_dir, duration)

    monkeypatch.setattr(world.jobs, "_store_encodings", formats)
    world.jobs._store_voice(_VoiceJob(IID, live, world.base))
    assert cache_when_formats == [True]

    def no_encoding(self: object, out_stream: object) -> object:
        raise AssertionError("the mux encoded the voice itself")

    monkeypatch.setattr(EncodedVoice, "packets", no_encoding)
    world.jobs._mux(IID)
    _, path, origin = world.muxed()
    assert not cache.exists() and len(_decoded(path, origin)) == 20


def test_a_mux_after_done_does_not_wait_for_the_voice_formats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The admin's voice formats of a long call take minutes on a loaded server. The mux asked for
    at Done runs beside them, from the finished live WAV and the AAC made first; the master is
    stored when the formats are done and the mux is not made again."""
    import asyncio
    import threading

    from server.calls.media_jobs import _VoiceJob
    from tests.unit.test_mux import make_wav as make_tone_wav

    world = _world(tmp_path, voice=False)  # Done already
    world.add_segment("r1", 0, 1.0, 20)
    live = tmp_path / "live" / IID / "voice.wav"
    live.parent.mkdir(parents=True)
    make_tone_wav(live, rate=8000, channels=2)
    formats_may_end = threading.Event()
    formats_started = threading.Event()
    store_encodings = world.jobs._store_encodings

    def slow_formats(job: _VoiceJob, out_dir: Path, duration: float) -> None:
        formats_started.set()
        assert formats_may_end.wait(60), "the test never let the formats end"
        store_encodings(job, out_dir, duration)

    monkeypatch.setattr(world.jobs, "_store_encodings", slow_formats)

    async def scenario() -> tuple[bool, bool]:
        world.jobs.start()
        try:
            world.jobs.submit_voice(IID, live, world.base)  # the hang-up
            await asyncio.to_thread(formats_started.wait, 60)
            world.jobs.submit_mux(IID)  # Done: the recorder's last segment is in
            deadline = time.monotonic() + 60
            while "muxed" not in world.repo.media(IID):
                assert time.monotonic() < deadline, "no mux while the formats were encoding"
                await asyncio.sleep(0.05)
            voice_stored_before = "voice" in world.repo.media(IID)
            formats_may_end.set()
            await world.jobs.drain()
            return voice_stored_before, "voice" in world.repo.media(IID)
        finally:
            formats_may_end.set()
            await world.jobs.stop()

    voice_before, voice_after = asyncio.run(scenario())
    assert not voice_before and voice_after
    key, path, origin = world.muxed()
    assert len(_decoded(path, origin)) == 20
    assert world.muxed()[0] == key  # the voice job's own mux found it current
    assert world.jobs.failures == 0


_PLAYER = """<html><body><video id=v muted src="muxed.mp4"></video><pre id=out>pending</pre><script>
const v = document.getElementById("v"), out = document.getElementById("out"), seen = [];
function onFrame(now, md) { seen.push([md.mediaTime, md.width]); v.requestVideoFrameCallback(onFrame); }
v.requestVideoFrameCallback(onFrame);
v.onerror = () => { out.textContent = "error " + (v.error && v.error.message); };
v.onended = () => { out.textContent = JSON.stringify(seen); };
v.playbackRate = 4;
v.play().catch((e) => { out.textContent = "error " + e; });
</script></body></html>"""


@pytest.mark.e2e
@pytest.mark.browser
def test_chromium_plays_a_mux_with_a_re_encoded_monitor_change_through_to_the_end(tmp_path: Path) -> None:
    """The re-encoded part carries its own parameter sets in-band (id 31) inside a track whose
    header has the first segment's: Chromium must play across both, and the copied part after."""
    import functools
    import http.server
    import threading

    from tests.e2e.browser import chromium, new_page

    world = _world(tmp_path)
    world.add_segment("r1", 0, 1.0, 30)  # 1.0 … 3.9
    world.add_segment("r2", 0, 4.0, 30, size=(160, 96))  # another monitor: re-encoded
    world.add_segment("r2", 1, 7.0, 30)  # back to the first size: copied
    world.jobs._mux(IID)
    _, path, origin = world.muxed()
    site = tmp_path / "site"
    site.mkdir()
    (site / "muxed.mp4").write_bytes(path.read_bytes())
    (site / "play.html").write_text(_PLAYER)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with chromium() as browser, new_page(browser) as page:
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/play.html")
            page.wait_for_function("document.getElementById('out').textContent != 'pending'", timeout=120_000)
            text = page.inner_text("#out")
    finally:
        server.shutdown()
        server.server_close()
    assert not text.startswith("error"), text
    shown = json.loads(text)
    # at 4x Chromium skips frames, but it must show frames of all three parts, at the first's size
    times = [origin - world.base + t for t, _ in shown]
    assert {w for _, w in shown} == {W}
    assert any(t < 3.9 for t in times) and any(4.2 < t < 6.8 for t in times) and any(t > 7.2 for t in times)


_MEMORY_SCRIPT = r"""
import json, resource, sys
from pathlib import Path
from server.media.mux import mux_segments_and_voice
from server.media.segment_join import SegmentRef
from server.media.segment_stream import SegmentInput

spec = json.loads(Path(sys.argv[1]).read_text())
def run(n, out):
    segs = spec["segments"]
    refs = [SegmentRef(s["key"], "r", i, s["key"], s["at"], s["at"], s["at"] + 1) for i, s in enumerate(segs)]
    inputs = [SegmentInput(r, Path(s["path"])) for r, s in zip(refs[:n], spec["segments"])]
    return mux_segments_and_voice(inputs, [], Path(spec["voice"]), spec["segments"][0]["at"], Path(out))
run(3, spec["out"] + ".warm")  # libraries loaded, buffers allocated
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = run(len(spec["segments"]), spec["out"])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"grew_kib": after - before, "frames": result.video_frames,
                  "segments": result.segments.segments}))
"""


def test_sixty_segments_are_muxed_one_at_a_time_in_bounded_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One segment open at a time (plus the first, the output track's template), and the peak
    memory of muxing 60 segments is about that of muxing 3."""
    seg_dir = tmp_path / "segs"
    seg_dir.mkdir()
    segments: list[dict[str, Any]] = []
    for i in range(60):
        path = seg_dir / f"s{i:02d}.mp4"
        make_segment(path, [i * 20 + k for k in range(20)], first_number=i * 20, size=(320, 192))
        segments.append({"key": path.name, "path": str(path), "at": 1000.0 + i * 2.0})
    wav = tmp_path / "voice.wav"
    make_wav(wav, 121.0)

    open_now: list[str] = []
    most = 0
    real_open = av.open

    def watched_open(file: object, *args: object, **kwargs: object) -> object:
        nonlocal most
        container = real_open(file, *args, **kwargs)  # type: ignore[call-overload]
        if str(file).startswith(str(seg_dir)):
            open_now.append(str(file))
            most = max(most, len(open_now))
            real_close = container.close

            def close() -> None:
                if str(file) in open_now:
                    open_now.remove(str(file))
                real_close()

            return _Closing(container, close)
        return container

    from server.media.mux import mux_segments_and_voice
    from server.media.segment_join import SegmentRef
    from server.media.segment_stream import SegmentInput

    monkeypatch.setattr(av, "open", watched_open)
    inputs = [
        SegmentInput(SegmentRef(s["key"], "r", i, s["key"], s["at"], s["at"], s["at"] + 1), Path(s["path"]))
        for i, s in enumerate(segments)
    ]
    result = mux_segments_and_voice(inputs, [], wav, 1000.0, tmp_path / "out.mp4")
    monkeypatch.undo()
    assert result.video_frames == 60 * 20 and result.screen_missing == []
    assert most <= 2 and open_now == []

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"segments": segments, "voice": str(wav), "out": str(tmp_path / "m.mp4")}))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, str(spec)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["frames"] == 60 * 20 and report["segments"] == 60
    assert report["grew_kib"] < 20 * 1024, report


class _Closing:
    """A container whose close (also at the end of ``with``) is seen by the test."""

    def __init__(self, container: Any, close: Any) -> None:
        self._container = container
        self.close = close

    def __getattr__(self, name: str) -> object:
        return getattr(self._container, name)

    def __enter__(self) -> _Closing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[object]:
        return iter(self._container)


def test_a_segment_starting_on_the_last_frames_millisecond_is_muxed_whole(tmp_path: Path) -> None:
    """A recorder stored a segment's first keyframe on the previous segment's last frame (pts in
    whole ms): the mux used to drop that segment up to its next keyframe, unmarked."""
    world = _world(tmp_path)
    world.add_segment("r1", 0, 1.0, 50)  # 1.0 … 5.9 s
    world.add_segment("r1", 1, 5.9, 30)  # 5.9 … 8.8 s: its keyframe meets the last frame; next one at 7.9
    world.jobs._mux(IID)
    _key, path, origin = world.muxed()
    frames = _decoded(path, origin)
    numbers = [n for _, n, _ in frames]
    assert numbers == list(range(80)), numbers
    for at, number, _ in frames:
        assert abs(at - world.expected[number]) <= ONE_FRAME
    assert not [label for _, label in _chapters(path, origin) if label == MISSING_LABEL]
