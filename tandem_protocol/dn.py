"""The DN grammar shared by the server and the agent desktop (stdlib only). Why it is what it
is: see ``server/services/dn.py``, which applies it to every DN the server takes in; the call
path (``server.calls``) looks numbers up by ``lookup_key``."""

from __future__ import annotations

import re

MAX_DIGITS = 32
_SEPARATORS = re.compile(r"[ \-.()]")
_DN = re.compile(rf"^\+?[0-9]{{1,{MAX_DIGITS}}}$")
RULE = f"a DN is 1-{MAX_DIGITS} digits with an optional leading + (spaces, -, ., ( and ) are ignored)"


class DnError(ValueError):
    """Not a DN; the message quotes what was given and states the rule."""


def normalise(raw: str) -> str:
    """The DN's one written form: surrounding whitespace and visual separators dropped."""
    dn = _SEPARATORS.sub("", raw.strip())
    if _DN.match(dn):
        return dn
    shown = raw if len(raw) <= 40 else raw[:40] + "…"
    raise DnError(f"{shown!r} is not a DN: {RULE}")


def lookup_key(raw: str) -> str:
    """The form to look a number from the network up by: normalised when it is a DN, else as
    given (stripped) — a SIP user part like ``rec`` is not an error, it just matches no DN."""
    try:
        return normalise(raw)
    except DnError:
        return raw.strip()
