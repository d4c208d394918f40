"""Source filtering: latching, the SDP's expected address, address normalisation, RTCP host."""

from __future__ import annotations

import pytest

from server.errors import RtpSessionError
from server.rtp.source import SourceFilter, normalise_host


@pytest.mark.parametrize(
    ("host", "normal"),
    [
        ("::ffff:10.0.0.5", "10.0.0.5"),
        ("10.0.0.5", "10.0.0.5"),
        ("2001:DB8::1", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("SBC.Example.com", "sbc.example.com"),
    ],
)
def test_normalise_host(host: str, normal: str) -> None:
    assert normalise_host(host) == normal


def test_latching() -> None:
    sources = SourceFilter()
    assert sources.accepts(("192.0.2.1", 4000)) and sources.accepts(("192.0.2.2", 4000))
    assert sources.accepts_rtcp(("192.0.2.9", 4001))  # nothing latched yet
    sources.latch(("192.0.2.1", 4000))
    sources.latch(("192.0.2.2", 4000))  # the first one stays
    assert sources.source == ("192.0.2.1", 4000)
    assert sources.accepts(("::ffff:192.0.2.1", 4000, 0, 0))
    assert not sources.accepts(("192.0.2.1", 4002)) and not sources.accepts(("192.0.2.2", 4000))
    assert sources.accepts_rtcp(("192.0.2.1", 4001)) and not sources.accepts_rtcp(("192.0.2.2", 4001))
    sources.relatch(("198.51.100.7", 5000))  # with latching the hint is not needed
    assert sources.source is None and sources.accepts(("192.0.2.2", 4000))


def test_expected_source() -> None:
    sources = SourceFilter(latching=False, expected=("192.0.2.1", 4000))
    assert not sources.accepts(("192.0.2.2", 4000))
    assert not sources.accepts(("192.0.2.1", 4001))
    assert not sources.accepts_rtcp(("192.0.2.2", 4001))
    assert sources.accepts(("192.0.2.1", 4000))
    sources.relatch(None)  # no new address: the old one stays expected
    assert sources.accepts(("192.0.2.1", 4000))
    sources.relatch(("192.0.2.2", 6000))
    assert not sources.accepts(("192.0.2.1", 4000)) and sources.accepts(("192.0.2.2", 6000))


def test_no_latching_needs_an_address() -> None:
    with pytest.raises(RtpSessionError):
        SourceFilter(latching=False)
