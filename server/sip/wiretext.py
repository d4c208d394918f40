"""Header text from the network: the exact wire bytes for SIP, a safe decoding for people.

The parser decodes a message as UTF-8 with ``surrogateescape`` (server.sip.message): every octet
that is not part of valid UTF-8 becomes the lone surrogate U+DC80+octet, so the header values the
engine holds are lossless and responses echo Call-ID, From, To and Via byte for byte (RFC 3261
§8.2.6.2). Those strings cannot be stored (SQLite, JSON and log handlers refuse lone surrogates)
and may hold control bytes, so everything that leaves the SIP engine for the database, events,
the UI or a log goes through ``display_text``:

- valid UTF-8 stays as it is ("Müller" sent as UTF-8);
- each octet that is not UTF-8 is read as Latin-1 ("M\\xfcller" from an ISO-8859-1 PBX → "Müller"),
  octet by octet, so the valid UTF-8 around it is not turned into mojibake;
- control and format characters (C0, C1, DEL, bidi overrides, line separators) become "?";
- the result is capped (the database columns are String(255)).

Pure functions, no I/O.
"""

from __future__ import annotations

import dataclasses
import unicodedata

from server.sip.listener import CallOffer, OfferedStream, Party

MAX_STORED = 255  # interactions.call_id / caller / callee are String(255)
MAX_DN = 64
MAX_LOGGED = 200
_ESCAPE_FIRST, _ESCAPE_LAST = 0xDC80, 0xDCFF  # surrogateescape's range for octets 0x80-0xFF


def wire_bytes(text: str) -> bytes:
    """The octets a parsed header value came from."""
    return text.encode("utf-8", "surrogateescape")


def _char(c: str) -> str:
    code = ord(c)
    if _ESCAPE_FIRST <= code <= _ESCAPE_LAST:
        c = chr(code - 0xDC00)  # an octet that was not UTF-8: its Latin-1 reading
    category = unicodedata.category(c)
    if category[0] == "C" or category in ("Zl", "Zp"):
        return "?"
    return c


def display_text(text: str, limit: int = MAX_STORED) -> str:
    """Safe, capped text of a header value (see the module docstring)."""
    return "".join(_char(c) for c in text[: limit * 2])[:limit]


def log_text(value: object) -> object:
    """A log argument: strings made safe and capped, anything else as it is (its %-format is the
    logger's business)."""
    return display_text(value, MAX_LOGGED) if isinstance(value, str) else value


def _opt(text: str | None, limit: int = MAX_STORED) -> str | None:
    return None if text is None else display_text(text, limit)


def _party(p: Party) -> Party:
    return dataclasses.replace(
        p,
        participant_id=display_text(p.participant_id),
        aor=_opt(p.aor),
        name=_opt(p.name),
        numbers=tuple(display_text(n, MAX_DN) for n in p.numbers),
    )


def _stream(s: OfferedStream) -> OfferedStream:
    return dataclasses.replace(s, label=_opt(s.label), sender=_opt(s.sender))


def safe_offer(offer: CallOffer) -> CallOffer:
    """The offer the core sees (and stores): every text field safe and capped. The engine keeps
    the raw Call-ID for matching ACK, BYE and re-INVITEs; the core only ever sees this one."""
    return dataclasses.replace(
        offer,
        call_id=display_text(offer.call_id),
        dn=display_text(offer.dn, MAX_DN),
        caller=display_text(offer.caller),
        callee=display_text(offer.callee),
        session_id=_opt(offer.session_id),
        participants=tuple(_party(p) for p in offer.participants),
        streams=tuple(_stream(s) for s in offer.streams),
        params=tuple((display_text(k), display_text(v)) for k, v in offer.params),
        warnings=tuple(display_text(w, 500) for w in offer.warnings),
    )
