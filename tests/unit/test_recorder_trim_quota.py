"""Pure rules: which frames a cut keeps (trim.keep_mask) and when the spool quota stops capture."""

from __future__ import annotations

from recorder_service.quota import DiskUsage, quota_problem
from recorder_service.trim import Frame, keep_mask

MB = 1024 * 1024


def _frames(keys: set[int], n: int = 10, step: int = 100) -> list[Frame]:
    return [Frame(i * step, i in keys) for i in range(n)]


def test_tail_cut_keeps_everything_before() -> None:
    assert keep_mask(_frames({0}), [(450, None)]) == [True] * 5 + [False] * 5


def test_span_drops_dependents_until_next_keyframe() -> None:
    frames = _frames({0, 7})
    assert keep_mask(frames, [(200, 400)]) == [
        True,
        True,
        False,
        False,
        False,
        False,
        False,
        True,
        True,
        True,
    ]


def test_span_at_start_and_touching_ends() -> None:
    frames = _frames({0, 3, 6})
    # [0, 300): frames 0..2 inside; 3 is a keyframe at the span's end: kept (end is exclusive)
    assert keep_mask(frames, [(0, 300)]) == [False] * 3 + [True] * 7
    assert keep_mask(frames, [(0, None)]) == [False] * 10
    assert keep_mask(frames, []) == [True] * 10


def test_quota_free_space_and_spool_size_with_resume_margin() -> None:
    ok = DiskUsage(free_bytes=50 * MB, total_bytes=100 * MB, spool_bytes=10 * MB)
    assert quota_problem(ok, min_free_percent=10, max_mb=100) == ""
    low = DiskUsage(free_bytes=9 * MB, total_bytes=100 * MB, spool_bytes=10 * MB)
    problem = quota_problem(low, min_free_percent=10, max_mb=100)
    assert problem.startswith("spool_full:") and "9.0 %" in problem and "10 %" in problem
    big = DiskUsage(free_bytes=50 * MB, total_bytes=100 * MB, spool_bytes=101 * MB)
    assert "100 MB maximum" in quota_problem(big, min_free_percent=10, max_mb=100)
    # Just back above the threshold: not yet resumed (no flapping at the edge) ...
    edge = DiskUsage(free_bytes=int(10.5 * MB), total_bytes=100 * MB, spool_bytes=10 * MB)
    assert quota_problem(edge, min_free_percent=10, max_mb=100) == ""
    assert quota_problem(edge, min_free_percent=10, max_mb=100, stopped=True) != ""
    near_max = DiskUsage(free_bytes=50 * MB, total_bytes=100 * MB, spool_bytes=98 * MB)
    assert quota_problem(near_max, min_free_percent=10, max_mb=100, stopped=True) != ""
    assert quota_problem(ok, min_free_percent=10, max_mb=100, stopped=True) == ""
    assert quota_problem(DiskUsage(0, 0, 0), min_free_percent=10, max_mb=100) != ""
