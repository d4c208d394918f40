"""Run a test's coroutine on the event loop it is parametrised with: asyncio's own or uvloop."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_on(loop: str, coroutine: Coroutine[Any, Any, T]) -> T:
    if loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coroutine)
    return asyncio.run(coroutine)


# Both loops a test of the server's networking runs on: uvloop is what ``tandem-server run`` uses.
LOOPS = ("asyncio", "uvloop")
