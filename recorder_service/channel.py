"""The recorder's end of the event channel (``/api/events?client=recorder``, WebSocket).

Keeps one connection open for as long as the service runs: reconnects with capped exponential
backoff and jitter, and slowly (every few minutes) after a 401 since only a new login can fix
that. On each connection it sends a short burst of ``time.ping`` (5, 0.2 s apart: the best round
trip of several) and then one every 10 s, feeds ``time.pong`` answers to the clock, and passes
every other envelope to a dispatcher (the controller, run off
the event loop because finalising a capture blocks) whose ``ScreenStatus`` acks it sends back.
Malformed messages are logged (rate-limited) and counted, never fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from recorder_service.clock import ClockSync, ping_delays
from tandem_protocol.backoff import backoff_delay
from tandem_protocol.events import (
    ClientMessageType,
    Envelope,
    EventType,
    ScreenStatus,
    TimePing,
    parse_envelope,
)

log = logging.getLogger(__name__)

PING_INTERVAL = 10.0
UNAUTHORIZED_RETRY = 120.0
RECONNECT_CAP = 30.0
MAX_MESSAGE = 1 << 20
SYNC_WAIT = 3.0

Dispatcher = Callable[[Envelope], Awaitable[list[ScreenStatus]]]


def events_url(server_url: str) -> str:
    parts = urlsplit(server_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/api/events", "client=recorder", ""))


def status_envelope(status: ScreenStatus, local_now: float) -> Envelope:
    data = asdict(status)
    data["state"] = status.state.value
    return Envelope(type=ClientMessageType.SCREEN_STATUS.value, data=data, at=local_now)


class EventChannel:
    def __init__(
        self,
        server_url: str,
        token: Callable[[], str],
        clock: ClockSync,
        dispatch: Dispatcher,
    ) -> None:
        self._url = events_url(server_url)
        self._token = token
        self._clock = clock
        self._dispatch = dispatch
        self.connected = asyncio.Event()
        self.bad_messages = 0
        self.connections = 0
        self._last_bad_log = 0.0
        self._ws: ClientConnection | None = None

    async def run(self, stop: asyncio.Event) -> None:
        attempt = 0
        while not stop.is_set():
            delay: float
            try:
                async with connect(
                    self._url,
                    additional_headers={"Authorization": f"Bearer {self._token()}"},
                    open_timeout=10,
                    ping_interval=20,
                    ping_timeout=20,
                    close_timeout=5,
                    max_size=MAX_MESSAGE,
                    max_queue=64,
                ) as ws:
                    attempt = 0
                    self.connections += 1
                    log.info("event channel connected to %s", self._url)
                    await self._serve(ws, stop)
                delay = backoff_delay(0, cap=RECONNECT_CAP)
            except InvalidStatus as exc:
                if exc.response.status_code == 401:
                    log.error("token rejected by the server: run `tandem-recorder login` (retrying slowly)")
                    delay = UNAUTHORIZED_RETRY
                else:
                    delay = backoff_delay(attempt, cap=RECONNECT_CAP)
                    log.warning(
                        "event channel refused: HTTP %s; retry in %.1f s", exc.response.status_code, delay
                    )
            except (OSError, TimeoutError, WebSocketException) as exc:
                delay = backoff_delay(attempt, cap=RECONNECT_CAP)
                log.warning("event channel down (%s: %s); retry in %.1f s", type(exc).__name__, exc, delay)
            finally:
                self._ws = None
                self.connected.clear()
            attempt += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)

    async def send_statuses(self, statuses: list[ScreenStatus]) -> None:
        """Send acks on the current connection; dropped (and logged) when disconnected, since the
        server resyncs with ``state`` on reconnect and the controller acks that again."""
        ws = self._ws
        for status in statuses:
            if ws is None:
                log.warning(
                    "not connected: %s ack for %s not sent", status.state.value, status.interaction_id
                )
                continue
            await ws.send(status_envelope(status, self._clock.local_now()).to_json())

    async def send_message(self, kind: str, data: dict[str, object]) -> bool:
        """One message on the current connection (e.g. the heartbeat); False when disconnected:
        it is not queued, it is only worth its moment."""
        ws = self._ws
        if ws is None:
            return False
        try:
            await ws.send(Envelope(type=kind, data=data, at=self._clock.local_now()).to_json())
        except ConnectionClosed:
            return False
        return True

    async def _serve(self, ws: ClientConnection, stop: asyncio.Event) -> None:
        self._ws = ws
        self.connected.set()
        pinger = asyncio.create_task(self._ping_loop(ws))
        stopper = asyncio.create_task(stop.wait())
        try:
            await self._await_first_sync(ws)
            while True:
                receiver = asyncio.ensure_future(ws.recv())
                done, _ = await asyncio.wait({receiver, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if stopper in done:
                    receiver.cancel()
                    await ws.close()
                    return
                await self._on_message(receiver.result())
        finally:
            pinger.cancel()
            stopper.cancel()

    async def _await_first_sync(self, ws: ClientConnection) -> None:
        """Hold commands until the clock has its first sample (at most ``SYNC_WAIT`` s): a
        capture started on the unsynced local clock would jump by the whole offset mid-file."""
        if self._clock.synced:
            return
        held: list[str | bytes] = []
        deadline = asyncio.get_running_loop().time() + SYNC_WAIT
        while not self._clock.synced and len(held) < 64:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                log.warning("no time.pong within %.0f s: stamping frames with the local clock", SYNC_WAIT)
                break
            try:
                text = await asyncio.wait_for(ws.recv(), timeout=remaining)
            except TimeoutError:
                continue
            if self._is_pong(text):
                await self._on_message(text)
            else:
                held.append(text)
        for text in held:
            await self._on_message(text)

    @staticmethod
    def _is_pong(text: str | bytes) -> bool:
        try:
            return parse_envelope(text).type == EventType.TIME_PONG
        except ValueError:
            return False

    async def _ping_loop(self, ws: ClientConnection) -> None:
        try:
            for delay in ping_delays(PING_INTERVAL):
                ping = TimePing(t0=self._clock.local_now())
                envelope = Envelope(type=ClientMessageType.TIME_PING.value, data=asdict(ping), at=ping.t0)
                await ws.send(envelope.to_json())
                await asyncio.sleep(delay)
        except ConnectionClosed:
            return  # the receive loop sees the same closure and reconnects

    async def _on_message(self, text: str | bytes) -> None:
        t3 = self._clock.local_now()
        try:
            envelope = parse_envelope(text)
            if envelope.type == EventType.TIME_PONG:
                data = envelope.data
                self._clock.add_sample(float(data["t0"]), float(data["t1"]), float(data["t2"]), t3)
                return
        except (ValueError, KeyError, TypeError) as exc:
            self._bad(exc)
            return
        statuses = await self._dispatch(envelope)
        await self.send_statuses(statuses)

    def _bad(self, exc: Exception) -> None:
        self.bad_messages += 1
        now = time.monotonic()
        if now - self._last_bad_log >= 5.0:
            self._last_bad_log = now
            log.warning("dropped malformed event message (%d so far): %s", self.bad_messages, exc)
