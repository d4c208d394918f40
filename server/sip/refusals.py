"""INVITEs the recorder refused: what the SIP engine reports so that no refused call goes
without a trace (a log line, a counter, a "missed recording" row).

The engine builds a ``Refusal`` from what it has at hand (headers, source, status) and hands it
to a ``RefusalSink``, synchronously and without blocking: the sink (server.calls.missed_calls)
coalesces and writes off the event loop. Text from the network is decoded safely and capped
here, once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

MAX_TEXT = 255  # From/To/Request-URI and the like, as stored
MAX_DETAIL = 200

# The reason code of a refusal by SIP status: stable names for counters, filters and the UI.
# 503 is refined from the reason phrase (overload, no media port, disk, draining…).
REASONS_BY_STATUS = {
    400: "bad-request",
    401: "auth-failed",
    403: "untrusted-source",
    404: "no-recording-party",
    415: "unsupported-media-type",
    416: "unsupported-uri",
    420: "unsupported-extension",
    486: "agent-busy",
    487: "cancelled",
    488: "unacceptable-offer",
    500: "server-error",
    501: "not-implemented",
    503: "unavailable",
    603: "consent-declined",
    606: "unacceptable-offer",
}


@dataclass(frozen=True, slots=True)
class Refusal:
    at: float  # Unix seconds, when the refusal was sent
    call_id: str
    source: str  # "host:port" of the signalling peer
    source_host: str
    from_uri: str
    to_uri: str
    request_uri: str
    dn: str  # the Request-URI's user part (the DN asked for), "" if none
    reason: str  # a REASONS_BY_STATUS code
    status: int  # the SIP status sent
    kind: str  # "plain" or "siprec"
    detail: str = ""  # the reason phrase, or why (never a secret)


class RefusalSink(Protocol):
    def refused(self, refusal: Refusal) -> None:
        """Take note of a refusal; called on the event loop, must not block."""


def reason_code(status: int, phrase: str | None) -> str:
    code = REASONS_BY_STATUS.get(status)
    if status == 503 and phrase:
        slug = re.sub(r"[^a-z0-9]+", "-", phrase.lower()).strip("-")[:40]
        return slug or "unavailable"
    if code is not None:
        return code
    return f"status-{status}"


def safe_text(value: object, limit: int = MAX_TEXT) -> str:
    """Printable, capped text of a header value from the network (no control characters)."""
    text = value if isinstance(value, str) else str(value)
    cleaned = "".join(c if c.isprintable() else "?" for c in text[: limit * 2])
    return cleaned[:limit]


def warning_header(text: str, agent: str = "tandem") -> tuple[str, str]:
    """A ``Warning: 399 tandem "..."`` header (RFC 3261 §20.43: 399 is "miscellaneous", its
    text for a human) saying why an offer was refused; quotes, backslashes and control
    characters cannot break out of the quoted string."""
    cleaned = safe_text(text, MAX_DETAIL).replace("\\", "/").replace('"', "'")
    return ("warning", f'399 {agent} "{cleaned}"')
