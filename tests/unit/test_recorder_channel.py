"""Event channel against a small in-test websockets server: 401, pings, pongs, bad messages."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from http import HTTPStatus

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from recorder_service import channel as channel_mod
from recorder_service.channel import EventChannel, events_url
from recorder_service.clock import ClockSync
from tandem_protocol.events import Envelope, ScreenState, ScreenStatus


def test_events_url() -> None:
    assert events_url("https://h:8443/base") == "wss://h:8443/base/api/events?client=recorder"
    assert events_url("http://h") == "ws://h/api/events?client=recorder"


def test_rejected_token_is_logged_and_retried_slowly(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(channel_mod, "UNAUTHORIZED_RETRY", 0.2)
    with caplog.at_level(logging.ERROR, logger="recorder_service.channel"):
        attempts = asyncio.run(_run_against_rejecting_server())
    assert 2 <= attempts <= 4
    assert "tandem-recorder login" in caplog.text and "bad" not in caplog.text


async def _run_against_rejecting_server() -> int:
    attempts = 0

    def reject(conn: ServerConnection, request: Request) -> Response:
        nonlocal attempts
        attempts += 1
        return conn.respond(HTTPStatus.UNAUTHORIZED, "invalid_token\n")

    async def handler(conn: ServerConnection) -> None:  # never reached
        raise AssertionError

    async with serve(handler, "127.0.0.1", 0, process_request=reject) as server:
        port = server.sockets[0].getsockname()[1]

        async def dispatch(env: Envelope) -> list[ScreenStatus]:
            return []

        chan = EventChannel(f"http://127.0.0.1:{port}", lambda: "bad", ClockSync(lambda: 0.0), dispatch)
        stop = asyncio.Event()
        task = asyncio.create_task(chan.run(stop))
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.wait_for(task, 5)
    return attempts


def test_ping_pong_dispatch_acks_and_bad_messages() -> None:
    asyncio.run(_ping_pong_scenario())


async def _ping_pong_scenario() -> None:
    received: list[dict[str, object]] = []
    local = [100.0]

    async def handler(conn: ServerConnection) -> None:
        ping = json.loads(await conn.recv())
        received.append(ping)
        await conn.send("not json")  # dropped and counted while waiting for the first pong
        await conn.send(Envelope("screen.start", {"interaction_id": "i1", "at": 1.0}, seq=1).to_json())
        t0 = ping["data"]["t0"]
        await conn.send(Envelope("time.pong", {"t0": t0, "t1": t0 + 50.0, "t2": t0 + 50.0}, seq=2).to_json())
        while (message := json.loads(await conn.recv()))["type"] == "time.ping":
            pass  # the rest of the connect burst
        received.append(message)  # the ack
        await conn.close()

    seen: list[str] = []
    clock = ClockSync(lambda: local[0])

    async def dispatch(env: Envelope) -> list[ScreenStatus]:
        seen.append(env.type)
        assert clock.synced  # commands wait for the first clock sample
        return [ScreenStatus("i1", ScreenState.RECORDING, clock.server_now())]

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        chan = EventChannel(f"http://127.0.0.1:{port}", lambda: "t", clock, dispatch)
        stop = asyncio.Event()
        task = asyncio.create_task(chan.run(stop))
        for _ in range(100):
            if len(received) == 2:
                break
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, 5)
    assert received[0]["type"] == "time.ping" and received[0]["data"] == {"t0": 100.0}
    assert received[1]["type"] == "screen.status"
    assert received[1]["data"] == {"interaction_id": "i1", "state": "recording", "at": 150.0, "detail": ""}
    assert seen == ["screen.start"] and chan.bad_messages == 1 and clock.offset == pytest.approx(50.0)


def test_a_burst_of_pings_at_connect_finds_an_undisturbed_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first pong comes back late (a loaded server): the offset must not rest on it until the
    next regular ping."""
    monkeypatch.setattr(channel_mod, "PING_INTERVAL", 600.0)
    asyncio.run(_burst_scenario())


async def _burst_scenario() -> None:
    server_ahead = 50.0
    pings: list[float] = []

    async def handler(conn: ServerConnection) -> None:
        async for text in conn:
            ping = json.loads(text)
            if ping["type"] != "time.ping":
                continue
            pings.append(ping["data"]["t0"])
            t1 = time.time() + server_ahead
            if len(pings) == 1:
                await asyncio.sleep(0.3)  # queued behind other work: an asymmetric 0.3-s delay
            pong = {"t0": ping["data"]["t0"], "t1": t1, "t2": t1}
            await conn.send(Envelope("time.pong", pong, seq=len(pings)).to_json())

    async def dispatch(env: Envelope) -> list[ScreenStatus]:
        return []

    clock = ClockSync(time.time)
    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        chan = EventChannel(f"http://127.0.0.1:{port}", lambda: "t", clock, dispatch)
        stop = asyncio.Event()
        task = asyncio.create_task(chan.run(stop))
        deadline = time.monotonic() + 30
        while (clock.accuracy or 1.0) > 0.1:  # the late pong alone gives ±0.15 s
            assert time.monotonic() < deadline, f"{len(pings)} ping(s), accuracy {clock.accuracy}"
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, 5)
    assert len(pings) >= 2
    assert clock.offset == pytest.approx(server_ahead, abs=0.1)
