"""Exceptions of the SIP engine.

Every error the engine raises derives from ``SipError`` so callers can catch the engine's
failures without catching programming errors. Parse errors are also ``ValueError``s and carry the
SIP status a UAS should answer with (400 unless the RFC names another one, e.g. 505).
"""

from __future__ import annotations


class SipError(Exception):
    """Base of all SIP engine errors."""


class SipParseError(SipError, ValueError):
    """A datagram is not a well-formed SIP message (RFC 3261 §25 / RFC 4475)."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class SdpError(SipError, ValueError):
    """An SDP body cannot be parsed, or offers nothing we can record (answer 488)."""


class SipTransportError(SipError):
    """The UDP socket could not be bound or used."""
