"""The segment upload's pure rules (tus headers, frame times) and its state on a real SQLite
database and disk: expiry of partials (injected clock), a chunk rolled back, a crash between the
move into storage and the row finished by the next attempt."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from recorder_service.encoder import ScreenEncoder
from server.calls.segment_uploads import AlreadyStored, DeclaredOtherwise, SegmentUploads
from server.errors import ScreenRejected
from server.media.segment_validation import (
    FramesInPause,
    InteractionWindow,
    SegmentMedia,
    Span,
    check_segment_times,
    validate_segment_file,
)
from server.store import models
from server.store.db import session_scope
from server.store.storage import LocalStorage, recording_key
from tandem_protocol.tus import (
    SegmentDeclaration,
    TusHeaderError,
    check_version,
    parse_checksum,
    parse_declaration,
    parse_metadata,
)
from tests.unit.segment_upload_world import declaration, upload_db

DAY = 24 * 3600


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# -- tus headers -----------------------------------------------------------------------------------
def test_metadata_pairs_decode_and_bad_ones_are_named() -> None:
    assert parse_metadata(f"run {b64('r1')},seq {b64('3')}, final {b64('1')},empty") == {
        "run": "r1",
        "seq": "3",
        "final": "1",
        "empty": "",
    }
    with pytest.raises(TusHeaderError, match="not base64"):
        parse_metadata("run !!!")
    with pytest.raises(TusHeaderError, match="repeated key 'run'"):
        parse_metadata(f"run {b64('a')},run {b64('b')}")


def _declare(**changes: str) -> dict[str, str]:
    meta = {"run": "run-1", "seq": "4", "started_at": "1733300000.25", "sha256": "AB" * 32}
    meta.update(changes)
    return {k: v for k, v in meta.items() if v != "-"}


def test_declaration_is_checked_field_by_field() -> None:
    decl = parse_declaration(_declare(final="1"), 1000, 2000)
    assert decl == SegmentDeclaration("run-1", 4, 1733300000.25, "ab" * 32, 1000, True)
    assert parse_declaration(_declare(), 1000, 2000).final is False
    for changes, words in (
        ({"seq": "-"}, "lacks seq"),
        ({"run": "../x/y"}, "run must be"),
        ({"seq": "-1"}, "seq must be"),
        ({"started_at": "nan"}, "started_at must be"),
        ({"started_at": "inf"}, "started_at must be"),
        ({"sha256": "12"}, "64 hex"),
        ({"final": "yes"}, "final must be"),
    ):
        with pytest.raises(TusHeaderError, match=words):
            parse_declaration(_declare(**changes), 1000, 2000)
    with pytest.raises(TusHeaderError) as info:
        parse_declaration(_declare(), 2001, 2000)
    assert info.value.status == 413
    with pytest.raises(TusHeaderError, match="never empty"):
        parse_declaration(_declare(), 0, 2000)


def test_version_and_checksum_headers() -> None:
    check_version("1.0.0")
    with pytest.raises(TusHeaderError) as info:
        check_version("0.2.2")
    assert info.value.status == 412
    digest = hashlib.sha256(b"x").digest()
    assert parse_checksum(f"sha256 {base64.b64encode(digest).decode()}") == ("sha256", digest)
    assert parse_checksum(None) is None
    with pytest.raises(TusHeaderError, match="not one of sha256, sha1"):
        parse_checksum("md5 AAAA")
    with pytest.raises(TusHeaderError, match="not a sha1 digest"):
        parse_checksum(f"sha1 {base64.b64encode(digest).decode()}")


# -- frame times --------------------------------------------------------------------------------------
def media(video: list[float], audio: list[float] | None = None) -> SegmentMedia:
    return SegmentMedia(video, audio or [], 64, 48, has_audio=audio is not None)


def test_frames_must_lie_in_the_span_with_its_slack() -> None:
    window = InteractionWindow(1000.0, 1100.0)
    times = check_segment_times(998.5, media([0.0, 0.2, 1.0]), window, start_slack=2, end_slack=5)
    assert (times.first_frame_at, times.last_frame_at) == (998.5, 999.5)
    check_segment_times(1104.0, media([0.0, 1.0]), window, start_slack=2, end_slack=5)  # last at +5 s
    for started, pts in ((997.9, [0.0]), (1100.0, [0.0, 5.1])):
        with pytest.raises(ScreenRejected) as info:
            check_segment_times(started, media(pts), window, start_slack=2, end_slack=5)
        assert info.value.code == "outside_interaction"
    with pytest.raises(ScreenRejected, match="outside"):  # an audio packet counts like a frame
        check_segment_times(1000.0, media([0.0], [0.0, 200.0]), window, start_slack=2, end_slack=5)


def test_a_pause_covers_its_start_up_to_but_not_its_end() -> None:
    closed, still_open = Span(1010.0, 1012.0), Span(1050.0, None)
    window = InteractionWindow(1000.0, 1100.0, [closed, still_open])
    check_segment_times(
        1005.0, media([0.0, 4.9, 7.0]), window, start_slack=2, end_slack=5
    )  # ends at the resume
    with pytest.raises(FramesInPause) as info:
        check_segment_times(1005.0, media([0.0, 5.0, 6.9, 50.0]), window, start_slack=2, end_slack=5)
    assert info.value.spans == [closed, still_open] and info.value.frames == 3
    assert info.value.code == "frames_in_pause"
    with pytest.raises(FramesInPause):  # audio recorded during a pause is refused too
        check_segment_times(1005.0, media([0.0], [5.5]), window, start_slack=2, end_slack=5)


# -- the file itself ------------------------------------------------------------------------------------
def av_segment(path: Path, *, audio: bool, fragmented: bool = True) -> None:
    """An H.264 MP4 made with PyAV: 10 frames 200 ms apart, with an AAC track if ``audio``."""
    import av

    options = {"movflags": "frag_keyframe+empty_moov+default_base_moof"} if fragmented else {}
    with av.open(str(path), "w", format="mp4", options=options) as out:
        video = out.add_stream("libx264", rate=5, options={"bf": "0"})
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.time_base = Fraction(1, 1000)
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 20, np.uint8), format="rgb24")
            frame.pts, frame.time_base = i * 200, Fraction(1, 1000)
            out.mux(video.encode(frame))
        if audio:
            sound = out.add_stream("aac", rate=48000)
            sound.layout = "mono"
            for k in range(40):
                block = av.AudioFrame.from_ndarray(
                    np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
                )
                block.sample_rate, block.pts = 48000, k * 1024
                out.mux(sound.encode(block))
            out.mux(sound.encode())
        out.mux(video.encode())


def test_a_segment_may_carry_one_audio_stream(tmp_path: Path) -> None:
    av_segment(tmp_path / "with-audio.mp4", audio=True)
    found = validate_segment_file(tmp_path / "with-audio.mp4")
    assert found.has_audio and found.frames == 10 and (found.width, found.height) == (64, 48)
    assert len(found.audio_pts) >= 40 and found.audio_pts == sorted(found.audio_pts)


def test_a_plain_mp4_is_not_a_segment(tmp_path: Path) -> None:
    av_segment(tmp_path / "plain.mp4", audio=False, fragmented=False)
    with pytest.raises(ScreenRejected) as info:
        validate_segment_file(tmp_path / "plain.mp4")
    assert info.value.code == "not_fragmented"


# -- the upload state on disk and database ------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    with upload_db(tmp_path) as factory:
        yield factory


def segment(path: Path) -> bytes:
    enc = ScreenEncoder(path, fps=5)
    for i in range(10):
        enc.encode(np.full((48, 64, 4), i * 20, dtype=np.uint8), i * 200)
    enc.close()
    return path.read_bytes()


def test_partials_untouched_for_24_hours_expire(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    clock = Clock()
    uploads = SegmentUploads(sessions, LocalStorage(tmp_path / "storage"), tmp_path / "uploads", clock=clock)
    old, _ = uploads.create("i1", 1, None, declaration(b"a" * 100, seq=0))
    busy, _ = uploads.create("i1", 1, None, declaration(b"b" * 100, seq=1))
    orphan = tmp_path / "uploads" / "left-by-a-crash.part"
    orphan.write_bytes(b"zz")
    clock.now += DAY - 60
    fresh, _ = uploads.create("i1", 1, None, declaration(b"c" * 100, seq=2))
    assert uploads.expire() == 0  # not yet 24 h
    clock.now += 120
    os.utime(orphan, (clock.now - DAY - 1, clock.now - DAY - 1))
    assert uploads.expire(busy=frozenset({busy.id})) == 2  # `old` and the orphan; `busy` is being written
    assert uploads.get(old.id) is None and not uploads.path(old.id).exists() and not orphan.exists()
    assert uploads.get(busy.id) is not None and uploads.get(fresh.id) is not None
    assert sorted(p.name for p in (tmp_path / "uploads").iterdir()) == sorted(
        [uploads.path(busy.id).name, uploads.path(fresh.id).name]
    )


def test_a_touched_upload_does_not_expire(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    clock = Clock()
    uploads = SegmentUploads(sessions, LocalStorage(tmp_path / "storage"), tmp_path / "uploads", clock=clock)
    upload, _ = uploads.create("i1", 1, None, declaration(b"a" * 100))
    clock.now += DAY - 1
    partial = uploads.open_append(upload)  # a PATCH arrives: the upload is in use again
    partial.write(b"a" * 40)
    uploads.record_offset(upload.id, partial.sync())
    partial.close()
    clock.now += DAY - 1
    assert uploads.expire() == 0
    assert uploads.get(upload.id) is not None and uploads.get(upload.id).offset == 40  # type: ignore[union-attr]


def test_bytes_past_the_durable_offset_never_count(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    uploads = SegmentUploads(sessions, LocalStorage(tmp_path / "storage"), tmp_path / "uploads")
    upload, _ = uploads.create("i1", 1, None, declaration(b"a" * 100))
    partial = uploads.open_append(upload)
    partial.write(b"x" * 30)
    partial.rollback()  # a chunk that failed its checksum
    partial.write(b"y" * 10)
    uploads.record_offset(upload.id, partial.sync())
    partial.close()
    assert uploads.path(upload.id).read_bytes() == b"y" * 10
    with open(uploads.path(upload.id), "ab") as fh:  # written, never synced nor recorded (a crash)
        fh.write(b"garbage")
    again = uploads.open_append(uploads.get(upload.id))  # type: ignore[arg-type]
    again.close()
    assert uploads.path(upload.id).read_bytes() == b"y" * 10


def test_create_answers_retries_refuses_stored_and_reports_a_new_digest(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    uploads = SegmentUploads(sessions, LocalStorage(tmp_path / "storage"), tmp_path / "uploads")
    decl = declaration(b"a" * 100)
    first, created = uploads.create("i1", 1, 5, decl)
    assert created
    assert uploads.create("i1", 1, 5, decl) == (first, False)
    with pytest.raises(DeclaredOtherwise) as info:
        uploads.create("i1", 1, 5, declaration(b"b" * 100))
    assert info.value.upload_id == first.id
    with session_scope(sessions) as s:
        s.add(
            models.ScreenSegment(
                interaction_id="i1", run="run-1", seq=1, storage_key="k", size=1, sha256="f" * 64,
                started_at=1.0, first_frame_at=1.0, last_frame_at=1.0, frames=1, width=2, height=2,
                has_audio=False, final=False, created_at=1.0,
            )
        )  # fmt: skip
    with pytest.raises(AlreadyStored) as stored:
        uploads.create("i1", 1, 5, declaration(b"c" * 100, seq=1))
    assert stored.value.sha256 == "f" * 64


def test_a_crash_between_storing_and_the_row_is_finished_by_the_next_attempt(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path / "storage")
    uploads = SegmentUploads(sessions, storage, tmp_path / "uploads")
    body = segment(tmp_path / "seg.mp4")
    upload, _ = uploads.create("i1", 1, None, declaration(body))
    partial = uploads.open_append(upload)
    partial.write(body)
    uploads.record_offset(upload.id, partial.sync())
    partial.close()
    upload = uploads.get(upload.id)  # type: ignore[assignment]
    with session_scope(sessions) as s:
        inter = s.get(models.Interaction, "i1")
        assert inter is not None
        key = recording_key("i1", inter.started_at, "screen/run-1-00000.mp4")
    storage.put_file(key, uploads.path(upload.id))  # the move happened, then the process died
    done = uploads.finish(upload, 9, start_slack=2, end_slack=5)
    assert done.key == key and done.frames == 10 and done.sha256 == upload.sha256
    assert uploads.get(upload.id) is None
    with session_scope(sessions) as s:
        [row] = s.query(models.ScreenSegment).all()
        assert (row.storage_key, row.uploaded_by_token_id, row.size) == (key, 9, len(body))
    assert (tmp_path / "storage" / key).read_bytes() == body
