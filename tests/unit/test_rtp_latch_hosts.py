"""Latching restricted to the call's peer: the signalling peer's host or the SDP's connection
address (any port) may be latched to; nobody else, before or after the latch."""

from __future__ import annotations

from server.rtp.source import SourceFilter


def test_only_the_peer_or_the_sdp_host_can_be_latched() -> None:
    sources = SourceFilter(True, ("10.0.0.5", 4000), peer_host="10.0.0.1")
    assert not sources.accepts(("10.9.9.9", 4000))  # a spray before the real stream
    assert not sources.accepts_rtcp(("10.9.9.9", 4001))
    assert sources.accepts(("10.0.0.5", 5555))  # the SDP's host, another port (NAT)
    assert sources.accepts(("10.0.0.1", 7000))  # the SBC itself sending the media
    assert sources.accepts(("::ffff:10.0.0.1", 7000))  # seen on a dual-stack socket
    sources.latch(("10.0.0.1", 7000))
    assert sources.accepts(("10.0.0.1", 7000))
    assert not sources.accepts(("10.0.0.5", 4000))  # once latched, only the latched source
    assert not sources.accepts(("10.9.9.9", 4000))


def test_relatch_takes_the_new_sdp_host() -> None:
    sources = SourceFilter(True, ("10.0.0.5", 4000), peer_host="10.0.0.1")
    sources.latch(("10.0.0.5", 4000))
    sources.relatch(("10.0.0.6", 4100))  # a re-INVITE moved the stream
    assert sources.accepts(("10.0.0.6", 4100)) and sources.accepts(("10.0.0.1", 1))
    assert not sources.accepts(("10.0.0.5", 4000))  # the old SDP host is no longer the stream's


def test_without_a_peer_latching_takes_anyone_as_before() -> None:
    sources = SourceFilter(True, None)
    assert sources.accepts(("10.9.9.9", 4000))


def test_without_latching_the_exact_sdp_address() -> None:
    sources = SourceFilter(False, ("10.0.0.5", 4000), peer_host="10.0.0.1")
    assert sources.accepts(("10.0.0.5", 4000))
    assert not sources.accepts(("10.0.0.5", 4002)) and not sources.accepts(("10.0.0.1", 4000))
