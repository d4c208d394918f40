"""The media of one recorded call: one RTP session per recorded stream, into one voice file.

A stereo file's two channels are each fed by their own RTP session and timeline, so loss on one
leg never shortens or shifts the other. ``open_call_media`` opens the sockets and the file for a
``server.callmedia.plan.MediaPlan``; the SIP side sees the result only as the ``MediaSession``
of ``server.callmedia.session``, in this process or (``server.rtp.workers``) in a worker process.
numpy and the RTP stack load only when the first call is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from server.callmedia.plan import MediaPlan, StreamPlan
from server.rtp.offloop import create_off_loop, finalise_off_loop

if TYPE_CHECKING:
    from server.rtp.ports import ReservedPair
    from server.rtp.session import RtpSession
    from server.voice.stereo_writer import StereoWavWriter

log = logging.getLogger(__name__)

_DRAIN_ROUNDS = 64  # polls at most while closing (asyncio's loop: one datagram per socket each)


class CallMedia:
    """``MediaSession`` over the RTP sessions of one call; ``ports`` maps m-line index → port."""

    def __init__(self, sessions: dict[int, RtpSession], stereo: StereoWavWriter | None) -> None:
        self._sessions = sessions
        self._stereo = stereo
        self._started_at: float | None = None
        self.stopped = False

    @property
    def ports(self) -> dict[int, int]:
        return {index: s.port for index, s in self._sessions.items()}

    @property
    def port(self) -> int:
        return next(iter(self._sessions.values())).port

    @property
    def last_packet_at(self) -> float | None:
        """The most silent stream's last packet (or the start): what the RTP timeout watches."""
        times = [s.last_packet_at or self._started_at for s in self._sessions.values()]
        known = [t for t in times if t is not None]
        return min(known) if len(known) == len(times) and known else None

    def start(self, answered_at: float) -> None:
        self._started_at = answered_at
        for session in self._sessions.values():
            session.start(answered_at)

    def pause(self, at: float) -> None:
        for session in self._sessions.values():
            session.pause(at)

    def resume(self, at: float) -> None:
        for session in self._sessions.values():
            session.resume(at)

    def relatch(self, index: int, remote: tuple[str, int] | None) -> None:
        """A re-INVITE moved the stream: accept the new source (latching starts over)."""
        session = self._sessions.get(index)
        if session is not None:
            session.relatch(remote)

    async def close(self, ended_at: float) -> None:
        """Finalise the file padded to ``ended_at`` (stereo: both channels); idempotent."""
        if not self.stopped:
            self.stopped = True
            await self._drain()
        if self._stereo is not None:
            # Each timeline pads its own channel to the end: no lag-filling from here on.
            with contextlib.suppress(Exception):
                self._stereo.end_of_call()
        results = await asyncio.gather(
            *(s.close(ended_at) for s in self._sessions.values()), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                log.error("closing an RTP session failed: %r", result)
        if self._stereo is not None and not self._stereo.closed:  # a session's close failed
            await finalise_off_loop(self._stereo.close)

    def stats(self) -> dict[str, object]:
        return {str(index): s.stats.as_dict() for index, s in self._sessions.items()}

    async def _drain(self) -> None:
        """Read what already waits in the sockets: the BYE may have been read (maybe by another
        process) before the call's last datagrams. Both loops run a ``sleep(0)`` continuation
        ahead of the next poll's callbacks, so only a second one resumes after a poll; asyncio's
        own loop reads one datagram per socket and poll, hence the repeat while reads go on."""
        for _ in range(_DRAIN_ROUNDS):
            before = self._datagrams()
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            if self._datagrams() == before:
                return

    def _datagrams(self) -> int:
        return sum(s.stats.received + s.stats.rtcp for s in self._sessions.values())


async def open_call_media(
    bind_host: str, port_range: tuple[int, int], voice_path: Path, plan: MediaPlan
) -> CallMedia:
    """Bind one even port per stream and create the voice file; on failure nothing stays open.

    All the call's ports are reserved before anything is awaited, so its streams get neighbouring
    pairs even while other calls are being set up; the file is created off the event loop."""
    from server.rtp.ports import reserve_pair
    from server.voice.stereo_writer import StereoWavWriter

    sessions: dict[int, RtpSession] = {}
    stereo: StereoWavWriter | None = None
    reserved: list[ReservedPair] = []
    try:
        for _ in plan.streams:
            reserved.append(reserve_pair(bind_host, *port_range))
        if plan.stereo:
            rate = plan.sample_rate
            stereo = await create_off_loop(
                lambda: StereoWavWriter(voice_path, sample_rate=rate), _close_stereo
            )
        # The streams open side by side: on a worker running behind, each await is a loop
        # iteration, and one after the other they made a call's set-up take seconds.
        opening = [
            asyncio.ensure_future(_open_stream(stream, pair, stereo, bind_host, port_range, voice_path, plan))
            for stream, pair in zip(plan.streams, reserved, strict=True)
        ]
        reserved = []  # each RtpSession.open owns its pair from here, failing or not
        try:
            await asyncio.wait(opening)
        finally:
            for stream, task in zip(plan.streams, opening, strict=True):
                if task.done() and not task.cancelled() and task.exception() is None:
                    sessions[stream.index] = task.result()
                else:
                    task.cancel()
        for task in opening:
            if (error := task.exception()) is not None:
                raise error
    except BaseException:
        for pair in reserved:
            pair.close()
        for session in sessions.values():
            with contextlib.suppress(Exception):
                await session.close(0.0)
        if stereo is not None:
            with contextlib.suppress(Exception):
                await finalise_off_loop(functools.partial(_close_stereo, stereo))
        raise
    return CallMedia(sessions, stereo)


async def _open_stream(
    stream: StreamPlan,
    pair: ReservedPair,
    stereo: StereoWavWriter | None,
    bind_host: str,
    port_range: tuple[int, int],
    voice_path: Path,
    plan: MediaPlan,
) -> RtpSession:
    from server.rtp.session import RtpSession
    from server.voice.stereo_writer import Channel

    channel = stream.channel
    writer = stereo.channel(Channel(channel)) if stereo is not None and channel is not None else None
    return await RtpSession.open(
        bind_host,
        port_range,
        None if writer is not None else voice_path,
        stream.codec,
        writer=writer,
        sample_rate=plan.sample_rate,
        payload_type=stream.payload_type,
        telephone_event_pt=stream.telephone_event_pt,
        latching=plan.latching,
        expected_source=stream.remote,
        peer_host=plan.peer_host,
        reserved=pair,
        payload_codecs=dict(stream.payload_codecs),
        srtp=stream.srtp,
    )


def _close_stereo(stereo: StereoWavWriter) -> None:
    stereo.close(0)
