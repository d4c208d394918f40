"""SRTP (RFC 3711) on the receive side of one recorded stream, keyed by SDES (RFC 4568).

libsrtp (through pylibsrtp, the wrapper aiortc uses) authenticates and decrypts each datagram
before the plain RTP path sees it, so everything after it (source check, fast path, decoding)
is the plain path unchanged; plain calls never load this module. One libsrtp session per RTP
session, with an "any inbound SSRC" policy: an SBC that changes SSRC keeps the same master key.

``SrtpReceivePath`` is what an SRTP session's sockets hand each datagram to (through
``RtpSession._on_srtp``): it unprotects it and passes the plain packet on. A packet that fails
authentication is not audio: it is counted (``srtp_auth_failed``), logged rate-limited, and a
stream that carries nothing else for ``FAILING_SECONDS`` (or mostly such packets) sets
``stats.media_error``, which the coordinator turns into a visible voice failure, as for
undecodable payload types: a wrong key must never become a silent or noisy file. A replayed
packet (libsrtp's replay window) is a duplicate. The key is never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pylibsrtp
from pylibsrtp import Policy

from server.errors import RtpSessionError
from server.ratelog import RateLimitedLog
from server.rtp.packet import is_rtcp
from server.rtp.source import Address, SourceFilter
from server.rtp.stats import RtpStats

log = logging.getLogger("server.rtp.session")  # one logger for the session and its SRTP path

PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
    "AEAD_AES_128_GCM": Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
    "AEAD_AES_256_GCM": Policy.SRTP_PROFILE_AEAD_AES_256_GCM,
}
FAILING_SECONDS = 2.0  # only failing packets for this long: the stream's voice has failed
_FAILING_SHARE_MIN = 100  # ... or at least this many, and more of them than audio packets
AUTH, REPLAY, MALFORMED = "auth", "replay", "malformed"
# libsrtp's answers for a datagram too short or too broken to be SRTP at all: malformed, not a
# failed authentication (a stray or truncated datagram says nothing about the key).
_MALFORMED = ("unsupported parameter", "error parsing data")


class SrtpInbound:
    """Unprotects one stream's SRTP and SRTCP; counts what fails in ``stats``."""

    def __init__(self, suite: str, key: bytes, stats: RtpStats, clock: Callable[[], float]) -> None:
        profile = PROFILES.get(suite)
        if profile is None:
            raise RtpSessionError(f"unsupported SRTP suite {suite[:40]}")
        try:
            self._session = pylibsrtp.Session(
                Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND, srtp_profile=profile)
            )
        except (pylibsrtp.Error, ValueError) as exc:  # a key of the wrong length: never echo the key
            raise RtpSessionError(f"SRTP session for {suite} cannot be set up: {exc}") from None
        self.stats = stats
        self._clock = clock
        self._failing_since: float | None = None

    def rtp(self, data: bytes) -> bytes | str:
        """The plain RTP packet, or why there is none (``AUTH``, ``REPLAY``, ``MALFORMED``)."""
        try:
            plain: bytes = self._session.unprotect(data)
        except ValueError:  # longer than libsrtp takes
            self.stats.dropped_malformed += 1
            return MALFORMED
        except pylibsrtp.Error as exc:
            return self._failed(str(exc))
        self._failing_since = None
        return plain

    def rtcp(self, data: bytes) -> bytes | None:
        """The plain RTCP compound packet, or None (counted as malformed RTCP)."""
        try:
            plain: bytes = self._session.unprotect_rtcp(data)
        except (pylibsrtp.Error, ValueError):
            self.stats.rtcp_malformed += 1
            return None
        return plain

    def _failed(self, message: str) -> str:
        stats = self.stats
        if message in _MALFORMED:
            stats.dropped_malformed += 1
            return MALFORMED
        if "replay" in message:
            stats.dropped_duplicate += 1  # libsrtp's replay window saw this index already
            return REPLAY
        stats.srtp_auth_failed += 1
        now = self._clock()
        if self._failing_since is None:
            self._failing_since = now
        count = stats.srtp_auth_failed
        if stats.media_error is None and (
            now - self._failing_since >= FAILING_SECONDS
            or (count >= _FAILING_SHARE_MIN and count > stats.written)
        ):
            # "undecodable audio" first: server.calls.voice_faults names the failure by it.
            stats.media_error = (
                f"undecodable audio: SRTP authentication failed for {count} packets (libsrtp: "
                f"{message}): the key the SDP gave does not decrypt the stream"
            )
        return AUTH


class SrtpReceivePath:
    """An SRTP session's datagrams unprotected, then handed to its plain path (``on_rtp``: the
    session's ``_on_datagram``, ``on_rtcp``: its ``_on_rtcp_datagram``). Only from an acceptable
    source: a foreign one's packets go on as they are, to be counted foreign there, not as failed
    authentications. The session's own ``stats`` and rate-limited log (``ratelog``) are used."""

    def __init__(
        self,
        inbound: SrtpInbound,
        sources: SourceFilter,
        ratelog: RateLimitedLog,
        port: int,
        on_rtp: Callable[[bytes, Address], None],
        on_rtcp: Callable[[bytes, Address], None],
    ) -> None:
        self._inbound = inbound
        self._sources = sources
        self._stats = inbound.stats
        self._ratelog = ratelog
        self._port = port
        self._on_rtp = on_rtp
        self._on_rtcp = on_rtcp

    def datagram(self, data: bytes, addr: Address, rtcp_port: bool) -> None:
        """One datagram from the RTP port (``rtcp_port`` False) or the RTCP one."""
        srtp, sources = self._inbound, self._sources
        try:
            if rtcp_port or is_rtcp(data):
                plain_rtcp = srtp.rtcp(data) if sources.accepts_rtcp(addr) else data
                if plain_rtcp is not None:
                    self._on_rtcp(plain_rtcp, addr)
                return
            if addr != sources.source and not sources.accepts(addr):
                self._on_rtp(data, addr)
                return
            plain = srtp.rtp(data)
        except Exception:  # as in the plain path: a bug must not kill the socket's receive loop
            self._stats.dropped_malformed += 1
            log.exception("RTP port %d: unexpected error unprotecting an SRTP packet", self._port)
            return
        if isinstance(plain, str):
            self._stats.received += 1
            if plain == AUTH:
                self._ratelog.warning(
                    "srtp_auth", "RTP port %d: SRTP packet from %s failed authentication", self._port, addr
                )
                if self._stats.media_error is not None:
                    self._ratelog.log(
                        logging.ERROR, "srtp_failed", "RTP port %d: %s", self._port, self._stats.media_error
                    )
            return
        self._on_rtp(plain, addr)
