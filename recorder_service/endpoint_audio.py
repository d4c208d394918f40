"""Endpoint audio (admin setting ``endpoint_audio``, off by default): the agent's microphone and,
where the OS has one, the *monitor* of the default output (what the agent hears), captured with
sounddevice (PortAudio) on the server clock, as the segments' audio track.

Two channels, not a mix: left = microphone (the agent), right = what the agent hears (the
customer), like the SIP voice's two legs, so each side can be listened to and checked on its own
against the SIP recording; a mix could not be taken apart again.

Sources. PortAudio on Linux reaches PulseAudio (and PipeWire's pulse server) through ALSA's
``pulse`` device, which records the *default source*; libpulse reads ``PULSE_SOURCE`` when a
stream connects, so the monitor is opened with ``PULSE_SOURCE=@DEFAULT_MONITOR@`` (PulseAudio's
name for the default sink's monitor) set for that one open. Where there is no such device (other
OSes, no PulseAudio), only the microphone is recorded and the right channel is silent: the
heartbeat's log says so.

Time. Each block is stamped from its arrival (the callback's server time) and the stream's
sample counter through ``AudioClock`` (see audio_clock.py: the device's own ADC timestamps are
not usable here). Blocks go through a bounded queue (callbacks never block; a full queue drops
the block and counts it) to ``StereoAssembler`` in the consumer (the capture's encode thread),
which hands out contiguous stereo on the server clock. During a pause the audio is zeros.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from recorder_service.audio_clock import AudioClock, Block, StereoAssembler

log = logging.getLogger(__name__)

RATE = 48000
BLOCK = 480  # 10 ms: small blocks keep the arrival-time estimate tight
QUEUE_BLOCKS = 1000  # 10 s of one source
MIC, HEARD = 0, 1
MONITOR_SOURCE = "@DEFAULT_MONITOR@"
_ENV_LOCK = threading.Lock()  # PULSE_SOURCE is process-wide: one open at a time


class EndpointAudio:
    """Capture of both sources; ``take(until)`` from one consumer thread."""

    def __init__(
        self,
        server_now: Callable[[], float],
        *,
        rate: int = RATE,
        monitor: bool = True,
        stream_factory: Callable[..., Any] | None = None,
    ) -> None:
        self._now = server_now
        self.rate = rate
        self._monitor = monitor
        self._factory = stream_factory
        self._queue: queue.Queue[Block] = queue.Queue(maxsize=QUEUE_BLOCKS * 2)
        self._assembler = StereoAssembler(rate)
        self._clocks = [AudioClock(rate), AudioClock(rate)]
        self._counts = [0, 0]
        self._streams: list[Any] = []
        self._lock = threading.Lock()
        self.drops = 0  # blocks lost: queue full, or the device overflowed
        # Set while paused: blocks from then on are not even queued (the assembler's zeros stand
        # for them), so a long pause, when no segment takes audio, neither fills the queue nor
        # counts as drops. A float is read and written atomically: no lock in the callback.
        self._muted_from: float | None = None
        self.sources: list[str] = []  # what is recorded: "microphone", "what the agent hears"
        self.error = ""

    # -- device side ----------------------------------------------------------------------------

    def start(self) -> None:
        """Open the sources; one that cannot be opened is logged and left silent."""
        for source, name, pulse_source in (
            (MIC, "microphone", None),
            (HEARD, "what the agent hears", MONITOR_SOURCE),
        ):
            if source == HEARD and not self._monitor:
                continue
            try:
                stream = self._open(source, pulse_source)
                stream.start()
            except Exception as exc:  # PortAudio raises its own errors; the capture goes on
                problem = f"endpoint audio: cannot record {name}: {exc}"
                log.warning(problem)
                self.error = self.error or problem
                continue
            self._streams.append(stream)
            self.sources.append(name)
        if self.sources:
            log.info("endpoint audio at %d Hz: %s", self.rate, ", ".join(self.sources))

    def _open(self, source: int, pulse_source: str | None) -> Any:
        factory = self._factory
        device: Any = None
        if factory is None:
            import sounddevice  # the agent extra; only loaded when the admin turned audio on

            factory = sounddevice.InputStream
            if any(d.get("name") == "pulse" for d in sounddevice.query_devices()):
                device = "pulse"
            elif pulse_source is not None:
                raise RuntimeError("no PulseAudio/PipeWire device: the output's monitor is not reachable")

        def callback(indata: np.ndarray, frames: int, _time: Any, status: Any) -> None:
            self._on_block(source, indata, frames, bool(getattr(status, "input_overflow", False)))

        with _ENV_LOCK:
            previous = os.environ.get("PULSE_SOURCE")
            if pulse_source is not None:
                os.environ["PULSE_SOURCE"] = pulse_source
            try:
                return factory(
                    samplerate=self.rate,
                    channels=1,
                    dtype="float32",
                    blocksize=BLOCK,
                    latency="low",
                    device=device,
                    callback=callback,
                )
            finally:
                if pulse_source is not None:
                    if previous is None:
                        os.environ.pop("PULSE_SOURCE", None)
                    else:
                        os.environ["PULSE_SOURCE"] = previous

    def _on_block(self, source: int, indata: np.ndarray, frames: int, overflow: bool) -> None:
        """The device's callback thread: stamp the block, queue it, never block."""
        arrival = self._now()
        clock = self._clocks[source]
        if overflow:
            self.drops += 1
            clock.restart()
            self._counts[source] = 0
        first = self._counts[source]
        self._counts[source] = first + frames
        clock.observe(first, frames, arrival)
        at = clock.server_time(first)
        muted = self._muted_from
        if muted is not None and at >= muted:
            return
        samples = np.array(indata[:frames, 0], dtype=np.float32)
        try:
            self._queue.put_nowait(Block(source, at, samples))
        except queue.Full:
            self.drops += 1

    # -- consumer side --------------------------------------------------------------------------

    def take(self, until: float) -> tuple[float, np.ndarray] | None:
        """Stereo ``(start server time, float32[frames, 2])`` from the last take up to ``until``."""
        with self._lock:
            self._drain()
            return self._assembler.take(until)

    def discard_before(self, at: float) -> None:
        with self._lock:
            self._drain()
            self._assembler.discard_before(at)

    def pause(self, at: float) -> None:
        """Silence from server time ``at`` on (blocks already queued are zeroed from ``at``)."""
        with self._lock:
            self._muted_from = at
            self._assembler.pause(at)

    def resume(self, at: float) -> None:
        with self._lock:
            self._muted_from = None
            self._assembler.resume(at)

    def _drain(self) -> None:
        while True:
            try:
                block = self._queue.get_nowait()
            except queue.Empty:
                return
            self._assembler.add(block)

    def close(self) -> None:
        streams, self._streams = self._streams, []
        for stream in streams:
            try:
                stream.stop()
                stream.close()
            except Exception:  # closing a device must never mask the capture's outcome
                log.exception("closing an endpoint audio stream failed")
        if self.drops:
            log.warning("endpoint audio: %d block(s) dropped", self.drops)


def feed_segment(audio: EndpointAudio | None, encoder: Any, started_at: float, until: float) -> None:
    """Endpoint audio up to server time ``until`` into a segment's encoder whose pts 0 is
    ``started_at`` (the segment writer calls this as its video timeline advances, so the audio
    is never ahead of what a late pause could still cut)."""
    encode = getattr(encoder, "encode_audio", None)
    if audio is None or encode is None:
        return
    got = audio.take(until)
    if got is not None:
        at, samples = got
        encode(samples, round((at - started_at) * audio.rate))
