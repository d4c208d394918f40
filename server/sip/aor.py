"""The number an address of record names, in every form SRCs write one. Pure.

SIPREC metadata (RFC 7865 ``<nameID aor=…>`` / ``<aor>``), From/To headers and Request-URIs
name a party in many shapes; each real one below was seen from a deployed SRC:

- ``sip:1001@pbx``, ``sips:…``, ``sip:+4930123@gw;user=phone``   → the user part
- ``sip:+1-555-010-2000@gw;user=phone`` (RFC 3966 visual separators) → kept; the DN grammar drops them
- ``sip:1001;phone-context=example.com@pbx`` (telephone-subscriber) → the number before ``;``
- ``sip:%2B4930123@gw`` (percent-encoded)                        → ``+4930123``
- ``tel:+1-555-010-2000;phone-context=…``                        → ``+1-555-010-2000``
- ``2249888500@172.16.198.55`` (Sonus: no scheme)                → ``2249888500``
- ``7602922410`` (Metaswitch ``<nameID aor="7602922410">``: a bare number) → itself
- ``sip:8638254725`` (BroadWorks: a host-less URI, the number where the host goes) → the number
- ``"Alice" <sip:1001@pbx>`` (a name-addr where an AOR was expected) → ``1001``

Anything else (``sip:alice@pbx``, ``sip:pbx.example.com``, ``urn:…``) gives its user part or
nothing: the DN lookup then simply finds no agent for it.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from server.errors import SipError
from server.sip.uri import parse_uri
from tandem_protocol import dn as dn_rules

# A host-less URI's "host" is taken for a number only when it is digits with an optional "+"
# and "-" / "(" / ")" separators: no dots, so an IPv4 address ("10.0.0.1") is never a number.
_HOST_NUMBER = re.compile(r"^\+?[0-9][0-9\-()]*$")


def aor_number(text: str) -> str | None:
    """The number (or user) ``text`` names, as written (separators kept), or None."""
    text = text.strip()
    if "<" in text and ">" in text.partition("<")[2]:
        text = text.partition("<")[2].rpartition(">")[0].strip()  # name-addr: the URI inside <>
    if not text:
        return None
    try:
        dn_rules.normalise(text)
        return text  # a bare number, with or without visual separators
    except dn_rules.DnError:
        pass
    if ":" not in text.split("@", 1)[0]:
        text = "sip:" + text  # no scheme (Sonus); a bare number was handled above
    try:
        uri = parse_uri(text)
    except (SipError, ValueError):
        return None
    if uri.scheme == "tel":
        number = unquote(uri.raw.partition(":")[2].split(";")[0], errors="replace")
    elif not uri.is_sip:
        return None
    elif uri.user is not None:
        number = uri.user.split(";")[0]  # telephone-subscriber parameters are not the number
    elif _HOST_NUMBER.match(uri.host):
        number = uri.host  # host-less "sip:8638254725"
    else:
        return None
    return number.strip() or None
