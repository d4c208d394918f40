"""``WorkerLink``: the main process's end of one RTP worker: its process, its stream, the opens
waiting for a reply and the sessions it records.

The worker is started with ``asyncio.create_subprocess_exec`` and gets its end of a
``socketpair`` through ``pass_fds``; not with ``multiprocessing``, whose spawn re-imports the
parent's ``__main__`` (uvicorn's, or pytest's). It inherits the server's stderr for its log.

``run`` reads the worker's replies and reports until the stream ends (or carries a bad frame,
which counts as a dead worker), then reaps the process and fails whatever was still open on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from server.errors import FrameError, RtpWorkerError, WorkerGoneError, WorkerOpenError, WorkerTimeoutError
from server.ratelog import RateLimitedLog
from server.rtp.workers.protocol import (
    REPLIES,
    Close,
    Closed,
    Command,
    Failed,
    FrameDecoder,
    Open,
    Opened,
    Report,
    encode_frame,
)
from server.rtp.workers.proxy import WorkerMediaSession

if TYPE_CHECKING:
    from server.callmedia.plan import MediaPlan

log = logging.getLogger(__name__)
READ_SIZE = 256 * 1024
EXIT_WAIT = 5.0  # after the stream ended, how long the process may take to exit before SIGKILL
_PROJECT_ROOT = Path(__file__).resolve().parents[3]  # where the ``server`` package lives


class WorkerLink:
    def __init__(
        self,
        index: int,
        process: asyncio.subprocess.Process,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        open_timeout: float = 5.0,
        close_timeout: float = 10.0,
        resume_after: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``resume_after``: the last port the slot's previous worker handed out (see ``Open``)."""
        self.index = index
        self.process = process
        self.pid = process.pid
        self.name = f"RTP worker {index} (pid {process.pid})"
        self._reader = reader
        self._writer = writer
        self._open_timeout = open_timeout
        self._close_timeout = close_timeout
        self._clock = clock
        self.started_at = self.last_heard = clock()
        # Set by the worker's first message (a report it sends once it serves commands). Until
        # then it is still starting (a cold interpreter loading numpy can take seconds on a busy
        # machine): the pool places no call on it, so no open's timeout runs out on a start-up.
        self.ready = asyncio.Event()
        self.dead_reason: str | None = None
        self._decoder = FrameDecoder(REPLIES)
        self._next_session = 1
        self._opening: dict[int, asyncio.Future[WorkerMediaSession]] = {}
        self._sessions: dict[int, WorkerMediaSession] = {}
        self._resume_after = resume_after
        self.last_port: int | None = None  # the last port handed out, for this slot's next worker
        self._ratelog = RateLimitedLog(log)

    @classmethod
    async def spawn(
        cls,
        index: int,
        *,
        log_level: str = "INFO",
        open_timeout: float = 5.0,
        close_timeout: float = 10.0,
        resume_after: int | None = None,
    ) -> WorkerLink:
        ours, theirs = socket.socketpair()
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "server.rtp.workers.worker",
                "--index", str(index), "--fd", str(theirs.fileno()),
                "--parent-pid", str(os.getpid()), "--log-level", log_level,
                pass_fds=(theirs.fileno(),), stdin=asyncio.subprocess.DEVNULL, env=_child_env(),
            )  # fmt: skip
        except OSError as exc:
            ours.close()
            raise RtpWorkerError(f"cannot start RTP worker {index}: {exc}") from exc
        finally:
            theirs.close()  # the worker holds it now: its death is our EOF
        reader, writer = await asyncio.open_connection(sock=ours, limit=READ_SIZE)
        return cls(
            index, process, reader, writer,
            open_timeout=open_timeout, close_timeout=close_timeout, resume_after=resume_after,
        )  # fmt: skip

    @property
    def alive(self) -> bool:
        return self.dead_reason is None

    @property
    def load(self) -> int:
        """Sessions open or opening: what placement balances."""
        return len(self._sessions) + len(self._opening)

    async def open(
        self, bind_host: str, port_range: tuple[int, int], voice_path: Path, plan: MediaPlan
    ) -> WorkerMediaSession:
        """Open a call's media in the worker; every failure is an ``RtpWorkerError``."""
        session = self._next_session
        self._next_session += 1
        future: asyncio.Future[WorkerMediaSession] = asyncio.get_running_loop().create_future()
        self._opening[session] = future
        try:
            hint, self._resume_after = self._resume_after, None
            if not self.send(Open(session, bind_host, port_range, str(voice_path), plan, hint)):
                raise WorkerGoneError(f"{self.name} is gone: {self.dead_reason}")
            return await asyncio.wait_for(asyncio.shield(future), self._open_timeout)
        except TimeoutError as exc:
            raise WorkerTimeoutError(
                f"{self.name} did not open the media within {self._open_timeout:g} s"
            ) from exc
        finally:
            self._opening.pop(session, None)

    def send(self, command: Command) -> bool:
        """Queue ``command`` on the stream (in order); False if the worker is gone."""
        if not self.alive or self._writer.is_closing():
            return False
        try:
            self._writer.write(encode_frame(command))
        except (ConnectionError, RuntimeError) as exc:
            self._ratelog.warning("send", "%s: cannot send: %s", self.name, exc)
            return False
        return True

    def close_stream(self) -> None:
        """Ask the worker to finish: it closes every session (sending their final stats) and exits."""
        if not self._writer.is_closing():
            try:
                self._writer.write_eof()
            except (OSError, RuntimeError) as exc:
                log.warning("%s: cannot close the stream: %s", self.name, exc)
                self._writer.close()

    def kill(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()

    async def run(self) -> int | None:
        """Serve the worker's messages until its stream ends; return its exit code once reaped
        (None if cancelled first). Whatever ends it, what was open on this worker fails."""
        reason = "its stream ended"
        code: int | None = None
        try:
            try:
                await self._serve()
            except FrameError as exc:
                reason = f"bad frame: {exc}"
                log.error("%s sent a bad frame (%s): killing it", self.name, exc)
                self.kill()
            except ConnectionError as exc:
                reason = f"stream lost: {exc}"
            self._writer.close()
            code = await self._reap()
        finally:
            self._writer.close()
            self._die(f"{self.name} exited with code {code} ({reason})")
        return code

    async def _serve(self) -> None:
        while True:
            data = await self._reader.read(READ_SIZE)
            if not data:
                self._decoder.finish()
                return
            self.last_heard = self._clock()
            self.ready.set()
            for message in self._decoder.feed(data):
                try:
                    self._handle(message)
                except Exception:  # a bug must not stop the worker's replies being read
                    log.exception("%s: handling %s failed", self.name, type(message).__name__)

    async def _reap(self) -> int:
        try:
            return await asyncio.wait_for(self.process.wait(), EXIT_WAIT)
        except TimeoutError:
            log.error("%s closed its stream but did not exit: killing it", self.name)
            self.kill()
            return await self.process.wait()

    def _handle(self, message: Opened | Closed | Failed | Report) -> None:
        if isinstance(message, Report):
            for item in message.sessions:
                proxy = self._sessions.get(item.session)
                if proxy is not None:
                    proxy.report(item.last_packet_at, item.stats)
        elif isinstance(message, Opened):
            self._opened(message)
        elif isinstance(message, Closed):
            proxy = self._sessions.pop(message.session, None)
            if proxy is not None:
                proxy.closed_by_worker(message.stats)
        else:
            self._failed(message)

    def _opened(self, message: Opened) -> None:
        if message.ports:
            self.last_port = list(message.ports.values())[-1]  # the streams are bound in order
        future = self._opening.get(message.session)
        if future is None or future.done():  # given up on (timeout, cancelled): never leave it open
            self.send(Close(message.session, time.time()))
            return
        proxy = WorkerMediaSession(self, message.session, message.ports, close_timeout=self._close_timeout)
        # Registered here, not when ``open`` resumes: the worker's next report may already include it.
        self._sessions[message.session] = proxy
        future.set_result(proxy)

    def _failed(self, message: Failed) -> None:
        if message.command == "Open":
            future = self._opening.get(message.session)
            if future is not None and not future.done():
                future.set_exception(WorkerOpenError(message.error))
        elif message.command == "Close":
            proxy = self._sessions.pop(message.session, None)
            if proxy is not None:
                proxy.fail(f"{self.name} could not close the session: {message.error}")
        else:
            self._ratelog.warning(
                message.command, "%s: %s for session %d failed: %s",
                self.name, message.command, message.session, message.error,
            )  # fmt: skip

    def _die(self, reason: str) -> None:
        if self.dead_reason is not None:
            return
        self.dead_reason = reason
        for future in self._opening.values():
            if not future.done():
                future.set_exception(WorkerGoneError(reason))
        sessions, self._sessions = self._sessions, {}
        if lost := sum(not proxy.closed for proxy in sessions.values()):
            log.error("%d media sessions lost their worker: %s", lost, reason)
        for proxy in sessions.values():
            proxy.fail(reason)


def _child_env() -> dict[str, str]:
    """The server's environment, with the project importable wherever the worker's cwd is."""
    env = dict(os.environ)
    paths = [str(_PROJECT_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env
