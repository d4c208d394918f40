"""Pure planning of the segment mux (server/media/segment_join.py): order, pause cuts to the next
keyframe, overlapping runs, missing spans; and the Annex B rewrite the re-encoded part needs."""

from __future__ import annotations

import math

import pytest

from server.media.segment_join import (
    MISSING_LABEL,
    RESUMED_LABEL,
    FrameFilter,
    SegmentRef,
    missing_markers,
    muxed_name,
    order_segments,
    segment_set_digest,
    subtract_spans,
)
from server.media.segment_stream import annexb_to_length_prefixed

IV = 0.1  # frame interval of the synthetic segments: 10 fps


def ref(run: str, seq: int, first: float, *, started: float | None = None, sha: str = "") -> SegmentRef:
    return SegmentRef(f"k/{run}-{seq}", run, seq, sha or f"{run}{seq}", started or first, first, first + 1)


def feed(
    f: FrameFilter, start: float, count: int, *, key_every: int = 10, interval: float = IV
) -> list[float]:
    """One segment of ``count`` frames from ``start``; a keyframe every ``key_every`` frames.
    Returns the times kept."""
    f.begin_segment(interval)
    kept = []
    for i in range(count):
        t = round(start + i * interval, 6)
        if f.offer(t, i % key_every == 0):
            kept.append(t)
    return kept


def test_segments_are_ordered_by_server_time_whatever_their_run_or_listing_order() -> None:
    a0, a1 = ref("a", 0, 100.0), ref("a", 1, 160.0)
    b0 = ref("b", 0, 130.0)  # a second run that started between a's segments
    tie = ref("c", 0, 160.0, started=159.0)  # same first frame as a1, earlier pts 0
    assert order_segments([a1, tie, b0, a0]) == [a0, b0, tie, a1]


def test_the_set_digest_names_the_set_not_the_order_and_changes_with_a_late_segment() -> None:
    a0, a1, b0 = ref("a", 0, 0.0), ref("a", 1, 60.0), ref("b", 0, 200.0)
    assert segment_set_digest([a0, a1]) == segment_set_digest([a1, a0])
    assert muxed_name([a0, a1]) != muxed_name([a0, a1, b0])
    assert muxed_name([a0]) != muxed_name([ref("a", 0, 0.0, sha="other")])  # other bytes, other mux
    assert muxed_name([a0]).startswith("muxed-") and muxed_name([a0]).endswith(".mp4")


def test_contiguous_segments_keep_every_frame_and_leave_no_missing_span() -> None:
    f = FrameFilter([])
    kept = feed(f, 0.0, 30) + feed(f, 3.0, 30) + feed(f, 6.05, 30)  # 150 ms: within 2 intervals
    assert len(kept) == 90 and f.stats.kept == 90
    assert f.stats.missing == []
    assert (f.stats.dropped_pause, f.stats.dropped_overlap, f.stats.dropped_no_key) == (0, 0, 0)


def test_a_gap_between_segments_is_missing_from_one_interval_after_the_last_frame() -> None:
    f = FrameFilter([])
    feed(f, 0.0, 30)  # last frame 2.9
    kept = feed(f, 10.0, 10)
    assert kept[0] == 10.0  # never moved: gaps are not closed up
    assert f.stats.missing == [pytest.approx((3.0, 10.0))]
    assert missing_markers(f.stats.missing) == [
        (pytest.approx(3.0), MISSING_LABEL),
        (pytest.approx(10.0), RESUMED_LABEL),
    ]


def test_a_still_screen_inside_one_segment_is_not_missing() -> None:
    """The recorder encodes no unchanged frames: a long silence inside a segment is the screen."""
    f = FrameFilter([])
    f.begin_segment(IV)
    assert f.offer(0.0, True) and f.offer(0.1, False) and f.offer(20.0, False)
    assert f.stats.missing == []


def test_a_pause_cuts_from_its_first_frame_to_the_next_keyframe_after_it() -> None:
    """A segment that went on recording through a pause (the recorder learnt of it late)."""
    f = FrameFilter([(2.05, 3.0)])
    kept = feed(f, 0.0, 60)  # keyframes at 0, 1, 2, 3, 4, 5 s
    assert max(t for t in kept if t < 3.0) == 2.0  # 2.1 … 2.9 inside the pause
    assert min(t for t in kept if t > 2.0) == 3.0  # 3.0 is the pause's end and a keyframe
    assert not [t for t in kept if 2.05 <= t < 3.0]
    assert f.stats.dropped_pause == 9
    assert f.stats.missing == []  # the hole is the pause itself, marked as a pause already


def test_after_a_pause_frames_up_to_the_next_keyframe_are_dropped_and_shown_missing() -> None:
    f = FrameFilter([(2.05, 3.25)])
    kept = feed(f, 0.0, 60)
    after = [t for t in kept if t > 2.0]
    assert after[0] == 4.0  # 3.3 … 3.9 depend on frames inside the pause: not decodable without them
    assert not [t for t in kept if 2.05 <= t < 4.0]
    assert f.stats.dropped_pause == 9 + 10  # 2.1–2.9 and 3.0–3.9 (3.0, 3.1, 3.2 are in the pause)
    assert f.stats.missing == [pytest.approx((3.25, 4.0))]  # the pause part is not "missing"


def test_an_open_pause_drops_everything_after_its_start() -> None:
    f = FrameFilter([(1.0, None)])
    kept = feed(f, 0.0, 30)
    assert kept == [round(i * IV, 6) for i in range(10)]
    assert f.stats.dropped_pause == 20


def test_a_frame_at_the_pause_start_is_inside_and_one_at_its_end_is_after() -> None:
    f = FrameFilter([(1.0, 2.0)])
    kept = feed(f, 0.0, 30)
    assert 1.0 not in kept and 2.0 in kept and 0.9 in kept


def test_two_runs_overlapping_keep_the_earlier_and_join_the_later_at_a_keyframe() -> None:
    f = FrameFilter([])
    first = feed(f, 0.0, 50)  # 0.0 … 4.9
    later = feed(f, 3.05, 40)  # 3.05 … 6.95, keyframes at 3.05, 4.05, 5.05, 6.05
    assert len(first) == 50
    assert later[0] == 5.05  # 4.95 is after 4.9 but depends on the overlapping (dropped) ones
    assert f.stats.dropped_overlap == 20  # 3.05 … 4.95: 19 overlapping + 1 up to the keyframe
    assert f.stats.kept == 50 + 20
    assert f.stats.missing == []  # 4.9 → 5.05 is 1.5 intervals
    # and a later run whose overlap ends in a gap shows it missing
    g = FrameFilter([])
    feed(g, 0.0, 50)
    kept = feed(g, 4.0, 40, key_every=20)  # keyframes at 4.0, 6.0
    assert kept[0] == 6.0 and g.stats.missing == [pytest.approx((5.0, 6.0))]


def test_a_segment_not_starting_with_a_keyframe_loses_its_head() -> None:
    f = FrameFilter([])
    f.begin_segment(IV)
    assert not f.offer(0.0, False) and not f.offer(0.1, False)
    assert f.offer(0.2, True) and f.offer(0.3, False)
    assert f.stats.dropped_no_key == 2


def test_begin_segment_refuses_a_nonsense_interval() -> None:
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="frame interval"):
            FrameFilter([]).begin_segment(bad)


def test_subtract_spans() -> None:
    assert subtract_spans((0.0, 10.0), [(2.0, 3.0), (5.0, 20.0)]) == [(0.0, 2.0), (3.0, 5.0)]
    assert subtract_spans((0.0, 10.0), [(-1.0, 11.0)]) == []
    assert subtract_spans((0.0, 10.0), [(0.05, 9.0)], min_length=0.1) == [(9.0, 10.0)]
    assert subtract_spans((0.0, 1.0), []) == [(0.0, 1.0)]


def test_annexb_becomes_length_prefixed_nal_units() -> None:
    sps, pps, idr = b"\x67\x64\x00\x0a", b"\x68\xee\x3c\x80", b"\x65\x88\x84\x00\x00\x03\x01"
    annexb = b"\x00\x00\x00\x01" + sps + b"\x00\x00\x01" + pps + b"\x00\x00\x00\x01" + idr
    out = annexb_to_length_prefixed(annexb)
    assert out == b"".join(len(n).to_bytes(4, "big") + n for n in (sps, pps, idr))
    assert annexb_to_length_prefixed(b"\x00\x00\x01" + idr, 2) == len(idr).to_bytes(2, "big") + idr
