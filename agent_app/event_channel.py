"""The desktop's event channel: a WebSocket to ``/api/events?client=desktop``.

A plain thread running the websockets sync client; it knows nothing of Qt. Every envelope
is handed to a callback on that thread (the bridge moves it to the Qt thread). When the
connection drops it reconnects with capped exponential backoff; the server's first message on
every connection is ``state``, so nothing else is needed to resync. A 401 at the handshake
stops the channel: retrying a rejected token cannot succeed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI, WebSocketException
from websockets.sync.client import ClientConnection, connect

from agent_app.errors import ChannelError
from agent_app.model import ChannelState
from agent_app.ratelimit import DropCounter
from tandem_protocol import Envelope, parse_envelope
from tandem_protocol.backoff import Backoff

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 256 * 1024  # a CallInfo is ~1 kB; anything near this is not ours
EnvelopeCallback = Callable[[Envelope], None]
StatusCallback = Callable[[ChannelState, str], None]


def events_url(server_url: str, client: str = "desktop") -> str:
    """``http(s)://host[:port][/prefix]`` → ``ws(s)://host[:port][/prefix]/api/events?client=…``."""
    parts = urlsplit(server_url.strip())
    schemes = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
    if parts.scheme not in schemes or not parts.netloc:
        raise ChannelError(f"not a server URL: {server_url!r}")
    path = parts.path.rstrip("/") + "/api/events"
    return urlunsplit((schemes[parts.scheme], parts.netloc, path, f"client={client}", ""))


class EventChannel:
    """Owns one background thread; `start` once, `stop` once (idempotent)."""

    def __init__(
        self,
        server_url: str,
        token: str,
        on_envelope: EnvelopeCallback,
        on_status: StatusCallback,
        *,
        backoff: Backoff | None = None,
        open_timeout: float = 5.0,
        stable_after: float = 10.0,
    ) -> None:
        self.url = events_url(server_url)
        self._headers = {"Authorization": f"Bearer {token}"}
        self._on_envelope = on_envelope
        self._on_status = on_status
        self._backoff = backoff or Backoff()
        self._open_timeout = open_timeout
        self._stable_after = stable_after
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._ws: ClientConnection | None = None
        self._thread = threading.Thread(target=self._run, name="tandem-events", daemon=True)
        self.dropped = DropCounter(log, "event channel messages")
        self.connections = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        with self._lock:
            ws = self._ws
        if ws is not None:
            ws.close()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("event channel thread did not stop within %.1f s", timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        state = ChannelState.CONNECTING
        detail = ""
        while not self._stop.is_set():
            self._status(state, detail)
            connected_at: float | None = None
            try:
                connected_at, detail = self._session()
            except InvalidStatus as exc:
                code = exc.response.status_code
                if code in (401, 403):
                    log.warning("event channel refused with %d; not retrying", code)
                    self._status(ChannelState.REFUSED, f"HTTP {code}")
                    return
                detail = f"HTTP {code}"
            except InvalidURI as exc:
                self._status(ChannelState.REFUSED, str(exc))
                return
            except (OSError, WebSocketException) as exc:  # TimeoutError is an OSError
                detail = str(exc) or type(exc).__name__
            if self._stop.is_set():
                break
            if connected_at is not None and time.monotonic() - connected_at >= self._stable_after:
                self._backoff.reset()
            delay = self._backoff.next()
            log.info("event channel down (%s); reconnecting in %.1f s", detail, delay)
            state = ChannelState.RECONNECTING
            self._status(state, detail)
            self._stop.wait(delay)
        self._status(ChannelState.OFFLINE, "")

    def _session(self) -> tuple[float | None, str]:
        """One connection, until it closes: when it was established (monotonic), and why it ended."""
        with connect(
            self.url,
            additional_headers=self._headers,
            open_timeout=self._open_timeout,
            close_timeout=2.0,
            max_size=MAX_MESSAGE_BYTES,
            max_queue=64,
        ) as ws:
            with self._lock:
                if self._stop.is_set():
                    return None, "stopped"
                self._ws = ws
            try:
                connected_at = time.monotonic()
                self.connections += 1
                self._status(ChannelState.CONNECTED, "")
                try:
                    for message in ws:
                        self._deliver(message)
                except ConnectionClosed as exc:
                    return connected_at, f"connection lost ({exc})"
                return connected_at, "the server closed the connection"
            finally:
                with self._lock:
                    self._ws = None

    def _deliver(self, message: str | bytes) -> None:
        try:
            envelope = parse_envelope(message)
        except ValueError as exc:
            self.dropped.drop(str(exc))
            return
        try:
            self._on_envelope(envelope)
        except Exception:  # a bug in the consumer must not kill the channel
            log.exception("event callback failed for %s", envelope.type)

    def _status(self, state: ChannelState, detail: str) -> None:
        try:
            self._on_status(state, detail)
        except Exception:
            log.exception("status callback failed")
