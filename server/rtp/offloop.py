"""Blocking set-up work (creating a voice file) run off the event loop.

Creating a file can block for a long time when the disk is busy — under load, with hundreds of
recordings being written and synced, an ``open(O_CREAT)`` on the event loop held an RTP worker's
loop for over two seconds, and every other call's packets waited in their sockets. So the file
is made in the loop's default executor. If the task awaiting it is cancelled (a set-up timeout),
what the thread made anyway is disposed of when it finishes, never leaked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)


async def create_off_loop(factory: Callable[[], T], dispose: Callable[[T], None]) -> T:
    """``factory()`` in the default executor; ``dispose`` its result if we are cancelled first."""
    future = asyncio.get_running_loop().run_in_executor(None, factory)
    try:
        # shield: cancelling us must not cancel (and so lose) the result the thread still makes
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        future.add_done_callback(lambda done: _dispose(done, dispose))
        raise


def _dispose(done: asyncio.Future[T], dispose: Callable[[T], None]) -> None:
    if done.cancelled() or done.exception() is not None:
        return
    with contextlib.suppress(Exception):
        dispose(done.result())
    log.info("disposed of a resource whose set-up was cancelled")
