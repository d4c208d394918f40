"""The server's own signed audit checkpoints: every ``audit_checkpoint_interval_seconds`` (and,
if set, once ``audit_checkpoint_records`` new records exist) one file goes to
``audit_checkpoint_dir``, and a last one at shutdown. A checkpoint is written only when the chain
has moved since the last one. Writing a checkpoint is not itself audited: it would move the chain
every time and so never let it rest."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from server.errors import CheckpointError
from server.settings import Settings
from server.store import audit
from server.store.audit_checkpoint import load_or_create_key, write_checkpoint
from server.store.db import session_scope

log = logging.getLogger(__name__)
RECORD_POLL_SECONDS = 10.0  # how often the head is looked at when a record count is set


class AuditCheckpointer:
    def __init__(self, sessions: sessionmaker[Session], settings: Settings) -> None:
        assert settings.audit_checkpoint_dir is not None
        self._sessions = sessions
        self._out = Path(settings.audit_checkpoint_dir)
        self._interval = settings.audit_checkpoint_interval_seconds
        self._records = settings.audit_checkpoint_records
        self._key = load_or_create_key(settings.data_dir)
        self._written_seq = -1
        # stop() may run while a cancelled periodic write still runs in its thread
        self._lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None

    def _head_seq(self) -> int:
        with session_scope(self._sessions) as s:
            head = audit.read_head(s)
        return -1 if head is None else head.seq

    def write_if_moved(self) -> Path | None:
        """A checkpoint of the current head, unless the last one already names it."""
        with self._lock:
            with session_scope(self._sessions) as s:
                head = audit.read_head(s)
            if head is None:
                log.error("audit checkpoint: the audit_head row is missing; run `tandem-server audit verify`")
                return None
            if head.seq == self._written_seq:
                return None
            path = write_checkpoint(self._out, self._key, head.seq, head.hash)
            self._written_seq = head.seq
        log.info("audit checkpoint at seq %d: %s", head.seq, path)
        return path

    async def _run(self) -> None:
        poll = min(self._interval, RECORD_POLL_SECONDS) if self._records else self._interval
        last = time.monotonic()
        while True:
            await asyncio.sleep(poll)
            due = time.monotonic() - last >= self._interval
            if not due and self._records:
                seq = await asyncio.to_thread(self._head_seq)
                due = seq - self._written_seq >= self._records
            if not due:
                continue
            try:
                await asyncio.to_thread(self.write_if_moved)
            except (CheckpointError, OSError):
                log.exception("audit checkpoint to %s failed", self._out)  # retried next period
            last = time.monotonic()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="audit-checkpoints")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await asyncio.to_thread(self.write_if_moved)
        except (CheckpointError, OSError):
            log.exception("final audit checkpoint to %s failed", self._out)


def start_checkpointer(sessions: sessionmaker[Session], settings: Settings) -> AuditCheckpointer | None:
    """Started in the server's lifespan when ``audit_checkpoint_dir`` is set."""
    if settings.audit_checkpoint_dir is None:
        return None
    checkpointer = AuditCheckpointer(sessions, settings)
    checkpointer.start()
    return checkpointer
