"""The desktop's event channel against a tiny real websockets server on 127.0.0.1."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from agent_app.errors import ChannelError
from agent_app.event_channel import EventChannel, events_url
from agent_app.model import ChannelState
from tandem_protocol import Envelope
from tandem_protocol.backoff import Backoff

pytestmark = pytest.mark.timeout(30)


def envelope(kind: str, seq: int, data: dict[str, Any] | None = None) -> str:
    return json.dumps({"v": 1, "seq": seq, "type": kind, "at": 1000.0 + seq, "data": data or {}})


class FakeEventServer:
    """Connection n gets the messages of script[n], then is closed (the last one stays open)."""

    def __init__(self, script: list[list[str]], reject_with: int | None = None) -> None:
        self.script = script
        self.reject_with = reject_with
        self.paths: list[str] = []
        self.auth_headers: list[str | None] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._server: Server = serve(self._handler, "127.0.0.1", 0, process_request=self._check)
        self.port = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        with self._lock:
            self.paths.append(request.path)
            self.auth_headers.append(request.headers.get("Authorization"))
        if self.reject_with is not None:
            return connection.respond(self.reject_with, "refused\n")
        return None

    def _handler(self, ws: ServerConnection) -> None:
        with self._lock:
            index = self.connections
            self.connections += 1
        messages = self.script[min(index, len(self.script) - 1)]
        for message in messages:
            ws.send(message)
        if index < len(self.script) - 1:
            ws.close()  # the server drops this connection: the client must come back
            return
        for _ in ws:  # keep the last connection open until the client leaves
            pass

    def close(self) -> None:
        self._server.shutdown()
        self._thread.join(5)


@pytest.fixture
def collected() -> Iterator[tuple[queue.Queue[Envelope], queue.Queue[tuple[ChannelState, str]]]]:
    yield queue.Queue(), queue.Queue()


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def test_reconnects_after_server_drops_and_sends_bearer(collected: Any) -> None:
    envelopes, statuses = collected
    server = FakeEventServer(
        [
            [envelope("state", 1), envelope("call.updated", 2)],
            [envelope("state", 1), "not json at all", envelope("call.started", 2)],
        ]
    )
    channel = EventChannel(
        f"http://127.0.0.1:{server.port}",
        "tok-123",
        envelopes.put,
        lambda s, d: statuses.put((s, d)),
        backoff=Backoff(0.05, 0.2),
    )
    try:
        channel.start()
        kinds = [envelopes.get(timeout=5).type for _ in range(4)]
        assert kinds == ["state", "call.updated", "state", "call.started"]
        wait_for(lambda: channel.dropped.count == 1)
        assert server.connections == 2 and channel.connections == 2
        assert server.auth_headers == ["Bearer tok-123", "Bearer tok-123"]
        assert server.paths == ["/api/events?client=desktop"] * 2
    finally:
        channel.stop()
        server.close()
    assert not channel.running
    seen = []
    while not statuses.empty():
        seen.append(statuses.get()[0])
    assert seen[:3] == [ChannelState.CONNECTING, ChannelState.CONNECTED, ChannelState.RECONNECTING]
    assert ChannelState.CONNECTED in seen[3:] and seen[-1] == ChannelState.OFFLINE


def test_keeps_retrying_while_server_is_down(collected: Any) -> None:
    envelopes, statuses = collected
    server = FakeEventServer([[envelope("state", 1)]])
    port = server.port
    server.close()  # nothing listens: connection refused
    channel = EventChannel(
        f"http://127.0.0.1:{port}",
        "t",
        envelopes.put,
        lambda s, d: statuses.put((s, d)),
        backoff=Backoff(0.02, 0.05),
    )
    channel.start()
    try:
        retries = 0
        deadline = time.monotonic() + 5
        while retries < 3 and time.monotonic() < deadline:
            state, _ = statuses.get(timeout=5)
            retries += state == ChannelState.RECONNECTING
        assert retries >= 3 and channel.running
    finally:
        channel.stop()
    assert not channel.running and envelopes.empty()


def test_401_stops_the_channel(collected: Any) -> None:
    envelopes, statuses = collected
    server = FakeEventServer([[envelope("state", 1)]], reject_with=401)
    channel = EventChannel(
        f"http://127.0.0.1:{server.port}",
        "revoked",
        envelopes.put,
        lambda s, d: statuses.put((s, d)),
        backoff=Backoff(0.02, 0.05),
    )
    try:
        channel.start()
        wait_for(lambda: not channel.running)
        states = [statuses.get(timeout=1)[0] for _ in range(statuses.qsize())]
        assert states == [ChannelState.CONNECTING, ChannelState.REFUSED]
        assert len(server.auth_headers) == 1 and envelopes.empty()
    finally:
        channel.stop()
        server.close()


def test_stop_while_connected_is_prompt(collected: Any) -> None:
    envelopes, _statuses = collected
    server = FakeEventServer([[envelope("state", 1)]])
    channel = EventChannel(f"http://127.0.0.1:{server.port}", "t", envelopes.put, lambda s, d: None)
    try:
        channel.start()
        assert envelopes.get(timeout=5).type == "state"
        started = time.monotonic()
        channel.stop()
        assert not channel.running and time.monotonic() - started < 3
    finally:
        server.close()


def test_events_url_and_backoff() -> None:
    assert (
        events_url("https://rec.example:8443/tandem/")
        == "wss://rec.example:8443/tandem/api/events?client=desktop"
    )
    assert events_url("http://127.0.0.1:8000") == "ws://127.0.0.1:8000/api/events?client=desktop"
    with pytest.raises(ChannelError):
        events_url("127.0.0.1:8000")
    backoff = Backoff(0.5, 4.0, jitter=0.0)
    assert [backoff.next() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    backoff.reset()
    assert backoff.next() == 0.5
    jittered = Backoff(1.0, 1.0, jitter=0.1, rng=lambda: 1.0)
    assert jittered.next() == pytest.approx(1.1)
