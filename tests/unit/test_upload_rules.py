"""The segment uploader's rules (recorder_service.upload_rules), tested directly: what each tus
answer means, the fixes a failed PATCH gets within an attempt, and the backoff schedule for the
server and for each segment. tests/unit/test_segment_uploader.py drives them through the uploader
against a fake server."""

from __future__ import annotations

import pytest

from recorder_service.upload_rules import (
    MAX_CHECKSUM_RESENDS,
    MAX_CUTS,
    MAX_RECREATES,
    RETRY_BASE,
    RETRY_CAP,
    UNAUTHORIZED_RETRY,
    Answer,
    PatchFix,
    RetrySchedule,
    Track,
    classify,
    patch_fix,
)


@pytest.mark.parametrize(
    ("status", "code", "answer"),
    [
        (None, None, Answer.NETWORK),
        (408, None, Answer.TRANSIENT),
        (429, None, Answer.TRANSIENT),
        (500, None, Answer.TRANSIENT),
        (503, "whatever", Answer.TRANSIENT),
        (409, "upload_in_progress", Answer.TRANSIENT),
        (401, None, Answer.UNAUTHORIZED),
        (301, None, Answer.REDIRECTED),
        (308, None, Answer.REDIRECTED),
        (409, "already_uploaded", Answer.ALREADY_UPLOADED),
        (422, "frames_in_pause", Answer.FRAMES_IN_PAUSE),
        (422, "bad_metadata", Answer.REFUSED),
        (409, "offset_mismatch", Answer.REFUSED),  # a PATCH fixes it itself; anywhere else final
        (400, None, Answer.REFUSED),
        (403, None, Answer.REFUSED),
        (404, None, Answer.REFUSED),
        (413, None, Answer.REFUSED),
    ],
)
def test_what_an_answer_means(status: int | None, code: str | None, answer: Answer) -> None:
    assert classify(status, code, cuts=0) == answer


def test_pause_cuts_are_tried_a_few_times_then_the_segment_is_refused() -> None:
    assert classify(422, "frames_in_pause", cuts=MAX_CUTS - 1) == Answer.FRAMES_IN_PAUSE
    assert classify(422, "frames_in_pause", cuts=MAX_CUTS) == Answer.REFUSED


def fix(
    status: int | None,
    code: str | None = None,
    *,
    has_offset: bool = False,
    resends: int = 0,
    recreates: int = 0,
) -> PatchFix:
    return patch_fix(status, code, has_offset=has_offset, resends=resends, recreates=recreates)


def test_a_failed_patch_takes_the_servers_offset_only_when_it_gives_one() -> None:
    assert fix(409, "offset_mismatch", has_offset=True) == PatchFix.TAKE_OFFSET
    assert fix(409, "offset_mismatch") == PatchFix.NONE


def test_a_damaged_chunk_is_sent_again_a_few_times_in_a_row_then_backs_off() -> None:
    assert fix(460, resends=0) == PatchFix.RESEND
    assert fix(460, resends=MAX_CHECKSUM_RESENDS - 1) == PatchFix.RESEND
    assert fix(460, resends=MAX_CHECKSUM_RESENDS) == PatchFix.DAMAGED


def test_a_lost_upload_is_created_again_a_few_times_per_attempt() -> None:
    assert fix(404, recreates=MAX_RECREATES - 1) == PatchFix.RECREATE
    assert fix(404, recreates=MAX_RECREATES) == PatchFix.NONE


@pytest.mark.parametrize("status", [None, 401, 409, 500, 503])
def test_other_patch_failures_are_left_to_classify(status: int | None) -> None:
    assert fix(status, "upload_in_progress" if status == 409 else None) == PatchFix.NONE


def test_the_server_backs_off_doubling_up_to_the_cap_and_is_well_after_progress() -> None:
    schedule = RetrySchedule(rand=lambda: 0.5)  # no jitter
    waits = [schedule.back_off(1000.0, None) for _ in range(10)]
    assert waits[:4] == [RETRY_BASE, 2 * RETRY_BASE, 4 * RETRY_BASE, 8 * RETRY_BASE]
    assert max(waits) == RETRY_CAP and waits[-1] == RETRY_CAP
    assert schedule.not_before == 1000.0 + RETRY_CAP and schedule.failures == 10
    track = Track(failures=3, due=1005.0)
    schedule.progressed(track)
    assert (schedule.failures, schedule.not_before, track.failures) == (0, 0.0, 0)
    assert schedule.back_off(2000.0, None) == RETRY_BASE  # starts over


def test_a_segment_the_server_chokes_on_waits_on_its_own_schedule() -> None:
    schedule = RetrySchedule(rand=lambda: 0.5)
    bad, other = Track(), Track()
    for _ in range(3):
        schedule.back_off(100.0, bad)
    schedule.succeeded()  # another segment went through: the server is fine, this one is not
    assert schedule.failures == 0 and bad.failures == 3
    wait = schedule.back_off(100.0, bad)
    assert bad.due == 100.0 + 8 * RETRY_BASE and wait == 8 * RETRY_BASE
    assert schedule.not_before == 100.0 + RETRY_BASE  # the server itself only its first step
    assert other.due == 0.0 and other.failures == 0  # the others are not held back


def test_retry_after_is_honoured_within_reason() -> None:
    schedule = RetrySchedule(rand=lambda: 0.5)
    assert schedule.back_off(0.0, Track(), retry_after=42.0) == 42.0
    assert schedule.not_before == 42.0
    schedule.back_off(0.0, Track(), retry_after=10 * UNAUTHORIZED_RETRY)
    assert schedule.not_before == UNAUTHORIZED_RETRY  # never longer than that


def test_holding_for_a_change_on_this_pc_asks_rarely() -> None:
    schedule = RetrySchedule()
    schedule.hold(50.0)
    assert schedule.not_before == 50.0 + UNAUTHORIZED_RETRY and schedule.failures == 0


def test_jitter_spreads_the_retries_but_never_past_the_cap() -> None:
    low, high = RetrySchedule(rand=lambda: 0.0), RetrySchedule(rand=lambda: 0.999)
    assert low.back_off(0.0, None) < RETRY_BASE < high.back_off(0.0, None)
    for _ in range(20):
        assert high.back_off(0.0, None) <= RETRY_CAP
