"""The running recorder: spool recovery, uploader, controller and event channel wired together.

Everything here is glue; the rules live in the controller, the frame gate and the uploader. The
controller runs on one worker thread so that commands stay strictly ordered while finalising a
capture (which blocks for a moment) does not stall the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from recorder_service.capture import Grabber, MssGrabber
from recorder_service.channel import EventChannel
from recorder_service.clock import ClockSync, MonotonicWallClock
from recorder_service.controller import Controller
from recorder_service.errors import CaptureError
from recorder_service.session import CaptureSession
from recorder_service.spool import Spool, SpoolState
from recorder_service.uploader import Uploader
from tandem_protocol.events import Envelope, ScreenState, ScreenStatus

log = logging.getLogger(__name__)


class SessionCapture:
    """The controller's ``CaptureBackend``: one ``CaptureSession`` at a time."""

    def __init__(self, spool: Spool, clock: ClockSync, grabber_factory: Callable[[], Grabber]) -> None:
        self._spool = spool
        self._clock = clock
        self._grabber_factory = grabber_factory
        self._sessions: dict[str, CaptureSession] = {}

    def start(self, interaction_id: str, fps: float, paused_at: float | None) -> None:
        try:
            session = CaptureSession(
                interaction_id,
                fps=fps,
                spool=self._spool,
                server_now=self._clock.server_now,
                grabber=self._grabber_factory(),
            )
        except ValueError as exc:
            raise CaptureError(f"cannot capture at {fps} fps: {exc}") from exc
        session.start(paused_at=paused_at)
        self._sessions[interaction_id] = session
        log.info("capturing screen for %s at %g fps%s", interaction_id, fps, " (paused)" if paused_at else "")

    def pause(self, interaction_id: str, at: float) -> int:
        return self._sessions[interaction_id].pause(at)

    def resume(self, interaction_id: str, at: float) -> None:
        self._sessions[interaction_id].resume(at)

    def stop(self, interaction_id: str, at: float) -> str:
        session = self._sessions.pop(interaction_id)
        manifest = session.stop(at)
        return manifest.error if manifest.state != SpoolState.FINISHED else ""


def _known_interactions(spool: Spool) -> list[tuple[str, ScreenState]]:
    known = []
    for manifest in spool.manifests():
        state = ScreenState.FAILED if manifest.state == SpoolState.FAILED else ScreenState.STOPPED
        known.append((manifest.interaction_id, state))
    return known


async def run_service(
    server_url: str,
    token: Callable[[], str],
    spool: Spool,
    *,
    fps: float,
    monitor: int,
    stop: asyncio.Event | None = None,
) -> None:
    """Run until SIGTERM/SIGINT (or ``stop`` is set), then finalise and return."""
    stopping = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    _install_signal_handlers(loop, stopping)

    clock = ClockSync(MonotonicWallClock())
    uploader = Uploader(spool, server_url, token)
    recovered = uploader.requeue_spool()
    if recovered:
        log.info("re-queued %d capture(s) from the spool: %s", len(recovered), ", ".join(recovered))
    controller = Controller(
        SessionCapture(spool, clock, lambda: MssGrabber(monitor)),
        uploader,
        clock.server_now,
        default_fps=fps,
        done=_known_interactions(spool),
    )
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="controller")

    async def dispatch(envelope: Envelope) -> list[ScreenStatus]:
        if stopping.is_set():
            return []
        return await loop.run_in_executor(worker, controller.handle, envelope)

    channel = EventChannel(server_url, token, clock, dispatch)
    channel_stop = asyncio.Event()
    uploader.start()
    channel_task = asyncio.create_task(channel.run(channel_stop))
    try:
        await stopping.wait()
        log.info("stopping: finalising any capture in progress")
        statuses = await loop.run_in_executor(worker, controller.shutdown)
        try:
            await channel.send_statuses(statuses)
        except Exception as exc:  # the ack is a courtesy; the spool keeps the file regardless
            log.warning("could not send final status: %s", exc)
    finally:
        channel_stop.set()
        await channel_task
        worker.shutdown(wait=True)
        await asyncio.to_thread(uploader.stop)
    log.info("recorder stopped")


def _install_signal_handlers(loop: asyncio.AbstractEventLoop, stopping: asyncio.Event) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stopping.set)
        except (NotImplementedError, RuntimeError):
            if sys.platform == "win32":  # no loop signal handlers on Windows: fall back
                signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stopping.set))
