"""uvicorn's h11 protocol with deadlines on what a client sends.

The HTTP port shares its process and event loop with the SIP engine, so an anonymous client
must not be able to hold it busy: a 100 MB header once pushed SIP OPTIONS answers from 1.6 ms
to 2.9 s. Bounds, per connection:

* header size: h11's ``max_incomplete_event_size`` (uvicorn's ``h11_max_incomplete_event_size``)
  answers 400 and closes once a request's head exceeds it. This is why the server runs h11 and
  not httptools, which has no such bound;
* header time: a request's head must be complete within ``header_timeout`` of the connection
  becoming ready for it (opened, or the previous response sent) — a slow-loris client
  trickling a byte at a time gets 408 and is closed. A connection that sends nothing at all
  is closed the same way;
* body idleness: once the head is in, a body that stops arriving for ``body_idle_timeout``
  (while the server is ready to read) ends the connection. Only idleness is bounded, not the
  whole body time: a recorder's multi-gigabyte upload on a slow link is legitimate.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

TIMEOUT_RESPONSE = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class BoundedH11Protocol(H11Protocol):
    header_timeout: float = 10.0
    body_idle_timeout: float = 60.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._deadline_kind = ""  # "header" or "body" while armed

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm("header")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._after_progress(body_progress=True)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._after_progress(body_progress=False)

    def _after_progress(self, body_progress: bool) -> None:
        if self.transport.is_closing() or self.transport.get_protocol() is not self:
            self._disarm()  # closed, or handed over to the WebSocket protocol
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            # Waiting for a request head: the deadline runs from when that began, and data
            # that trickles in does not push it back.
            if self._deadline_kind != "header":
                self._arm("header")
        elif state is h11.SEND_BODY:
            if body_progress or self._deadline_kind != "body":
                self._arm("body")
        else:
            self._disarm()

    def _arm(self, kind: str) -> None:
        self._disarm()
        if kind == "header":
            self._deadline = self.loop.call_later(self.header_timeout, self._header_late)
        else:
            self._deadline = self.loop.call_later(self.body_idle_timeout, self._body_idle)
        self._deadline_kind = kind

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
            self._deadline_kind = ""

    def _header_late(self) -> None:
        self._deadline, self._deadline_kind = None, ""
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a response is still being sent; the next head's deadline starts after it
        self.transport.write(TIMEOUT_RESPONSE)
        self.transport.close()

    def _body_idle(self) -> None:
        self._deadline, self._deadline_kind = None, ""
        if self.transport.is_closing() or self.conn.their_state is not h11.SEND_BODY:
            return
        if self.flow.read_paused:  # the server is not reading: the client is not the one idle
            self._arm("body")
            return
        self.logger.warning("request body stalled for %.0f s; closing the connection", self.body_idle_timeout)
        self.transport.close()


def bounded_h11(header_timeout: float, body_idle_timeout: float) -> type[BoundedH11Protocol]:
    """The protocol class for ``uvicorn.Config(http=...)`` with these deadlines."""
    return type(
        "BoundedH11Protocol",
        (BoundedH11Protocol,),
        {"header_timeout": header_timeout, "body_idle_timeout": body_idle_timeout},
    )
