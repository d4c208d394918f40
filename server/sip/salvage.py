"""Answering requests that did not parse (RFC 3261 §8.2, RFC 4475 §1): if the headers a
response needs (Via, From, To, Call-ID, CSeq) can still be read leniently, answer with the error
status; otherwise the datagram is dropped. Responses that do not parse are always dropped, and
so is anything whose start line reads as an ACK: an ACK is never answered (RFC 3261 §17.1.1.3,
§17.2.1), and an SRC that gets a 400 for its ACK aborts the call.
"""

from __future__ import annotations

import re

from server.errors import SipParseError
from server.sip.builders import build_response_raw
from server.sip.headers import canonical_name
from server.sip.message import MAX_HEADERS, split_head, unfold

_START = re.compile(rb"^[\r\n]*([!-~]{1,32})[ \t\r\n]")

_NEEDED = ("via", "from", "to", "call-id", "cseq")


def request_method(data: bytes) -> str | None:
    """The first word of a message's start line, upper-cased, if one can be read at all (the
    rest of the line may be broken); None for a response or unreadable bytes."""
    match = _START.match(data[:128])
    if match is None:
        return None
    word = match.group(1).decode("ascii").upper()
    return None if word.startswith("SIP/") else word


def is_ack(data: bytes) -> bool:
    return request_method(data) == "ACK"


def error_response_for(data: bytes, status: int, reason: str | None = None) -> bytes | None:
    """Bytes of an error response to a malformed request, or None if none can be built (or none
    may be: an ACK)."""
    if is_ack(data):
        return None
    try:
        head, _ = split_head(data[: 64 * 1024])
        start, fields = unfold(head)
    except SipParseError:
        return None
    if start.upper().startswith("SIP/") or len(fields) > MAX_HEADERS:
        return None
    found: dict[str, list[str]] = {}
    for name, value in fields:
        key = canonical_name(name)
        if key in _NEEDED and value:
            found.setdefault(key, []).append(value)
    if any(key not in found for key in _NEEDED):
        return None
    response = build_response_raw(
        found["via"],
        found["from"][0],
        found["to"][0],
        found["call-id"][0],
        found["cseq"][0],
        status,
        reason,
    )
    return response.to_bytes()
