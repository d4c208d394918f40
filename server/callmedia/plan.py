"""What to open for a call's media: pure, so the SIP side plans a call without loading numpy or
the RTP stack, and the plan crosses into an RTP worker process as it is (a frozen dataclass).

One stream (a plain call, or a SIPREC session with one mixed stream) is a mono WAV. Two streams
(a SIPREC session's two legs, or a plain INVITE offering two) are a stereo WAV, the caller's
audio on the left channel and the agent's on the right.

The file has one rate for the whole call: the highest rate of any codec offered on any recorded
stream (16 kHz when G.722 is offered, else 8 kHz). Every offered codec is answered and the sender
may switch between them at any packet, so a leg that starts in G.711 and moves to G.722 (or the
other way) is written at that one rate: 8 kHz audio is upsampled, and G.722 that arrives in an
8 kHz file (a re-INVITE brought it, or a sender that ignored the answer) is downsampled.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CALLER, AGENT = 0, 1  # stereo channels: left, right
MAX_RECORDED_STREAMS = 2
WIDEBAND = frozenset({"G722"})  # codecs with 16 kHz audio


@dataclass(frozen=True, slots=True)
class StreamPlan:
    index: int  # m-line index in the offer (the answer's m-line for this stream)
    codec: str  # the initial codec (the first offered one we decode)
    payload_type: int
    telephone_event_pt: int | None
    channel: int | None  # CALLER / AGENT in a stereo file; None: the mono file's only stream
    remote: tuple[str, int] | None  # where the offer says the stream comes from
    # Every offered (PT, codec) we decode: a packet is decoded by its own payload type.
    payload_codecs: tuple[tuple[int, str], ...] = ()
    # RTP/SAVP: (SDES suite, master key || salt) the sender encrypts with (server.rtp.srtp).
    # A secret: out of repr (logs), crosses to the RTP worker over its local socket only.
    srtp: tuple[str, bytes] | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class MediaPlan:
    streams: tuple[StreamPlan, ...]
    sample_rate: int  # 16000 when a leg offers G.722 (wideband), else 8000
    latching: bool = True
    # The signalling peer's IP (the SBC/PBX the INVITE came from): with the SDP's connection
    # address, the only hosts a latch may come from (server.rtp.source).
    peer_host: str | None = None

    @property
    def stereo(self) -> bool:
        return len(self.streams) == 2


StreamSpec = (
    tuple[int, str, int, int | None, tuple[str, int] | None]
    | tuple[int, str, int, int | None, tuple[str, int] | None, tuple[tuple[int, str], ...]]
    | tuple[
        int,
        str,
        int,
        int | None,
        tuple[str, int] | None,
        tuple[tuple[int, str], ...],
        tuple[str, bytes] | None,
    ]
)


def plan_media(
    streams: list[StreamSpec],
    agent_streams: frozenset[int],
    *,
    latching: bool = True,
    peer_host: str | None = None,
) -> MediaPlan:
    """``streams``: (index, codec, payload_type, telephone_event_pt, remote[, payload_codecs[, srtp]]) of
    each accepted stream in offer order; at most two are recorded. With two, the agent's stream
    (named by the core) goes right and the other left; with no agent stream known, offer order
    decides."""
    chosen = [_spec(s) for s in streams[:MAX_RECORDED_STREAMS]]
    plans: list[StreamPlan] = []
    if len(chosen) == 1:
        plans.append(chosen[0])
    else:
        agent_index = next(
            (s.index for s in chosen if s.index in agent_streams), chosen[-1].index if chosen else None
        )
        for s in chosen:
            plans.append(
                StreamPlan(
                    s.index,
                    s.codec,
                    s.payload_type,
                    s.telephone_event_pt,
                    AGENT if s.index == agent_index else CALLER,
                    s.remote,
                    s.payload_codecs,
                    s.srtp,
                )
            )
    offered = {name for p in plans for name in (p.codec, *(n for _, n in p.payload_codecs))}
    rate = 16000 if offered & WIDEBAND else 8000
    return MediaPlan(tuple(plans), rate, latching, peer_host)


def _spec(spec: StreamSpec) -> StreamPlan:
    index, codec, pt, dtmf, remote = spec[:5]
    codecs: tuple[tuple[int, str], ...] = spec[5] if len(spec) > 5 else ()
    srtp: tuple[str, bytes] | None = spec[6] if len(spec) > 6 else None
    return StreamPlan(index, codec, pt, dtmf, None, remote, codecs or ((pt, codec),), srtp)
