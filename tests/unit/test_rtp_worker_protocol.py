"""The RTP worker protocol's framing (round trip, oversize, truncated, foreign classes) and the
pure helpers of the pool: port sub-ranges and restart back-off."""

from __future__ import annotations

import os
import pickle
import struct

import pytest

from server.callmedia.plan import MediaPlan, StreamPlan
from server.errors import FrameError
from server.rtp.workers.protocol import (
    COMMANDS,
    MAX_FRAME,
    REPLIES,
    Close,
    Closed,
    Command,
    Failed,
    FrameDecoder,
    Open,
    Opened,
    Pause,
    Relatch,
    Reply,
    Report,
    Resume,
    SessionReport,
    Start,
    encode_frame,
)
from server.rtp.workers.ranges import split_port_range
from tandem_protocol.backoff import RestartBackoff

PLAN = MediaPlan(
    (StreamPlan(0, "PCMU", 0, 101, 0, ("10.0.0.1", 4000)), StreamPlan(1, "G722", 9, None, 1, None)), 16000
)
COMMAND_SAMPLES: list[Command | Reply] = [
    Open(1, "127.0.0.1", (20000, 20999), "/data/live/x/voice.wav", PLAN),
    Start(1, 1700000000.25),
    Pause(1, 1700000001.5),
    Resume(1, 1700000002.0),
    Relatch(1, 0, ("10.0.0.2", 4002)),
    Relatch(1, 1, None),
    Close(1, 1700000009.75),
]
REPLY_SAMPLES: list[Command | Reply] = [
    Opened(1, {0: 20000, 1: 20002}),
    Closed(1, {"0": {"written": 10, "rtcp_cname": "a@b", "jitter": None, "rtcp_bye": True}}),
    Failed(2, "Open", "PortRangeExhaustedError: no free even RTP port"),
    Report((SessionReport(1, 1700000003.5, {"0": {"written": 3}}), SessionReport(3, None, {}))),
    Report(()),
]


def test_every_message_survives_a_round_trip_split_at_every_byte() -> None:
    for accepted, samples in ((COMMANDS, COMMAND_SAMPLES), (REPLIES, REPLY_SAMPLES)):
        stream = b"".join(encode_frame(m) for m in samples)
        whole = list(FrameDecoder(accepted).feed(stream))
        assert whole == samples
        decoder = FrameDecoder(accepted)
        trickled = [m for i in range(len(stream)) for m in decoder.feed(stream[i : i + 1])]
        assert trickled == samples
        decoder.finish()  # nothing left over
        assert decoder.buffered == 0


def test_a_frame_length_above_the_bound_fails_before_the_payload_arrives() -> None:
    decoder = FrameDecoder(REPLIES)
    with pytest.raises(FrameError, match="frame length"):
        list(decoder.feed(struct.pack("!I", MAX_FRAME + 1) + b"\x80"))
    with pytest.raises(FrameError, match="frame length"):
        list(FrameDecoder(REPLIES).feed(struct.pack("!I", 0)))
    small = FrameDecoder(REPLIES, max_frame=64)
    with pytest.raises(FrameError):
        list(small.feed(encode_frame(Report(tuple(SessionReport(i, None, {}) for i in range(50))))))


def test_encoding_refuses_a_message_above_the_bound() -> None:
    huge = Closed(1, {"0": {"cname": "x" * (MAX_FRAME + 1)}})
    with pytest.raises(FrameError, match="exceeds"):
        encode_frame(huge)


def test_a_truncated_frame_is_an_error_at_the_end_of_the_stream() -> None:
    frame = encode_frame(Opened(7, {0: 20000}))
    for cut in (1, 3, 4, len(frame) - 1):
        decoder = FrameDecoder(REPLIES)
        assert list(decoder.feed(frame[:cut])) == []
        with pytest.raises(FrameError, match="inside a frame"):
            decoder.finish()


def test_messages_before_a_bad_frame_are_still_delivered() -> None:
    good = encode_frame(Opened(7, {0: 20000}))
    garbage = struct.pack("!I", 5) + b"\x00\x01\x02\x03\x04"
    decoder = FrameDecoder(REPLIES)
    received = []
    with pytest.raises(FrameError, match="undecodable"):
        for message in decoder.feed(good + garbage):
            received.append(message)
    assert received == [Opened(7, {0: 20000})]


def test_foreign_classes_and_wrong_directions_are_refused() -> None:
    class_ref = pickle.dumps(ValueError("boom"))  # resolves builtins.ValueError: not a message
    with pytest.raises(FrameError, match="not a message class"):
        list(FrameDecoder(REPLIES).feed(struct.pack("!I", len(class_ref)) + class_ref))
    plain = pickle.dumps({"session": 1})  # no class at all, but not a message either
    with pytest.raises(FrameError, match="unexpected message dict"):
        list(FrameDecoder(REPLIES).feed(struct.pack("!I", len(plain)) + plain))
    # A command arriving where replies are expected (and vice versa) is a corrupt stream.
    with pytest.raises(FrameError, match="unexpected message Start"):
        list(FrameDecoder(REPLIES).feed(encode_frame(Start(1, 0.0))))
    with pytest.raises(FrameError, match="unexpected message Opened"):
        list(FrameDecoder(COMMANDS).feed(encode_frame(Opened(1, {}))))


def test_port_sub_ranges_are_disjoint_even_aligned_and_cover_the_range() -> None:
    parts = split_port_range((20000, 29999), 3)
    assert parts == [(20000, 23331), (23332, 26665), (26666, 29999)]
    assert split_port_range((41000, 41999), 2) == [(41000, 41499), (41500, 41999)]
    # An odd low port starts at the next even one; an even high port keeps its pair (RTCP high+1).
    assert split_port_range((20001, 20010), 2) == [(20002, 20005), (20006, 20010)]
    # Fewer pairs than workers: the extra workers get no range.
    assert split_port_range((20000, 20003), 3) == [None, (20000, 20001), (20002, 20003)]
    assert split_port_range((20001, 20001), 2) == [None, None]
    for low, high, n in ((20000, 29999, 7), (1025, 1100, 4), (30000, 30001, 1)):
        ranges = [r for r in split_port_range((low, high), n) if r is not None]
        ports = [p for a, b in ranges for p in range(a, b + 1, 2)]
        assert all(a % 2 == 0 for a, _ in ranges)
        assert ports == list(range(low + low % 2, high + 1, 2))  # every pair exactly once
    with pytest.raises(ValueError):
        split_port_range((20000, 20999), 0)


def test_restart_backoff_doubles_on_quick_deaths_and_resets_after_a_stable_run() -> None:
    backoff = RestartBackoff(initial=0.5, maximum=4.0, stable_after=60.0)
    assert [backoff.delay(1.0) for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff.delay(120.0) == 0.5
    assert backoff.delay(0.1) == 1.0
    with pytest.raises(ValueError):
        RestartBackoff(initial=0.0)


def test_rtp_workers_default_to_the_cpus_this_process_may_use() -> None:
    from server.settings import Settings, load_settings

    assert Settings().rtp_workers == max(1, len(os.sched_getaffinity(0)))
    assert load_settings(None, rtp_workers=0).rtp_workers == 0  # in-process media
