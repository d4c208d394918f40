"""CallMedia.close reads what is already queued in the sockets before finishing the file: the BYE
may be read (by the SIP process) before the call's last RTP datagrams are."""

from __future__ import annotations

import socket
import time
import wave
from pathlib import Path

import pytest

from server.callmedia.media import open_call_media
from server.callmedia.plan import plan_media
from server.rtp.packet import RtpPacket
from tests.loops import run_on
from tests.ports import rtp_range


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_datagrams_queued_before_close_are_recorded(tmp_path: Path, loop: str) -> None:
    async def body() -> dict[str, object]:
        plan = plan_media([(0, "PCMU", 0, None, None), (1, "PCMU", 0, None, None)], frozenset({1}))
        media = await open_call_media("127.0.0.1", rtp_range(), tmp_path / "call.wav", plan)
        started = time.time()
        media.start(started)
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for index in range(25):
                for port in media.ports.values():
                    data = RtpPacket(0, index, 160 * index, 0x77 + port, bytes([0x55]) * 160).serialize()
                    sender.sendto(data, ("127.0.0.1", port))
            # No await between the sends and close: every datagram is still in a socket buffer.
            await media.close(started + 0.5)
        finally:
            sender.close()
        return media.stats()

    stats = run_on(loop, body())
    for stream in stats.values():
        assert isinstance(stream, dict)
        assert stream["written"] == 25, stream
    with wave.open(str(tmp_path / "call.wav"), "rb") as wav:
        assert wav.getnchannels() == 2 and wav.getnframes() == 4000
