"""Which source address a session records from: latching or the address the SDP gave.

Latching (the default, as most SBCs and recorders behind NAT do): the first valid RTP packet's
address becomes the source; later packets from anywhere else are foreign. Given the signalling
peer (``peer_host``: the SBC/PBX the INVITE came from), only a packet from that host or from the
SDP's connection address (any port: NAT may change it) can be latched to; anyone else spraying
packets at the port before the real stream starts is foreign and cannot take the call over.
Without latching, only packets from the SDP's connection address and port are accepted, from the
first packet on. Once latched, the check is one tuple comparison, as before. Hosts
are compared as IP addresses, so an IPv4 peer seen on a dual-stack socket as ``::ffff:a.b.c.d``
still matches ``a.b.c.d``; a name that is not an IP address is compared as text.
"""

from __future__ import annotations

import ipaddress

from server.errors import RtpSessionError

Address = tuple[str | object, ...]  # what asyncio hands a datagram protocol: (host, port, ...)


def normalise_host(host: object) -> str:
    text = str(host)
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return text.lower()
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


class SourceFilter:
    def __init__(
        self, latching: bool = True, expected: tuple[str, int] | None = None, peer_host: str | None = None
    ) -> None:
        if not latching and expected is None:
            raise RtpSessionError("without latching the SDP's source address (expected_source) is needed")
        self.latching = latching
        self._expected = (normalise_host(expected[0]), int(expected[1])) if expected else None
        self._peer_host = normalise_host(peer_host) if peer_host is not None else None
        self.source: Address | None = None  # the first accepted packet's address, as received
        self._source_key: tuple[str, int] | None = None if latching else self._expected
        self._latch_hosts = self._hosts()

    def _hosts(self) -> frozenset[str] | None:
        """Hosts a latch may come from; None: any (no signalling peer known, e.g. a bare session)."""
        if self._peer_host is None:
            return None
        return frozenset(h for h in (self._peer_host, self._expected[0] if self._expected else None) if h)

    def _may_latch(self, host: object) -> bool:
        hosts = self._latch_hosts
        return hosts is None or host in hosts or normalise_host(host) in hosts

    def accepts(self, addr: Address) -> bool:
        """Whether a datagram from ``addr`` may be recorded (before it is parsed)."""
        if self._source_key is None:
            return self._may_latch(addr[0])  # latching, nothing latched yet
        if self.source is not None and addr == self.source:
            return True  # the usual case, without normalising anything
        return _key(addr) == self._source_key

    def latch(self, addr: Address) -> None:
        """A valid RTP packet from ``addr`` was accepted: remember it as the source."""
        if self.source is None:
            self.source = addr
            if self._source_key is None:
                self._source_key = _key(addr)

    def relatch(self, expected: tuple[str, int] | None = None) -> None:
        """The stream moved (a re-INVITE): latching starts over; without latching, ``expected``
        (if given) is the new source address."""
        self.source = None
        if expected is not None:
            self._expected = (normalise_host(expected[0]), int(expected[1]))
            self._latch_hosts = self._hosts()
        if self.latching:
            self._source_key = None
        elif expected is not None:
            self._source_key = self._expected

    def accepts_rtcp(self, addr: Address) -> bool:
        """RTCP comes from another port of the source's host; before any source is known, any."""
        if self._source_key is None:
            return self._may_latch(addr[0])
        return normalise_host(addr[0]) == self._source_key[0]


def _key(addr: Address) -> tuple[str, int]:
    port = addr[1] if len(addr) > 1 else -1
    return normalise_host(addr[0]), port if isinstance(port, int) else -1
