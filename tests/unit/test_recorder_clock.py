"""Clock offset estimation and backoff (pure)."""

from __future__ import annotations

import pytest

from recorder_service.clock import ClockSync, sample_from
from tandem_protocol.backoff import backoff_delay


def test_sample_symmetric_delay_gives_exact_offset() -> None:
    # Server is 100 s ahead; 10 ms each way; 2 ms server processing.
    s = sample_from(t0=1000.0, t1=1100.010, t2=1100.012, t3=1000.022)
    assert s.offset == pytest.approx(100.0)
    assert s.rtt == pytest.approx(0.020)


def test_sample_rejects_impossible_timestamps() -> None:
    with pytest.raises(ValueError):
        sample_from(10.0, 5.0, 6.0, 9.0)
    with pytest.raises(ValueError):
        sample_from(10.0, 6.0, 5.0, 11.0)


def test_min_rtt_sample_wins_and_window_is_bounded() -> None:
    now = [50.0]
    clock = ClockSync(lambda: now[0], window=3)
    assert not clock.synced and clock.server_now() == 50.0
    clock.add_sample(0.0, 5.5, 5.5, 1.0)  # rtt 1.0, offset 5.0
    clock.add_sample(0.0, 5.05, 5.05, 0.1)  # rtt 0.1, offset 5.0
    clock.add_sample(0.0, 7.0, 7.0, 0.8)  # rtt 0.8, offset 6.6: queued, ignored
    assert clock.offset == pytest.approx(5.0)
    assert clock.server_now() == pytest.approx(55.0)
    # Three more slow samples push the good one out of the window of 3.
    for off in (3.0, 3.1, 3.2):
        clock.add_sample(0.0, off + 0.25, off + 0.25, 0.5)
    assert clock.offset == pytest.approx(3.0)


def test_backoff_is_capped_and_jittered() -> None:
    assert backoff_delay(0, base=1.0, cap=30.0, rand=lambda: 0.5) == pytest.approx(1.0)
    assert backoff_delay(3, base=1.0, cap=30.0, rand=lambda: 0.5) == pytest.approx(8.0)
    assert backoff_delay(1000, base=1.0, cap=30.0, rand=lambda: 0.5) == pytest.approx(30.0)
    low = backoff_delay(2, base=1.0, cap=30.0, jitter=0.25, rand=lambda: 0.0)
    high = backoff_delay(2, base=1.0, cap=30.0, jitter=0.25, rand=lambda: 1.0)
    assert low == pytest.approx(3.0) and high == pytest.approx(5.0)
    with pytest.raises(ValueError):
        backoff_delay(-1)


def test_pings_come_in_a_burst_at_connect_then_at_the_interval() -> None:
    from itertools import islice

    from recorder_service.clock import ping_delays

    assert list(islice(ping_delays(10.0, burst=3, gap=0.2), 5)) == [0.2, 0.2, 10.0, 10.0, 10.0]
