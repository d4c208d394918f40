"""open_call_media under concurrent set-ups: each call's streams get neighbouring port pairs
(all reserved before anything is awaited), and a failed set-up leaves no port bound."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from server.callmedia.media import CallMedia, open_call_media
from server.callmedia.plan import MediaPlan, plan_media
from server.errors import RtpSessionError
from tests.loops import run_on
from tests.ports import free_ports, rtp_range

RANGE = rtp_range(400)  # 40 calls of two streams, each an even port and the next


def two_streams() -> MediaPlan:
    return plan_media([(0, "PCMU", 0, None, None), (1, "PCMU", 0, None, None)], frozenset({1}))


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_concurrent_setups_keep_each_calls_ports_together(tmp_path: Path, loop: str) -> None:
    async def body() -> list[dict[int, int]]:
        plan = two_streams()
        medias: list[CallMedia] = await asyncio.gather(
            *(open_call_media("127.0.0.1", RANGE, tmp_path / f"{n}.wav", plan) for n in range(20)),
        )
        try:
            return [dict(media.ports) for media in medias]
        finally:
            for media in medias:
                await media.close(0.0)

    calls = run_on(loop, body())
    for ports in calls:
        assert ports[1] - ports[0] == 2, calls
    assert len({port for ports in calls for port in ports.values()}) == 40


def test_a_failed_setup_releases_its_reserved_ports(tmp_path: Path) -> None:
    tiny = free_ports(4)

    async def body() -> None:
        plan = plan_media([(0, "PCMU", 0, None, None), (1, "NOPE", 96, None, None)], frozenset({1}))
        with pytest.raises(RtpSessionError):
            await open_call_media("127.0.0.1", (tiny, tiny + 3), tmp_path / "bad.wav", plan)

    asyncio.run(body())
    for port in range(tiny, tiny + 4):  # every port of the tiny range is free again
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.bind(("127.0.0.1", port))
        finally:
            probe.close()
