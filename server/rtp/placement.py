"""Where one RTP session's audio goes: payload → ``PayloadDecoder`` → ``VoiceTimeline`` →
``VoiceSink``, each packet's fate counted in the session's ``RtpStats``.

No sockets and no clock: the session hands in arrival times. ``place`` takes one packet's payload
or a run of them (``server.rtp.run``) and counts them all alike. After the first writer failure
nothing more is written (frame positions would no longer match the file); ``error`` says why.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from typing import Any

from server.errors import WavWriterError
from server.ratelog import RateLimitedLog
from server.rtp.decoder import PayloadDecoder
from server.rtp.sink import VoiceSink
from server.rtp.stats import RtpStats
from server.voice.timeline import Chunk, Verdict, VoiceTimeline

log = logging.getLogger("server.rtp.session")  # one logger for the session and its placement

# Bound once: an enum member lookup costs ~0.1 µs, and these are compared for every packet.
_ACCEPTED, _LATE, _DUPLICATE = Verdict.ACCEPTED, Verdict.LATE, Verdict.DUPLICATE
_AFTER_END = Verdict.AFTER_END


class Placement:
    def __init__(
        self, port: int, writer: VoiceSink, decoder: PayloadDecoder, stats: RtpStats, ratelog: RateLimitedLog
    ) -> None:
        self.port = port
        self.writer = writer
        self.decoder = decoder
        self.stats = stats
        self.timeline: VoiceTimeline | None = None  # from the answer on
        self.error: str | None = None  # set when the voice file could no longer be written
        self.last_audio_at = -math.inf  # arrival of the last packet the timeline accepted
        self._ratelog = ratelog

    def begin(self, answered_at: float) -> VoiceTimeline:
        """Sample 0 of the file is server time ``answered_at``."""
        self.timeline = VoiceTimeline(
            answered_at, sample_rate=self.decoder.output_rate, timestamp_scale=self.decoder.timestamp_scale
        )
        return self.timeline

    def place(
        self, ssrc: int, timestamp: int, payload: bytes, arrival: float, packets: int, last_arrival: float
    ) -> None:
        """Decode ``packets`` packets' payload (one, or a run) and place it at ``timestamp``."""
        timeline = self.timeline
        assert timeline is not None
        stats = self.stats
        try:
            samples = self.decoder.decode(ssrc, timestamp, payload)
        except ValueError as exc:  # the codec rejected the payload
            stats.dropped_malformed += packets
            self._ratelog.warning("decode", "RTP port %d: payload not decoded: %s", self.port, exc)
            return
        anchors = timeline.anchors
        verdict, chunks = timeline.push(ssrc, timestamp, samples, arrival)
        if timeline.anchors != anchors:
            stats.ssrc_changes = timeline.stats.ssrc_changes
            stats.reanchors = timeline.stats.reanchors
            if anchors:  # not the stream's first packet
                self._ratelog.warning("anchor", "RTP port %d: re-anchored the voice timeline", self.port)
        if verdict is _ACCEPTED:
            stats.written += packets
            self.last_audio_at = last_arrival
            if chunks:
                self.write(chunks)
        elif verdict is _LATE:
            stats.dropped_late += packets
        elif verdict is _DUPLICATE:
            stats.dropped_duplicate += packets
        elif verdict is _AFTER_END:
            stats.dropped_after_end += packets

    def pause(self, at: float) -> None:
        assert self.timeline is not None
        for start, end in self.timeline.pause(at):
            self.guard(self.writer.zero, start, end)

    def flush(self, until: float) -> None:
        """Silence up to what is final by server time ``until`` (the stream went quiet)."""
        assert self.timeline is not None
        self.write(self.timeline.flush(until))

    def finish(self, ended_at: float) -> None:
        """Pad or cut the file to ``ended_at`` (even if never answered); ``close_sink`` next."""
        timeline = self.timeline or self.begin(ended_at)
        result = timeline.finish(ended_at)
        if timeline.stats.overlapped:
            log.warning(
                "RTP port %d: %d accepted packets were covered by audio placed before them",
                self.port,
                timeline.stats.overlapped,
            )
        if cut := timeline.stats.discarded_at_end:
            self.stats.samples_after_end = cut
            log.warning(
                "RTP port %d: %.0f ms of audio fell after the end of the call and was cut",
                self.port,
                1000 * cut / timeline.sample_rate,
            )
        self.write(result.chunks)
        self.guard(self.writer.truncate, result.length)

    def close_sink(self) -> None:
        """Finalise the sink (exact sizes, fsync): blocks on the disk, so the session calls it
        off the event loop."""
        try:
            self.writer.close()
        except WavWriterError as exc:
            self.error = self.stats.voice_error = str(exc)
            log.error("RTP port %d: voice file not finalised: %s", self.port, exc)
        self.stats.samples_written = self.writer.samples_written

    def write(self, chunks: Iterable[Chunk]) -> None:
        write = self.writer.write
        for chunk in chunks:
            if not self.guard(write, chunk.samples):
                return

    def guard(self, action: Callable[..., None], *args: Any) -> bool:
        """Run a writer operation; after a failure stop writing (positions would be wrong)."""
        if self.error is not None:
            return False
        try:
            action(*args)
        except WavWriterError as exc:
            self.error = self.stats.voice_error = str(exc)  # in the stats: the coordinator reads them
            log.error("RTP port %d: voice file write failed, recording stops: %s", self.port, exc)
            return False
        return True
