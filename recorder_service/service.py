"""The running recorder: spool recovery, uploader, controller and event channel wired together.

Everything here is glue; the rules live in the controller, the capture session, the spool and the
uploader. The controller runs on one worker thread so that commands stay strictly ordered while
finalising a capture (which blocks for a moment) does not stall the event loop.

Every start of the process is a new *run* (its id goes with every segment): segments of a run
killed mid-call were closed out by ``Spool.recover`` and are uploaded; when the server's
``state`` says the call still goes on, the controller starts capturing again in the new run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

from recorder_service.capture import Grabber
from recorder_service.channel import EventChannel
from recorder_service.clock import ClockSync, MonotonicWallClock
from recorder_service.controller import Controller
from recorder_service.encoder import AudioFormat, ScreenEncoder
from recorder_service.endpoint_audio import EndpointAudio
from recorder_service.errors import CaptureError
from recorder_service.frame_pipeline import build_grabber
from recorder_service.heartbeat import PolicyWatch, start_heartbeat
from recorder_service.segment_uploader import SegmentUploader
from recorder_service.segment_writer import Encoder
from recorder_service.session import CaptureSession
from recorder_service.spool import Spool
from recorder_service.updater.activity import CallWatch, activity_of
from recorder_service.updater.in_recorder import SelfUpdate
from tandem_protocol.events import (
    ClientMessageType,
    Envelope,
    EventType,
    ScreenAutoPause,
    ScreenState,
    ScreenStatus,
)
from tandem_protocol.recorder_policy import RecorderPolicy

log = logging.getLogger(__name__)

StatusSink = Callable[[ScreenStatus], None]
MAX_RESENT_SPANS = 50


def new_run_id() -> str:
    """Sortable by start time, unique across PCs and restarts within a second."""
    return time.strftime("r%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


class SessionCapture:
    """The controller's ``CaptureBackend``: one ``CaptureSession`` at a time, in this run."""

    def __init__(
        self,
        spool: Spool,
        clock: ClockSync,
        run: str,
        *,
        grabber_factory: Callable[[RecorderPolicy], Grabber] = build_grabber,
        status_sink: StatusSink | None = None,
        auto_pause_sink: Callable[[list[ScreenAutoPause]], None] | None = None,
    ) -> None:
        self._spool = spool
        self._clock = clock
        self.run = run
        self._grabber_factory = grabber_factory
        self._status_sink = status_sink
        self._auto_pause_sink = auto_pause_sink
        self._sessions: dict[str, CaptureSession] = {}
        self._next_seq: dict[str, int] = {}
        self._past_spans: list[ScreenAutoPause] = []
        self.policy = RecorderPolicy()  # the latest from the server (screen.start)

    def start(self, interaction_id: str, fps: float, paused_at: float | None, policy: RecorderPolicy) -> None:
        self.policy = policy

        audio = EndpointAudio(self._clock.server_now) if policy.endpoint_audio else None

        def encoder(path: Path) -> Encoder:
            # An audio track only when a sound source is open (none: a PC without sound devices).
            fmt = AudioFormat() if audio is not None and audio.sources else None
            return ScreenEncoder(path, fps=fps, max_width=policy.max_width, audio=fmt)

        try:
            session = CaptureSession(
                interaction_id,
                spool=self._spool,
                server_now=self._clock.server_now,
                grabber=self._grabber_factory(policy),
                encoder_factory=encoder,
                run=self.run,
                policy=policy,
                fps=fps,
                first_seq=self._next_seq.get(interaction_id, 0),
                on_status=lambda capturing, detail: self._report(interaction_id, capturing, detail),
                on_auto_pause=self._auto_pause_sink,
                audio=audio,
            )
        except ValueError as exc:
            raise CaptureError(f"cannot capture at {fps} fps: {exc}") from exc
        session.start(paused_at=paused_at)
        self._sessions[interaction_id] = session
        log.info(
            "capturing screen for %s at %g fps in run %s, %g s segments%s",
            interaction_id,
            fps,
            self.run,
            policy.segment_seconds,
            " (paused)" if paused_at else "",
        )

    def pause(self, interaction_id: str, at: float) -> str:
        return self._sessions[interaction_id].pause(at)

    def resume(self, interaction_id: str, at: float) -> None:
        self._sessions[interaction_id].resume(at)

    def stop(self, interaction_id: str, at: float) -> str:
        session = self._sessions.pop(interaction_id)
        problem = session.stop(at)
        self._next_seq[interaction_id] = session.next_seq
        self._past_spans = [*self._past_spans, *session.auto_pause_spans()][-MAX_RESENT_SPANS:]
        return problem

    def auto_pause_spans(self) -> list[ScreenAutoPause]:
        """Every auto-pause span of this run (the last ``MAX_RESENT_SPANS``), to send again after
        the channel reconnects: one sent while it was down is lost, a repeat is a no-op."""
        current = [span for s in self._sessions.values() for span in s.auto_pause_spans()]
        return [*self._past_spans, *current][-MAX_RESENT_SPANS:]

    def problem(self, interaction_id: str) -> str:
        session = self._sessions.get(interaction_id)
        return session.quota_error if session is not None else ""

    def _report(self, interaction_id: str, capturing: bool, detail: str) -> None:
        """A change the server did not ask for (spool quota): said at once, from the grab thread."""
        if self._status_sink is None:
            return
        state = ScreenState.RECORDING if capturing else ScreenState.FAILED
        self._status_sink(ScreenStatus(interaction_id, state, self._clock.server_now(), detail))


class _ReleaseOnStop:
    """The controller's ``UploadQueue``: a stopped capture's last segment goes at once."""

    def __init__(self, spool: Spool, uploader: SegmentUploader) -> None:
        self._spool = spool
        self._uploader = uploader

    def enqueue(self, interaction_id: str) -> None:
        self._spool.release(interaction_id)
        self._uploader.wake()


async def run_service(
    server_url: str,
    token: Callable[[], str],
    spool: Spool,
    *,
    fps: float,
    monitor: int,
    stop: asyncio.Event | None = None,
    self_update: SelfUpdate | None = None,
) -> None:
    """Run until SIGTERM/SIGINT (or ``stop`` is set), then finalise and return.

    ``monitor`` is the command-line default (0 all, else primary) used until the server sends a
    policy with ``monitors``.

    ``self_update`` publishes this recorder's activity for the system updater and, once a new
    version is installed and the recorder idle, stops the service (``main`` re-executes)."""
    stopping = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    _install_signal_handlers(loop, stopping)

    clock = ClockSync(MonotonicWallClock())
    run = new_run_id()
    notices = spool.recover()
    default_policy = RecorderPolicy(fps=fps, monitors="all" if monitor == 0 else "primary")
    holder: list[SessionCapture] = []
    uploader = SegmentUploader(spool, server_url, token, lambda: holder[0].policy)
    spool.on_ready = uploader.wake
    channel: EventChannel | None = None

    def send_later(status: ScreenStatus) -> None:
        if channel is not None:
            asyncio.run_coroutine_threadsafe(channel.send_statuses([status]), loop)

    def send_auto_pauses(messages: list[ScreenAutoPause]) -> None:
        if channel is not None:
            kind = ClientMessageType.SCREEN_AUTO_PAUSE.value
            for message in messages:
                asyncio.run_coroutine_threadsafe(channel.send_message(kind, asdict(message)), loop)

    capture = SessionCapture(spool, clock, run, status_sink=send_later, auto_pause_sink=send_auto_pauses)
    capture.policy = default_policy
    holder.append(capture)
    log.info("recorder run %s; %d segment(s) waiting in the spool", run, len(spool.manifests()))
    controller = Controller(
        capture,
        _ReleaseOnStop(spool, uploader),
        clock.server_now,
        default_fps=fps,
        notices=notices,
        default_policy=default_policy,
        on_policy=lambda policy: setattr(capture, "policy", policy),
    )
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="controller")

    watch = PolicyWatch(default_policy)  # the heartbeat's interval follows screen.start and pushes
    calls = CallWatch()  # whether a call or its after-call work is open, for the updater

    async def dispatch(envelope: Envelope) -> list[ScreenStatus]:
        watch.observe(envelope)
        calls.observe(envelope)
        if stopping.is_set():
            return []
        acks = await loop.run_in_executor(worker, controller.handle, envelope)
        if envelope.type == EventType.STATE:  # a (re)connection: what it may have missed
            send_auto_pauses(capture.auto_pause_spans())
            if self_update is not None:  # the server accepted our session: this version works here
                self_update.mark_healthy()
        return acks

    channel = EventChannel(server_url, token, clock, dispatch)
    channel_stop = asyncio.Event()
    uploader.start()
    channel_task = asyncio.create_task(channel.run(channel_stop))
    beats = start_heartbeat(channel, controller, spool.root, uploader, clock, watch, channel_stop)
    updates = (
        asyncio.create_task(
            self_update.run(lambda: (activity_of(controller, uploader, calls), calls.in_acw), stopping),
            name="self-update",
        )
        if self_update is not None
        else None
    )
    try:
        await stopping.wait()
        log.info("stopping: finalising any capture in progress")
        statuses = await loop.run_in_executor(worker, controller.shutdown)
        try:
            await channel.send_statuses(statuses)
        except Exception as exc:  # the ack is a courtesy; the spool keeps the segments regardless
            log.warning("could not send final status: %s", exc)
    finally:
        channel_stop.set()
        await channel_task
        await beats
        if updates is not None:
            updates.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await updates
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
