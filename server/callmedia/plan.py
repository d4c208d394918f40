"""What to open for a call's media: pure, so the SIP side plans a call without loading numpy or
the RTP stack, and the plan crosses into an RTP worker process as it is (a frozen dataclass).

One stream (a plain call, or a SIPREC session with one mixed stream) is a mono WAV. Two streams
(a SIPREC session's two legs, or a plain INVITE offering two) are a stereo WAV, the caller's
audio on the left channel and the agent's on the right.
"""

from __future__ import annotations

from dataclasses import dataclass

CALLER, AGENT = 0, 1  # stereo channels: left, right
MAX_RECORDED_STREAMS = 2


@dataclass(frozen=True, slots=True)
class StreamPlan:
    index: int  # m-line index in the offer (the answer's m-line for this stream)
    codec: str
    payload_type: int
    telephone_event_pt: int | None
    channel: int | None  # CALLER / AGENT in a stereo file; None: the mono file's only stream
    remote: tuple[str, int] | None  # where the offer says the stream comes from


@dataclass(frozen=True, slots=True)
class MediaPlan:
    streams: tuple[StreamPlan, ...]
    sample_rate: int  # 16000 when a leg is G.722 (wideband), else 8000
    latching: bool = True
    # The signalling peer's IP (the SBC/PBX the INVITE came from): with the SDP's connection
    # address, the only hosts a latch may come from (server.rtp.source).
    peer_host: str | None = None

    @property
    def stereo(self) -> bool:
        return len(self.streams) == 2


def plan_media(
    streams: list[tuple[int, str, int, int | None, tuple[str, int] | None]],
    agent_streams: frozenset[int],
    *,
    latching: bool = True,
    peer_host: str | None = None,
) -> MediaPlan:
    """``streams``: (index, codec, payload_type, telephone_event_pt, remote) of each accepted
    stream in offer order; at most two are recorded. With two, the agent's stream (named by the
    core) goes right and the other left; with no agent stream known, offer order decides."""
    chosen = streams[:MAX_RECORDED_STREAMS]
    plans: list[StreamPlan] = []
    if len(chosen) == 1:
        index, codec, pt, dtmf, remote = chosen[0]
        plans.append(StreamPlan(index, codec, pt, dtmf, None, remote))
    else:
        agent_index = next((s[0] for s in chosen if s[0] in agent_streams), chosen[-1][0] if chosen else None)
        for index, codec, pt, dtmf, remote in chosen:
            plans.append(
                StreamPlan(index, codec, pt, dtmf, AGENT if index == agent_index else CALLER, remote)
            )
    rate = 16000 if any(p.codec == "G722" for p in plans) else 8000
    return MediaPlan(tuple(plans), rate, latching, peer_host)
