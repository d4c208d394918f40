"""Exceptions of the RTP layer.

One hierarchy so callers (the SIP engine) can catch ``RtpError`` without knowing which part of
the receive path failed. Packet errors are also ``ValueError``: a malformed datagram is bad input.
"""

from __future__ import annotations


class RtpError(Exception):
    """Base of every error raised by ``server.rtp``."""


class RtpPacketError(RtpError, ValueError):
    """A datagram is not a well-formed RTP packet; the message says why."""


class RtpSessionError(RtpError):
    """An RTP session could not be opened or used."""


class PortRangeExhaustedError(RtpSessionError):
    """Every even port of the configured range is in use."""


class UnsupportedCodecError(RtpSessionError, ValueError):
    """The codec name is not one this server can decode."""


class RtcpPacketError(RtpError, ValueError):
    """A datagram is not a well-formed RTCP compound packet; the message says why."""
