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

import re

from server.services.errors import InvalidInput

MAX_DIGITS = 32
_SEPARATORS = re.compile(r"[ \-.()]")
_DN = re.compile(rf"^\+?[0-9]{{1,{MAX_DIGITS}}}$")
RULE = f"a DN is 1-{MAX_DIGITS} digits with an optional leading + (spaces, -, ., ( and ) are ignored)"


def normalise(raw: str) -> str:
    """The DN's one written form, or ``InvalidInput("invalid_dn")`` saying what is wrong."""
    dn = _SEPARATORS.sub("", raw.strip())
    if _DN.match(dn):
        return dn
    shown = raw if len(raw) <= 40 else raw[:40] + "…"
    raise InvalidInput("invalid_dn", f"{shown!r} is not a DN: {RULE}")


def lookup_key(raw: str) -> str:
    """The form to look a number from the network up by: normalised when it is a DN, else as
    given (stripped) — a SIP user part like ``rec`` is not an error, it just matches no DN."""
    try:
        return normalise(raw)
    except InvalidInput:
        return raw.strip()
