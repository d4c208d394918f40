"""A live call whose voice can no longer be recorded: its RTP worker died, or its file could not
be written (a full disk). Told to the agent at once — not left to an RTP timeout a minute later —
with the true reason stored as the interaction's end reason; the file keeps what was written and
the call itself goes on to its BYE (``Interaction.fail_voice``). Naming the failure is pure
(``server.calls.voice_faults``); this module applies it to the coordinator's live calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any

from server.calls.control import LiveCall, RecordingControl
from server.calls.voice_faults import DISK_FULL, end_reason, media_error
from server.diskguard import DiskGuard
from server.errors import LifecycleError
from tandem_protocol.events import EventType, Phase

log = logging.getLogger(__name__)
MEDIA_CHECK_INTERVAL = 1.0  # how often live calls' media stats are read for write failures


class VoiceFailures:
    def __init__(
        self, calls: Mapping[str, LiveCall], control: RecordingControl, disk: DiskGuard | None
    ) -> None:
        self._calls = calls  # the coordinator's live calls (read only here)
        self._control = control
        self._disk = disk
        self._tasks: set[asyncio.Task[None]] = set()

    def media_lost(self, voice_path: Path, error: str, at: float) -> None:
        """The RTP worker pool's report (sync, on the loop): the worker carrying this call died.
        The live dir is ``<live>/<interaction id>/voice.wav``."""
        self._spawn(self.fail(voice_path.parent.name, at, error, worker_died=True))

    async def fail(self, interaction_id: str, at: float, error: str, *, worker_died: bool = False) -> None:
        """Voice FAILED at ``at``: told to the agent, stored with its reason, audited."""
        live = self._calls.get(interaction_id)
        if live is None or live.voice_failure is not None:
            return
        reason = end_reason(error, worker_died=worker_died)
        live.voice_failure = reason
        async with live.lock:
            with contextlib.suppress(LifecycleError):  # ringing or over: the end stores the reason
                live.state.fail_voice(at)
            live.reasons.active.clear()
            self._control.publish(live, EventType.CALL_UPDATED)  # the agent first, then the rest
            if live.handle is not None:
                with contextlib.suppress(Exception):  # no RTP timeout on a dead stream; file final
                    await live.handle.stop(at)
            await self._control.save(live, reason)
        log.error("interaction %s: voice recording FAILED (%s): %s", interaction_id, reason, error)
        await self._control.audit("recording.failed", interaction_id, f"{reason}: {error}", outcome="failed")
        if reason == DISK_FULL and self._disk is not None:
            self._disk.note_enospc(f"voice file of interaction {interaction_id}")

    async def watch(self, interval: float = MEDIA_CHECK_INTERVAL) -> None:
        """Read the live calls' media stats for write failures (a full disk) — a task."""
        while True:
            await asyncio.sleep(interval)
            for live in list(self._calls.values()):
                if (
                    live.handle is None
                    or live.voice_failure is not None
                    or live.state.phase is not Phase.ACTIVE
                ):
                    continue
                error = media_error(live.handle.media_stats())
                if error is not None:
                    await self.fail(live.interaction_id, time.time(), error)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
