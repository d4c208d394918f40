"""What a DN (directory number: the agent's extension) is, and its one written form. Pure.

Grammar, applied to every DN that comes in (desktop login, full-time DN from the API and the
CLI, and — leniently — the numbers a SIP offer names):

1. Surrounding whitespace is dropped. ``"1001 "`` and ``"1001"`` were two different DNs to the
   server, so a second agent logging in with the trailing space took the first one's calls.
2. Visual separators inside are dropped: space, ``-``, ``.``, ``(`` and ``)``. People, PBX
   admin screens and tel: URIs (RFC 3966 ``visual-separator``) write the same extension as
   ``61 00``, ``61-00`` or ``+1 (555) 010.2000``; these are typography, never digits, so they
   are removed rather than refused — refusing would make the desktop login fail for a number
   the agent typed exactly as his phone shows it.
3. What remains must be 1–32 digits with an optional leading ``+`` (E.164 numbers are at most
   15 digits; 32 leaves room for PBX prefixes). Anything else — letters, ``*``, ``#``, a ``+``
   not in front, an empty string — is refused with a message saying so: ``*``/``#`` are
   feature codes and a DN with letters cannot be dialled, so accepting them would only bind an
   agent to a number no call ever arrives on.

``+1001`` and ``1001`` stay different DNs (a leading ``+`` is an international number, the
bare one an extension); the SIP side already tries a number both with and without it.
"""

from __future__ import annotations

from server.errors import InvalidInput
from tandem_protocol import dn as grammar
from tandem_protocol.dn import lookup_key as lookup_key  # the call path imports it from there

RULE = grammar.RULE


def normalise(raw: str) -> str:
    """The DN's one written form, or ``InvalidInput("invalid_dn")`` saying what is wrong."""
    try:
        return grammar.normalise(raw)
    except grammar.DnError as exc:
        raise InvalidInput("invalid_dn", str(exc)) from None
