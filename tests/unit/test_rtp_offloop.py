"""create_off_loop: blocking set-up in a thread, the loop free meanwhile, nothing leaked on cancel."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from server.rtp.offloop import create_off_loop


def test_the_loop_runs_while_the_factory_blocks() -> None:
    async def body() -> tuple[str, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())

        def slow_factory() -> str:
            time.sleep(0.3)  # a file creation stuck behind a busy disk
            return "made"

        made = await create_off_loop(slow_factory, lambda _: None)
        task.cancel()
        return made, ticks

    made, ticks = asyncio.run(body())
    assert made == "made"
    assert ticks >= 10  # about 30 at 10 ms: the loop kept running


def test_what_a_cancelled_setup_made_is_disposed() -> None:
    release = threading.Event()
    disposed: list[str] = []

    async def body() -> None:
        def factory() -> str:
            release.wait(5)
            return "file"

        task = asyncio.create_task(create_off_loop(factory, disposed.append))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        for _ in range(100):  # the thread finishes after the cancel; its result is disposed
            if disposed:
                break
            await asyncio.sleep(0.01)

    asyncio.run(body())
    assert disposed == ["file"]


def test_a_factory_error_is_raised_and_nothing_disposed() -> None:
    disposed: list[object] = []

    def failing() -> str:
        raise OSError("disk full")

    async def body() -> None:
        with pytest.raises(OSError, match="disk full"):
            await create_off_loop(failing, disposed.append)

    asyncio.run(body())
    assert disposed == []
