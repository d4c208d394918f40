"""Counters of one RTP session, read by the SIP engine for logs and call records."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class RtpStats:
    received: int = 0  # datagrams of any kind
    written: int = 0  # audio packets the timeline accepted
    dropped_malformed: int = 0
    dropped_late: int = 0  # their place in the file was already written
    dropped_duplicate: int = 0
    dropped_foreign: int = 0  # from another source address than the latched one
    dropped_payload_type: int = 0  # not the negotiated codec (telephone-event, CN, ...)
    dropped_early: int = 0  # before ``start`` (the call was not answered yet)
    dropped_after_end: int = 0
    rtcp: int = 0  # RTCP multiplexed on the RTP port: recognised, not audio
    ssrc_changes: int = 0
    reanchors: int = 0
    samples_written: int = 0
