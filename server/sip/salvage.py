"""Answering requests that did not parse (RFC 3261 §8.2, RFC 4475 §1): if the headers a
response needs (Via, From, To, Call-ID, CSeq) can still be read leniently, answer with the error
status; otherwise the datagram is dropped. Responses that do not parse are always dropped.
"""

from __future__ import annotations

from server.sip.builders import build_response_raw
from server.sip.errors import SipParseError
from server.sip.headers import canonical_name
from server.sip.message import MAX_HEADERS, split_head, unfold

_NEEDED = ("via", "from", "to", "call-id", "cseq")


def error_response_for(data: bytes, status: int, reason: str | None = None) -> bytes | None:
    """Bytes of an error response to a malformed request, or None if none can be built."""
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
