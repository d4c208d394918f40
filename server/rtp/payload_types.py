"""The payload types one RTP session decodes, their decoders, and the watch on undecodable ones.

**Every decodable payload type.** The answer lists every offered type we decode, and a sender may
switch between them at any packet (RFC 3264 §5.1). Each packet is decoded by its own payload
type: the offered mapping plus the static PCMU/PCMA/G.722 ones (a sender that ignores the answer
is still recorded). All these codecs have an 8 kHz RTP clock, so the timeline's timestamp scale
is the same for each. A payload type we cannot decode is counted; a stream that has carried
nothing else for ``UNDECODABLE_SECONDS`` (or mostly such packets) sets ``stats.media_error``,
which the coordinator turns into a visible voice failure (``server.calls.voice_failure``)
instead of a silent file.

Pure logic, used by ``server.rtp.session`` off its fast path only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from server.errors import RtpSessionError
from server.ratelog import RateLimitedLog
from server.rtp.codecs import CODECS, COMFORT_NOISE_PT, AudioCodec
from server.rtp.decoder import PayloadDecoder
from server.rtp.stats import RtpStats

log = logging.getLogger("server.rtp.session")  # one logger for the session and its parts
UNDECODABLE_SECONDS = 2.0  # only undecodable packets for this long: the stream's voice has failed
_UNDECODABLE_SHARE_MIN = 100  # ... or at least this many, and more of them than audio packets


def payload_decoders(
    audio_pt: int, codec: AudioCodec, offered: Mapping[int, str] | None, telephone_event_pt: int | None
) -> dict[int, AudioCodec]:
    """Payload type → codec for every type a session decodes: the static PCMU/PCMA/G.722 types,
    then the offered mapping over them, then the negotiated type; never telephone-event or CN."""
    codecs = {c.payload_type: c for c in CODECS.values()}
    for pt, name in (offered or {}).items():
        if name.upper() in CODECS:
            codecs[pt] = CODECS[name.upper()]
    codecs[audio_pt] = codec
    for pt, name in (offered or {}).items():
        if name.upper() == "CN":
            codecs.pop(pt, None)
    codecs.pop(COMFORT_NOISE_PT, None)
    if telephone_event_pt is not None:
        codecs.pop(telephone_event_pt, None)
    return codecs


class PayloadTypes:
    """One session's decodable types (``codecs``), comfort-noise types (RFC 3389, static or
    dynamic), decoders made on first use (G.722's keeps state), and undecodable packets."""

    def __init__(
        self,
        port: int,
        stats: RtpStats,
        ratelog: RateLimitedLog,
        clock: Callable[[], float],
        decoder: PayloadDecoder,
        payload_type: int,
        codecs: Mapping[int, AudioCodec] | None,
        comfort_noise: frozenset[int],
    ) -> None:
        self.codecs = dict(codecs or {payload_type: decoder.codec})
        self.comfort_noise = frozenset({COMFORT_NOISE_PT, *comfort_noise})
        self.undecodable_since: float | None = None  # first of an unbroken series, server time
        self._decoders: dict[int, PayloadDecoder] = {payload_type: decoder}
        self._port = port
        self._stats = stats
        self._ratelog = ratelog
        self._clock = clock

    def decoder(self, payload_type: int, current: PayloadDecoder) -> PayloadDecoder:
        """The decoder of a decodable ``payload_type`` into ``current``'s file rate (made once)."""
        decoder = self._decoders.get(payload_type)
        if decoder is None:
            decoder = PayloadDecoder(self.codecs[payload_type], current.output_rate)
            if decoder.timestamp_scale != current.timestamp_scale:  # not with 8 kHz clocks
                raise RtpSessionError(f"payload type {payload_type} has another RTP clock rate")
            self._decoders[payload_type] = decoder
        return decoder

    def undecodable(self, payload_type: int, pending: int) -> None:
        """A packet of a payload type we cannot decode: counted; a stream that carries nothing
        else for ``UNDECODABLE_SECONDS``, or mostly such packets (``pending``: audio packets
        received but not yet counted as written), is a visible failure."""
        stats = self._stats
        stats.dropped_payload_type += 1
        stats.undecodable_payload_type = payload_type
        self._ratelog.warning(
            "payload_type", "RTP port %d: dropped payload type %d", self._port, payload_type
        )
        now = self._clock()
        if self.undecodable_since is None:
            self.undecodable_since = now
        if stats.media_error is not None:
            return
        count = stats.dropped_payload_type
        if now - self.undecodable_since >= UNDECODABLE_SECONDS or (
            count >= _UNDECODABLE_SHARE_MIN and count > stats.written + pending
        ):
            decodable = ", ".join(f"{pt} {c.name}" for pt, c in sorted(self.codecs.items()))
            stats.media_error = (
                f"undecodable audio: {count} RTP packets of payload type {payload_type}, which was "
                f"not negotiated (decodable: {decodable})"
            )
            log.error("RTP port %d: %s", self._port, stats.media_error)
