"""Blocking file work of call media (creating and finalising voice files) run off the event loop.

Creating or finalising a file can block for a long time when the disk is busy — under load, with
hundreds of recordings being written and synced, an ``open(O_CREAT)`` or a closing fsync on the
event loop held an RTP worker's loop for seconds, and every other call's packets waited in their
sockets. So files are made and finalised in threads: two small pools, so set-ups never queue
behind the fsyncs of calls that are ending. If the task awaiting a creation is cancelled (a
set-up timeout), what the thread made anyway is disposed of when it finishes, never leaked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)

_THREADS = 4  # per pool and process: a handful of files in flight at once is plenty
_creating = ThreadPoolExecutor(_THREADS, thread_name_prefix="voice-create")
_finalising = ThreadPoolExecutor(_THREADS, thread_name_prefix="voice-finalise")


async def create_off_loop(factory: Callable[[], T], dispose: Callable[[T], None]) -> T:
    """``factory()`` in a creating thread; ``dispose`` its result if we are cancelled first."""
    future = asyncio.get_running_loop().run_in_executor(_creating, factory)
    try:
        # shield: cancelling us must not cancel (and so lose) the result the thread still makes
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        future.add_done_callback(lambda done: _dispose(done, dispose))
        raise


async def finalise_off_loop(finalise: Callable[[], None]) -> None:
    """``finalise()`` (a closing fsync, typically) in a finalising thread. Not cancellable: once
    started, a file's finalisation runs to its end whatever happens to the awaiting task."""
    await asyncio.shield(asyncio.get_running_loop().run_in_executor(_finalising, finalise))


def _dispose(done: asyncio.Future[T], dispose: Callable[[T], None]) -> None:
    if done.cancelled() or done.exception() is not None:
        return
    with contextlib.suppress(Exception):
        dispose(done.result())
    log.info("disposed of a resource whose set-up was cancelled")
