"""The uploader's pacing rules: the token bucket behind the bandwidth cap, the upload window."""

from __future__ import annotations

from datetime import datetime

import pytest

from recorder_service.bandwidth import TokenBucket, kbps_to_bytes, seconds_until_open, window_open


def test_kbps_are_kilobits() -> None:
    assert kbps_to_bytes(800) == 100_000.0
    assert kbps_to_bytes(0) == 0.0


def test_bucket_holds_the_rate_over_time() -> None:
    """10 MB through a 100 kB/s bucket in 16 KiB slices takes 100 s less the initial burst."""
    bucket = TokenBucket(100_000.0, burst=20_000.0, now=0.0)
    now = 0.0
    total = 0
    while total < 10_000_000:
        now += bucket.reserve(16_384, now)  # the sender waits as told, then sends
        total += 16_384
    assert now == pytest.approx((total - 20_000) / 100_000.0, abs=1e-6)


def test_bucket_debt_is_paid_by_the_next_reservation() -> None:
    bucket = TokenBucket(1000.0, burst=100.0, now=0.0)
    assert bucket.reserve(100, 0.0) == 0.0  # the burst covers it
    assert bucket.reserve(500, 0.0) == pytest.approx(0.5)  # 500 bytes of debt at 1000 B/s
    # The caller slept only 0.2 s: the debt is not forgiven, the next reservation waits for it.
    assert bucket.reserve(100, 0.2) == pytest.approx(0.4)


def test_idle_time_refills_only_up_to_the_burst() -> None:
    bucket = TokenBucket(1000.0, burst=100.0, now=0.0)
    bucket.reserve(100, 0.0)
    assert bucket.reserve(100, 3600.0) == 0.0  # an hour idle: 100 tokens, not 3.6 million
    assert bucket.reserve(100, 3600.0) == pytest.approx(0.1)


def test_no_cap_never_waits_and_a_new_cap_applies_at_once() -> None:
    bucket = TokenBucket(0.0, now=0.0)
    assert bucket.reserve(10**9, 0.0) == 0.0
    bucket.set_rate(1000.0, burst=100.0, now=1.0)
    assert bucket.reserve(1100, 1.0) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        bucket.set_rate(-1.0, now=2.0)


def test_default_burst_is_a_quarter_second_or_one_slice() -> None:
    fast = TokenBucket(1_000_000.0, now=0.0)
    assert fast.reserve(250_000, 0.0) == 0.0
    assert fast.reserve(1_000, 0.0) > 0.0
    slow = TokenBucket(1_000.0, now=0.0)
    assert slow.reserve(16 * 1024, 0.0) == 0.0  # a slice always fits the first time


def at(hhmm: str) -> datetime:
    h, m = hhmm.split(":")
    return datetime(2026, 12, 4, int(h), int(m), 30)


@pytest.mark.parametrize(
    ("window", "now", "open_"),
    [
        (None, "03:00", True),
        (("09:00", "17:00"), "08:59", False),
        (("09:00", "17:00"), "09:00", True),
        (("09:00", "17:00"), "16:59", True),
        (("09:00", "17:00"), "17:00", False),
        # wraps midnight
        (("22:00", "06:00"), "21:59", False),
        (("22:00", "06:00"), "22:00", True),
        (("22:00", "06:00"), "23:59", True),
        (("22:00", "06:00"), "00:00", True),
        (("22:00", "06:00"), "05:59", True),
        (("22:00", "06:00"), "06:00", False),
        (("22:00", "06:00"), "12:00", False),
        (("08:00", "08:00"), "03:00", True),  # the same time twice: all day
    ],
)
def test_window(window: tuple[str, str] | None, now: str, open_: bool) -> None:
    assert window_open(window, at(now)) is open_
    assert (seconds_until_open(window, at(now)) == 0.0) is open_


def test_seconds_until_open_wraps_to_the_next_day() -> None:
    # 06:00:30 with a night window: opens at 22:00 today.
    assert seconds_until_open(("22:00", "06:00"), at("06:00")) == pytest.approx(16 * 3600 - 30)
    # 17:00:30 with an office window: opens at 09:00 tomorrow.
    assert seconds_until_open(("09:00", "17:00"), at("17:00")) == pytest.approx(16 * 3600 - 30)
