"""Builders for the responses a UAS sends and the requests our UAC (and BYE on RTP timeout)
sends. Responses copy Via, From, To, Call-ID and CSeq from the request as RFC 3261 §8.2.6.2
requires; ``to_bytes`` always writes Content-Length.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from server.sip.message import SipRequest, SipResponse
from server.sip.uri import parse_uri

USER_AGENT = "Tandem recorder"
ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO"
REASONS = {
    100: "Trying",
    180: "Ringing",
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "Version Not Supported",
    513: "Message Too Large",
    603: "Decline",
}


def new_tag() -> str:
    return secrets.token_hex(8)


def new_branch() -> str:
    return "z9hG4bK" + secrets.token_hex(10)


def reason_for(status: int) -> str:
    return REASONS.get(status, "Unknown")


def build_response_raw(
    vias: Iterable[str],
    from_: str,
    to: str,
    call_id: str,
    cseq: str,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> SipResponse:
    """Build a response from raw header values (also used when the request did not parse)."""
    if to_tag and ";tag=" not in to.replace(" ", "").lower():
        to = f"{to};tag={to_tag}"
    fields: list[tuple[str, str]] = [("via", v) for v in vias]
    fields += [("from", from_), ("to", to), ("call-id", call_id), ("cseq", cseq)]
    fields += [("server", USER_AGENT), *headers]
    if body:
        fields.append(("content-type", content_type or "application/sdp"))
    return SipResponse(headers=fields, body=body, status=status, reason=reason or reason_for(status))


def build_response(
    request: SipRequest,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> SipResponse:
    """A response to ``request``; ``to_tag`` is added unless To already has a tag. 100 Trying
    never gets one (RFC 3261 §8.2.6.2)."""
    return build_response_raw(
        request.lines("via"),
        request.get("from") or "",
        request.get("to") or "",
        request.get("call-id") or "",
        request.get("cseq") or "",
        status,
        reason,
        to_tag=None if status == 100 else to_tag,
        headers=headers,
        body=body,
        content_type=content_type,
    )


def build_request(
    method: str,
    uri: str,
    *,
    via: str,
    from_: str,
    to: str,
    call_id: str,
    cseq: int,
    contact: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
    max_forwards: int = 70,
) -> SipRequest:
    """A request; ``via`` is the full Via value (``SIP/2.0/UDP host:port;branch=...;rport``)."""
    fields: list[tuple[str, str]] = [
        ("via", via),
        ("max-forwards", str(max_forwards)),
        ("from", from_),
        ("to", to),
        ("call-id", call_id),
        ("cseq", f"{cseq} {method}"),
    ]
    if contact:
        fields.append(("contact", contact))
    fields += [("user-agent", USER_AGENT), *headers]
    if body:
        fields.append(("content-type", content_type or "application/sdp"))
    return SipRequest(headers=fields, body=body, method=method, uri=parse_uri(uri))
