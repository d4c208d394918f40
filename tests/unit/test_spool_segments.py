"""The segment spool: manifests, the SegmentQueue seen by the uploader, late-pause cuts, crash
recovery (truncated and corrupt segments) and quarantine."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import numpy as np
import pytest

from recorder_service.encoder import ScreenEncoder
from recorder_service.errors import ManifestError, SpoolError
from recorder_service.spool import SegmentManifest, SegmentState, Spool

T0 = 1_000.0


def _segment(
    spool: Spool,
    iid: str = "i1",
    run: str = "r1",
    seq: int = 0,
    *,
    frames: int = 30,
    started_at: float = T0,
    step_ms: int = 200,
    close: bool = True,
) -> Path:
    path = spool.open_segment(iid, run, seq, started_at)
    enc = ScreenEncoder(path, fps=5, keyframe_interval=2.0)  # keyframes at 0, 2, 4 s
    for i in range(frames):
        enc.encode(np.full((48, 64, 4), (i * 8) % 256, dtype=np.uint8), i * step_ms)
    if close:
        enc.close()
    return path


def _times(path: Path, started_at: float) -> list[float]:
    with av.open(str(path)) as container:
        return [started_at + (f.pts or 0) / 1000 for f in container.decode(video=0)]


def test_manifest_roundtrip_and_validation(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    m = SegmentManifest("abc-1", "r1", 3, SegmentState.FINISHED, 1.5, 2.5, 4, "00", 9, True, 2, "e")
    spool.write(m)
    assert spool.read("abc-1", "r1", 3) == m
    assert not list(spool.root.rglob("*.tmp"))
    assert (spool.root.stat().st_mode & 0o777) == 0o700
    with pytest.raises(ManifestError):
        SegmentManifest.from_json(
            '{"interaction_id": "x", "run": "r", "seq": 0, "state": "x", "started_at": 1}'
        )
    with pytest.raises(ManifestError):
        SegmentManifest.from_json(
            '{"interaction_id": "../x", "run": "r", "seq": 0, "state": "finished", "started_at": 1}'
        )
    with pytest.raises(SpoolError):
        spool.media_path("../etc/passwd", "r1", 0)
    with pytest.raises(SpoolError):
        spool.media_path("i1", "r/1", 0)


def test_ready_after_hold_uploaded_deletes_only_with_our_checksum(tmp_path: Path) -> None:
    woken: list[int] = []
    spool = Spool(tmp_path, on_ready=lambda: woken.append(1))
    _segment(spool, seq=0)
    spool.finish("i1", "r1", 0, final=False, hold=30.0)
    assert spool.ready() == []  # held for a late pause
    _segment(spool, seq=1, started_at=T0 + 6)
    finished = spool.finish("i1", "r1", 1, final=True)
    assert woken  # the uploader is told at once
    refs = spool.ready()
    assert [r.seq for r in refs] == [1] and refs[0].final and refs[0].started_at == T0 + 6
    assert refs[0].sha256 == hashlib.sha256(refs[0].path.read_bytes()).hexdigest() == finished.sha256
    assert finished.frames == 30 and finished.last_frame_at == pytest.approx(T0 + 6 + 5.8)
    spool.uploaded(refs[0], "00" * 32)  # not our file: kept, marked
    assert refs[0].path.exists() and spool.read("i1", "r1", 1).state == SegmentState.REFUSED  # type: ignore[union-attr]
    spool.release("i1")
    ref0 = spool.ready()[0]
    spool.uploaded(ref0, ref0.sha256.upper())
    assert not ref0.path.exists() and spool.read("i1", "r1", 0) is None


def test_refused_keeps_the_file_with_the_reason(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    _segment(spool)
    spool.finish("i1", "r1", 0, final=True)
    ref = spool.ready()[0]
    spool.refused(ref, "outside_interaction", "frame at 5 is before the call")
    m = spool.read("i1", "r1", 0)
    assert m is not None and m.state == SegmentState.REFUSED and "outside_interaction" in m.error
    assert ref.path.exists() and spool.ready() == []


def test_cut_from_removes_frames_at_and_after_a_late_pause(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    _segment(spool, seq=0)  # frames T0 .. T0+5.8, keyframes every 2 s
    spool.finish("i1", "r1", 0, final=False, hold=30.0)
    _segment(spool, seq=1, started_at=T0 + 6)
    spool.finish("i1", "r1", 1, final=False, hold=30.0)
    pause_at = T0 + 3.3
    report = spool.cut_from("i1", pause_at)
    assert report.frames == 13 + 30 and report.segments_removed == 1 and report.unreachable == 0
    spool.release("i1")
    refs = spool.ready()
    assert [r.seq for r in refs] == [0]
    times = _times(refs[0].path, refs[0].started_at)
    assert times and max(times) < pause_at and len(times) == 17  # decoded: nothing at/after it
    assert refs[0].sha256 == hashlib.sha256(refs[0].path.read_bytes()).hexdigest()
    assert not list(tmp_path.rglob("*.tmp"))


def test_cut_from_cannot_touch_a_segment_already_with_the_uploader(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    _segment(spool)
    spool.finish("i1", "r1", 0, final=False)
    ref = spool.ready()[0]
    before = ref.path.read_bytes()
    report = spool.cut_from("i1", T0 + 1)
    assert report.unreachable == 1 and report.frames == 0
    assert ref.path.read_bytes() == before  # never altered under the uploader's feet


def test_cut_pauses_drops_span_and_frames_up_to_next_keyframe(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    _segment(spool)  # keyframes at 0, 2000, 4000 ms
    spool.finish("i1", "r1", 0, final=True)
    ref = spool.ready()[0]
    new = spool.cut_pauses(ref, [(T0 + 1.0, T0 + 1.5)])
    assert new is not None and new.sha256 != ref.sha256 and new.started_at == T0
    times = _times(new.path, new.started_at)
    # 1.0 .. 1.4 inside the span; 1.6 .. 1.8 referenced dropped frames: gone until the key at 2.0
    assert [round(t - T0, 1) for t in times] == [
        0.0,
        0.2,
        0.4,
        0.6,
        0.8,
        *[round(2.0 + i * 0.2, 1) for i in range(20)],
    ]
    # A span from the start: the segment then starts at the next keyframe, started_at moved.
    newer = spool.cut_pauses(new, [(T0 - 5, T0 + 2.5)])
    assert newer is not None and newer.started_at == pytest.approx(T0 + 4.0)
    assert _times(newer.path, newer.started_at)[0] == pytest.approx(T0 + 4.0)
    assert spool.cut_pauses(newer, [(T0, None)]) is None  # wholly inside: nothing left
    assert not newer.path.exists()


def test_recover_truncates_an_interrupted_segment_to_its_last_fragment(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    path = _segment(spool, frames=30)
    whole = path.stat().st_size
    with path.open("r+b") as fh:
        fh.truncate(whole - 300)  # the kill tore the last fragment
    assert spool.recover() == []
    m = spool.read("i1", "r1", 0)
    assert m is not None and m.state == SegmentState.FINISHED and m.final
    assert m.size is not None and m.size < whole - 300
    assert m.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    times = _times(path, T0)
    assert 10 <= len(times) < 30 and m.last_frame_at == pytest.approx(times[-1])
    assert [r.seq for r in spool.ready()] == [0]


def test_recover_quarantines_corrupt_segments_and_goes_on(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    _segment(spool, "good", seq=0, close=False)  # still "capturing" but readable
    bad = spool.open_segment("bad", "r1", 0, T0)
    bad.write_bytes(b"\x00\x00\x00\x08junk" + b"x" * 500)  # bad boxes
    spool.open_segment("gone", "r1", 0, T0)  # opened, no frame ever written: nothing lost
    changed = _segment(spool, "changed", seq=0)
    spool.finish("changed", "r1", 0, final=True)
    with changed.open("r+b") as fh:
        fh.seek(100)
        fh.write(b"\xff\xff")
    (spool.segments_dir / "good" / "broken.000009.json").write_text("{", encoding="utf-8")
    problems = spool.recover()
    assert sorted(iid for iid, _ in problems) == ["bad", "changed", "good"]
    assert any("checksum" in line for _, line in problems)
    assert spool.quarantined() == ["bad.r1.000000.mp4", "changed.r1.000000.mp4"]
    assert [r.interaction_id for r in spool.ready()] == ["good"]
    assert spool.read("gone", "r1", 0) is None
    q = SegmentManifest.from_json((spool.quarantine_dir / "bad.r1.000000.json").read_text())
    assert q.state == SegmentState.QUARANTINED and q.error


def test_size_bytes_counts_every_file(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    path = _segment(spool)
    assert spool.size_bytes() >= path.stat().st_size


def test_recover_makes_the_last_segment_of_each_crashed_run_final(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for seq in (0, 1):  # a run killed during a pause: both segments closed, neither final
        _segment(spool, "i1", "r1", seq, started_at=T0 + 6 * seq)
        spool.finish("i1", "r1", seq, final=False)
    _segment(spool, "i1", "r2", 0, started_at=T0 + 20)
    spool.finish("i1", "r2", 0, final=True)
    assert spool.recover() == []
    finals = {(m.run, m.seq): m.final for m in spool.manifests()}
    assert finals == {("r1", 0): False, ("r1", 1): True, ("r2", 0): True}


def test_recover_adopts_a_capture_left_by_the_single_file_recorder(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    old = _segment(spool, "old-1", "x", 0)  # an MP4, then moved to where the old spool kept it
    legacy = tmp_path / "old-1.mp4"
    old.rename(legacy)
    spool.manifest_path("old-1", "x", 0).unlink()
    (tmp_path / "old-1.json").write_text(
        '{"interaction_id": "old-1", "state": "finished", "started_at": 1000.0}'
    )
    (tmp_path / "kept.json").write_text('{"interaction_id": "kept", "state": "conflict", "started_at": 1.0}')
    (tmp_path / "kept.mp4").write_bytes(b"evidence")
    assert spool.recover() == []
    refs = spool.ready()
    assert [(r.interaction_id, r.run, r.seq, r.final) for r in refs] == [("old-1", "legacy", 0, True)]
    assert refs[0].started_at == T0 and len(_times(refs[0].path, T0)) == 30
    assert not legacy.exists() and (tmp_path / "kept.mp4").read_bytes() == b"evidence"
