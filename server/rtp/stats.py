"""Counters of one RTP session, read by the SIP engine for logs and call records."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(slots=True)
class RtpStats:
    received: int = 0  # datagrams of any kind on the RTP port
    written: int = 0  # audio packets the timeline accepted
    dropped_malformed: int = 0  # not RTP, or a payload the codec rejected
    dropped_late: int = 0  # their place in the file was already written
    dropped_duplicate: int = 0
    # Not from the latched (or, without latching, the expected) source; before latching, not from
    # the signalling peer's host or the SDP's connection address (a spray at the port).
    dropped_foreign: int = 0
    dropped_payload_type: int = 0  # a payload type we cannot decode (nor telephone-event, nor CN)
    undecodable_payload_type: int | None = None  # the last such payload type seen
    codec_changes: int = 0  # the sender switched to another of the decodable payload types
    dropped_dtmf: int = 0  # RFC 4733 telephone-event: never audio, its span stays silent
    dropped_cn: int = 0  # RFC 3389 comfort noise (PT 13): recorded as silence
    dropped_early: int = 0  # before ``start`` (the call was not answered yet)
    dropped_after_end: int = 0
    ssrc_changes: int = 0
    reanchors: int = 0
    samples_written: int = 0  # updated every tick and at close; `RtpSession.samples_written` is live
    samples_after_end: int = 0  # accepted audio that fell after the call's end (BYE), so cut: set at close
    voice_error: str | None = None  # why the voice file could no longer be written (e.g. disk full)
    # Why the stream's audio cannot be recorded though packets arrive (only undecodable payload
    # types for seconds): the coordinator fails the interaction's voice with it, visibly.
    media_error: str | None = None
    srtp_auth_failed: int = 0  # SRTP packets that failed authentication (wrong key, or not ours)
    # RTCP, on the RTCP port (RTP port + 1) or multiplexed on the RTP port (RFC 5761).
    rtcp: int = 0  # RTCP datagrams received
    rtcp_malformed: int = 0
    rtcp_foreign: int = 0  # from another host than the media source's
    rtcp_sr: int = 0  # sender reports seen
    rtcp_rr: int = 0  # receiver reports seen
    rtcp_bye: bool = False
    rtcp_cname: str | None = None  # the sender's SDES CNAME
    # From the last sender report: what the sender says it sent.
    sender_ssrc: int | None = None
    sender_packets: int | None = None
    sender_octets: int | None = None
    # From the last report block (in an SR or RR): what its reporter says it received.
    report_ssrc: int | None = None  # the source the block is about
    fraction_lost: float | None = None  # 0..1, over the reporter's last interval
    cumulative_lost: int | None = None  # may be negative (duplicates), RFC 3550 §6.4.1
    jitter: int | None = None  # interarrival jitter, in RTP timestamp units

    def as_dict(self) -> dict[str, int | float | bool | str | None]:
        """Every counter by name, for logs and the call's metadata."""
        return {field.name: getattr(self, field.name) for field in fields(self)}
