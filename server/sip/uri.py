"""SIP URI parsing, just deep enough for a recording UAS.

We need the scheme (to tell SIP URIs from others), the user part (the DN to record, percent-
decoded), host/port and parameters. Anything with an unknown scheme is kept opaque, as RFC 3261
§19.1 allows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from server.errors import SipParseError

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+\-.]*:")


@dataclass(frozen=True, slots=True)
class SipUri:
    """A parsed URI. For non-SIP schemes only ``scheme`` and ``raw`` are meaningful."""

    raw: str
    scheme: str
    user: str | None = None  # percent-decoded
    host: str = ""
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def is_sip(self) -> bool:
        return self.scheme in ("sip", "sips")


def parse_uri(text: str) -> SipUri:
    """Parse ``text`` as a URI; raise ``SipParseError`` if it is not one at all."""
    raw = text.strip()
    if not raw or any(ch.isspace() for ch in raw) or raw.startswith("<"):
        raise SipParseError(f"malformed URI {raw[:80]!r}")
    if not _SCHEME.match(raw):
        raise SipParseError(f"URI without scheme {raw[:80]!r}")
    scheme, _, rest = raw.partition(":")
    scheme = scheme.lower()
    if scheme not in ("sip", "sips"):
        return SipUri(raw=raw, scheme=scheme)
    hostpart = rest
    user: str | None = None
    if "@" in rest:
        # The user part may itself contain ';', '?', '/', ',' (RFC 3261 user-unreserved).
        userinfo, _, hostpart = rest.partition("@")
        user = unquote(userinfo.partition(":")[0], errors="surrogateescape")
    hostport, _, tail = hostpart.partition(";")
    hostport = hostport.partition("?")[0]
    host, port = split_hostport(hostport)
    params: dict[str, str | None] = {}
    for item in tail.partition("?")[0].split(";") if tail else []:
        if item:
            key, eq, value = item.partition("=")
            params[key.lower()] = value if eq else None
    return SipUri(raw=raw, scheme=scheme, user=user, host=host, port=port, params=params)


def split_hostport(text: str) -> tuple[str, int | None]:
    """Split ``host[:port]`` (IPv6 references in brackets)."""
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SipParseError(f"unterminated IPv6 reference {text[:80]!r}")
        host, rest = text[: end + 1], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise SipParseError(f"garbage after IPv6 reference {text[:80]!r}")
        port_text = rest[1:] if rest else ""
    else:
        host, _, port_text = text.partition(":")
    if not host:
        raise SipParseError("empty host")
    if not port_text:
        return host, None
    if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
        raise SipParseError(f"bad port {port_text[:20]!r}")
    return host, int(port_text)
