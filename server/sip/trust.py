"""Which hosts may send SIP to the recorder: an allow-list of IP addresses and networks (pure).

A recorder answers only the SBCs/PBXs it records for. Anyone else could otherwise create
recordings, fill the disk and have RTP ports opened for them. The list is parsed once at start-up
(``TrustedSources.parse`` raises ``ValueError`` naming the bad entry) and a host's verdict is
cached, so the per-request cost is one dict lookup.

Hosts are compared as IP addresses: an IPv4 peer seen on a dual-stack socket as
``::ffff:a.b.c.d`` matches ``a.b.c.d``'s networks, and an IPv6 zone id is ignored. A host that is
not an IP address (it never is, from a socket) is not trusted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_TRUSTED = ("127.0.0.0/8", "::1")
_CACHE_MAX = 4096  # distinct hosts remembered; a spray from many addresses clears it, not grows it


def parse_networks(entries: Iterable[str]) -> tuple[IpNetwork, ...]:
    """``"10.0.0.5"``, ``"10.1.0.0/16"``, ``"2001:db8::/32"``…; ``ValueError`` names a bad one."""
    networks: list[IpNetwork] = []
    for entry in entries:
        text = str(entry).strip()
        try:
            # strict=False: "10.1.2.3/16" means the /16 it lies in, as operators tend to write it.
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(
                f"sip_trusted_sources: {entry!r} is not an IP address or network (e.g. 10.0.0.5, 10.1.0.0/16)"
            ) from None
    return tuple(networks)


def host_address(host: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address of a socket's host part, IPv4-mapped IPv6 unwrapped; None if it is none."""
    try:
        address = ipaddress.ip_address(str(host).split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedSources:
    def __init__(self, networks: Iterable[IpNetwork]) -> None:
        self.networks = tuple(networks)
        self._cache: dict[str, bool] = {}

    @classmethod
    def parse(cls, entries: Iterable[str]) -> TrustedSources:
        return cls(parse_networks(entries))

    def allows(self, host: object) -> bool:
        key = str(host)
        verdict = self._cache.get(key)
        if verdict is None:
            address = host_address(key)
            verdict = address is not None and any(address in net for net in self.networks)
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[key] = verdict
        return verdict

    def describe(self) -> str:
        return ", ".join(str(n) for n in self.networks) or "(none)"
