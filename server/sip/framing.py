"""Cutting a SIP byte stream (TCP, TLS) into messages, RFC 3261 §18.3.

On a stream there are no datagram boundaries: a message ends after its header section plus
``Content-Length`` body octets, so Content-Length is mandatory. The framer reads Content-Length
leniently (any line that names it) and leaves all other validation to ``parse_message``; a
message it cannot frame is an error after which the stream can no longer be trusted, so the
connection must be closed. Pure logic: no sockets, no asyncio.
"""

from __future__ import annotations

import re

from server.errors import SipFramingError
from server.sip.headers import canonical_name, is_digits
from server.sip.message import ENCODING, ERRORS, MAX_MESSAGE_BYTES

_LINE_SPLIT = re.compile(rb"\r?\n")
_SEPARATORS = (b"\r\n\r\n", b"\n\n")


def content_length(head: bytes) -> int:
    """The one Content-Length of a header section (compact ``l`` too, folded lines joined).

    Raises ``SipFramingError``: missing, repeated, or not a non-negative decimal number."""
    values: list[str] = []
    current: list[bytes] | None = None  # value lines of the Content-Length being read
    for line in _LINE_SPLIT.split(head)[1:]:
        if line[:1] in (b" ", b"\t"):
            if current is not None:
                current.append(line)
            continue
        if current is not None:
            values.append(b" ".join(current).decode(ENCODING, ERRORS).strip())
            current = None
        name, colon, value = line.partition(b":")
        if colon and canonical_name(name.decode(ENCODING, ERRORS)) == "content-length":
            current = [value]
    if current is not None:
        values.append(b" ".join(current).decode(ENCODING, ERRORS).strip())
    if not values:
        raise SipFramingError("Content-Length is required on a stream transport (RFC 3261 §18.3)")
    if len(values) > 1:
        raise SipFramingError(f"{len(values)} Content-Length header fields: the message end is unknown")
    value = values[0]
    if not is_digits(value):
        raise SipFramingError(f"bad Content-Length {value[:20]!r}")
    return int(value)


class StreamFramer:
    """Accumulates received bytes and yields whole messages.

    Bounded: the buffer never holds more than ``max_message`` bytes of an unfinished message plus
    one ``feed`` chunk; ``feed`` refuses chunks that would break that bound, so callers feed at
    most ``max_message`` bytes at a time and ``pop`` after each feed.
    """

    def __init__(self, max_message: int = MAX_MESSAGE_BYTES) -> None:
        self.max_message = max_message
        self.max_buffer = 2 * max_message
        self._buf = bytearray()
        self._need: int | None = None  # total length of the message at the buffer start, once known
        self.keepalives = 0

    @property
    def buffered(self) -> int:
        return len(self._buf)

    @property
    def at_boundary(self) -> bool:
        """True when no part of a message is waiting (only whole messages have been read)."""
        return not self._buf

    def reset(self) -> None:
        """Forget any partial message (the connection is gone)."""
        self._buf = bytearray()
        self._need = None

    def feed(self, data: bytes) -> None:
        if len(self._buf) + len(data) > self.max_buffer:
            raise SipFramingError(
                f"more than {self.max_buffer} bytes buffered on one connection",
                513,
                bytes(self._buf[: self.max_message]),
            )
        self._buf += data

    def pop(self) -> bytes | None:
        """The next whole message, or None until more bytes arrive. Raises ``SipFramingError``."""
        if self._need is None:
            self._skip_keepalives()
            if not self._buf:
                return None
            end = self._head_end()
            if end is None:
                if len(self._buf) > self.max_message:
                    raise SipFramingError(f"header section longer than {self.max_message} bytes", 513)
                return None
            head_len, sep_len = end
            head = bytes(self._buf[: head_len + sep_len])
            try:
                length = content_length(head[:head_len])
            except SipFramingError as exc:
                exc.head = head
                raise
            total = head_len + sep_len + length
            if total > self.max_message:
                raise SipFramingError(f"message of {total} bytes exceeds {self.max_message}", 513, head)
            self._need = total
        if len(self._buf) < self._need:
            return None
        message = bytes(self._buf[: self._need])
        del self._buf[: self._need]
        self._need = None
        return message

    def _skip_keepalives(self) -> None:
        # CRLFs before a start line are ignored (RFC 3261 §7.5); "\r\n\r\n" is also the RFC 5626
        # keep-alive ping, which a recorder need not answer.
        start = 0
        while start < len(self._buf) and self._buf[start] in (0x0D, 0x0A):
            start += 1
        if start:
            self.keepalives += 1
            del self._buf[:start]

    def _head_end(self) -> tuple[int, int] | None:
        """(length of the header section, length of the separator) if the blank line arrived."""
        best: tuple[int, int] | None = None
        for sep in _SEPARATORS:
            pos = self._buf.find(sep)
            if pos >= 0 and (best is None or pos < best[0]):
                best = (pos, len(sep))
        return best
