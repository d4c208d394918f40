"""RFC 3261's retransmission schedule shared by 2xx resends, Timer G and our BYE; and the
"port in use" test that must also recognise uvloop's way of reporting EADDRINUSE."""

from __future__ import annotations

import errno
import itertools

from server.rtp.ports import _in_use
from server.sip.transactions import T1, T2, retransmit_intervals


def test_schedule_doubles_to_t2_and_ends_at_64_t1() -> None:
    steps = list(retransmit_intervals())
    waits = [w for w, _ in steps]
    assert waits[:5] == [T1, 2 * T1, 4 * T1, T2, T2]
    assert max(waits) <= T2
    assert abs(sum(waits) - 64 * T1) < 1e-9
    assert [last for _, last in steps] == [False] * (len(steps) - 1) + [True]


def test_bye_attempts_take_the_first_seven_waits() -> None:
    waits = [w for w, _ in itertools.islice(retransmit_intervals(), 7)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]


def test_port_in_use_is_recognised_directly_and_as_uvloop_reports_it() -> None:
    assert _in_use(OSError(errno.EADDRINUSE, "in use"))
    wrapped = OSError("could not bind on any address out of [('127.0.0.1', 20000)]")
    wrapped.__cause__ = OSError(errno.EADDRINUSE, "Address already in use")
    assert _in_use(wrapped)
    assert not _in_use(OSError(errno.EACCES, "denied"))
