"""The RTP worker process: records the media of the calls the main process places on it.

Started by ``server.rtp.workers.link`` as ``python -m server.rtp.workers.worker --index N --fd F
--parent-pid P`` with one end of a ``socketpair`` as fd F. It runs its own uvloop event loop and
serves the commands of ``server.rtp.workers.protocol`` with ``server.callmedia.media.open_call_media``:
the same code that records in-process, so a call is recorded identically either way.

Nothing the main process sends can crash it: a bad command gets a ``Failed`` reply. It ends when
the main process closes the stream (EOF), sends a bad frame, or dies (PR_SET_PDEATHSIG: SIGTERM):
then every open session is closed, so its file is finalised, and the process exits. SIGINT is
ignored: a Ctrl-C at a terminal reaches the whole process group, and the main process's shutdown
is what stops the workers, after SIP has ended the calls.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from server.errors import FrameError
from server.ratelog import RateLimitedLog
from server.rtp.workers.protocol import (
    COMMANDS,
    REPORT_CHUNK,
    Close,
    Closed,
    Command,
    Failed,
    FrameDecoder,
    Open,
    Opened,
    Pause,
    Relatch,
    Reply,
    Report,
    Resume,
    SessionReport,
    Start,
    encode_frame,
)

if TYPE_CHECKING:
    from server.callmedia.media import CallMedia

log = logging.getLogger("server.rtp.workers.worker")  # not "__main__" when run with -m
REPORT_INTERVAL = 0.5
READ_SIZE = 256 * 1024
SLOW_OPEN = 1.0  # seconds; the main process gives up after its open timeout (5 s)
_PR_SET_PDEATHSIG = 1


class WorkerServer:
    """Serves one stream of commands; ``run`` returns once every session is closed."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        report_interval: float = REPORT_INTERVAL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._report_interval = report_interval
        self._clock = clock
        self._decoder = FrameDecoder(COMMANDS)
        self._sessions: dict[int, CallMedia] = {}
        self._opening: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._shutting_down = False
        self._ratelog = RateLimitedLog(log)

    async def run(self, stop: asyncio.Event) -> None:
        reporter = asyncio.create_task(self._report_loop())
        reading = asyncio.create_task(self._read_loop())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if stopping.done() and not reading.done():
            log.info("SIGTERM (or the main process died): closing %d sessions", len(self._sessions))
        for task in (reading, stopping):
            task.cancel()
        await asyncio.gather(reading, stopping, return_exceptions=True)
        try:
            await self._shutdown()
        finally:
            reporter.cancel()
            await asyncio.gather(reporter, return_exceptions=True)
            self._writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._writer.wait_closed(), 2.0)

    async def _read_loop(self) -> None:
        try:
            while True:
                data = await self._reader.read(READ_SIZE)
                if not data:
                    self._decoder.finish()
                    log.info("the main process closed the stream: closing %d sessions", len(self._sessions))
                    return
                for command in self._decoder.feed(data):
                    try:
                        self._dispatch(command)
                    except Exception:  # a bug must not end the worker with its calls
                        log.exception("handling %s failed", type(command).__name__)
        except FrameError as exc:
            log.error("bad frame from the main process (%s): shutting down", exc)
        except ConnectionError as exc:
            log.warning("stream to the main process lost (%s): shutting down", exc)

    def _dispatch(self, command: Command) -> None:
        session = command.session
        if isinstance(command, Open):
            if session in self._sessions or session in self._opening or self._shutting_down:
                self._fail(command, "session exists" if not self._shutting_down else "worker shutting down")
                return
            self._opening.add(session)
            self._spawn(self._open(command))
            return
        media = self._sessions.get(session)
        if media is None:
            self._fail(command, "unknown session")
            return
        if isinstance(command, Close):
            del self._sessions[session]  # gone from reports; further commands are "unknown"
            self._spawn(self._close(session, media, command.ended_at))
            return
        try:
            if isinstance(command, Start):
                media.start(command.at)
            elif isinstance(command, Pause):
                media.pause(command.at)
            elif isinstance(command, Resume):
                media.resume(command.at)
            elif isinstance(command, Relatch):
                media.relatch(command.index, command.remote)
        except Exception as exc:  # e.g. a second Start: the session goes on recording
            self._fail(command, f"{type(exc).__name__}: {exc}")

    async def _open(self, command: Open) -> None:
        from server.callmedia.media import open_call_media
        from server.rtp.ports import resume_after

        if command.resume_after is not None:
            resume_after(command.bind_host, *command.port_range, command.resume_after)
        began = time.monotonic()
        try:
            media = await open_call_media(
                command.bind_host, command.port_range, Path(command.voice_path), command.plan
            )
        except Exception as exc:
            self._opening.discard(command.session)
            self._fail(command, f"{type(exc).__name__}: {exc}")
            return
        self._opening.discard(command.session)
        if (took := time.monotonic() - began) > SLOW_OPEN:  # an overloaded worker: say so
            self._ratelog.warning("slow-open", "opening session %d took %.2f s", command.session, took)
        if self._shutting_down:  # the main process is gone or going: never leave it open
            await self._close(command.session, media, self._clock())
            return
        self._sessions[command.session] = media
        self._send(Opened(command.session, media.ports))

    async def _close(self, session: int, media: CallMedia, ended_at: float) -> None:
        try:
            await media.close(ended_at)
            stats = media.stats()
        except Exception as exc:  # CallMedia.close logs its own failures; this is a bug
            log.exception("closing session %d failed", session)
            self._send(Failed(session, "Close", f"{type(exc).__name__}: {exc}"))
            return
        self._send(Closed(session, stats))

    async def _shutdown(self) -> None:
        """Let opens and closes in progress finish, then close every session left."""
        self._shutting_down = True
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        sessions, self._sessions = self._sessions, {}
        ended_at = self._clock()
        await asyncio.gather(*(self._close(s, media, ended_at) for s, media in sessions.items()))
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._writer.drain(), 2.0)

    async def _report_loop(self) -> None:
        # The first report goes out at once: it tells the main process this worker has loaded the
        # RTP stack and serves commands (its opens are timed from then, not from the spawn).
        first = True
        while True:
            if not first:
                await asyncio.sleep(self._report_interval)
            first = False
            try:
                reports = [
                    SessionReport(session, media.last_packet_at, media.stats())
                    for session, media in self._sessions.items()
                ]
                # Always at least one frame: an empty report is the worker's heartbeat.
                for start in range(0, max(1, len(reports)), REPORT_CHUNK):
                    self._send(Report(tuple(reports[start : start + REPORT_CHUNK])))
                await self._writer.drain()
            except ConnectionError:
                return  # the read loop sees the end of the stream and shuts down
            except Exception:  # a bug must not stop the heartbeat (the pool would kill us)
                log.exception("building the report failed")

    def _fail(self, command: Command, error: str) -> None:
        name = type(command).__name__
        self._ratelog.warning(name, "%s for session %d failed: %s", name, command.session, error)
        self._send(Failed(command.session, name, error))

    def _send(self, message: Reply) -> None:
        if self._writer.is_closing():
            return
        try:
            self._writer.write(encode_frame(message))
        except FrameError:
            log.exception("cannot send %s", type(message).__name__)
        except (ConnectionError, RuntimeError) as exc:
            self._ratelog.warning("send", "cannot send to the main process: %s", exc)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def set_parent_death_signal(sig: int = signal.SIGTERM) -> None:
    """Linux: be sent ``sig`` when the main process dies (a killed server leaves no worker)."""
    if sys.platform != "linux":
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        log.warning("PR_SET_PDEATHSIG failed: errno %d", ctypes.get_errno())


async def serve(fd: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    sock = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_connection(sock=sock, limit=READ_SIZE)
    await WorkerServer(reader, writer).run(stop)


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError as exc:  # as in server.cli: only where uvloop has no build
        log.warning("uvloop unavailable (%s): running on asyncio's loop", exc)
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Tandem RTP worker (started by the server)")
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--fd", type=int, required=True, help="this end of the socketpair")
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--log-level", default="INFO", help="a level name or number")
    args = parser.parse_args(argv)
    set_parent_death_signal()
    if os.getppid() != args.parent_pid:  # it died before the prctl: nothing to serve
        return 0
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    level = args.log_level
    logging.basicConfig(
        level=int(level) if level.isdigit() else level.upper(),
        stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s rtp-worker[{args.index}] %(name)s: %(message)s",
    )
    started = time.monotonic()
    # Load the RTP stack (numpy, codecs, writers) now: in the first call's open it would stall
    # this loop for a few hundred ms while that call's RTP already flows. libsrtp too (~40 ms),
    # for the first SRTP call.
    import server.callmedia.media
    import server.rtp.session
    import server.rtp.srtp
    import server.voice.stereo_writer  # noqa: F401

    log.info("RTP worker %d started (pid %d) in %.2f s", args.index, os.getpid(), time.monotonic() - started)
    with asyncio.Runner(loop_factory=_new_loop) as runner:
        runner.run(serve(args.fd))
    log.info("RTP worker %d exits", args.index)
    return 0


if __name__ == "__main__":
    sys.exit(main())
