"""The watch on undecodable payload types (server/rtp/payload_types.py), on a clock the test
holds: a stream that carries nothing decodable for ``UNDECODABLE_SECONDS`` fails visibly even with
few packets (a sender at a low packet rate, or one that sends in bursts), and a stream with many
undecodable packets fails at once only when they outnumber its audio."""

from __future__ import annotations

import logging

from server.ratelog import RateLimitedLog
from server.rtp.codecs import CODECS
from server.rtp.decoder import PayloadDecoder
from server.rtp.payload_types import UNDECODABLE_SECONDS, PayloadTypes
from server.rtp.stats import RtpStats

G729 = 18  # a static type Tandem does not decode


def _watch(now: list[float]) -> tuple[PayloadTypes, RtpStats]:
    stats = RtpStats()
    pcmu = PayloadDecoder(CODECS["PCMU"])
    types = PayloadTypes(
        port=40000,
        stats=stats,
        ratelog=RateLimitedLog(logging.getLogger("test.payload_types")),
        clock=lambda: now[0],
        decoder=pcmu,
        payload_type=0,
        codecs=None,
        comfort_noise=frozenset(),
    )
    return types, stats


def test_a_few_undecodable_packets_fail_the_stream_after_the_time_limit_not_before() -> None:
    now = [100.0]
    types, stats = _watch(now)
    for _ in range(10):  # ten packets spread over just under the limit
        types.undecodable(G729, pending=0)
        now[0] += (UNDECODABLE_SECONDS - 0.01) / 9
    now[0] = 100.0 + UNDECODABLE_SECONDS - 0.001
    types.undecodable(G729, pending=0)
    assert stats.media_error is None
    now[0] = 100.0 + UNDECODABLE_SECONDS
    types.undecodable(G729, pending=0)
    assert stats.media_error is not None and "payload type 18" in stats.media_error
    assert stats.dropped_payload_type == 12 and stats.undecodable_payload_type == G729


def test_many_undecodable_packets_fail_at_once_only_when_they_outnumber_the_audio() -> None:
    now = [5.0]
    types, stats = _watch(now)
    stats.written = 150  # mostly audio: a burst of another type is counted, not a failure
    for _ in range(120):
        types.undecodable(G729, pending=0)
    assert stats.media_error is None
    for _ in range(31):  # now more undecodable packets than audio (151 > 150), still at t = 5 s
        types.undecodable(G729, pending=0)
    assert stats.media_error is not None


def test_packets_waiting_to_be_written_count_as_audio() -> None:
    now = [5.0]
    types, stats = _watch(now)
    for _ in range(120):
        types.undecodable(G729, pending=200)
    assert stats.media_error is None
