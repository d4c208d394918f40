"""SDP Security Descriptions (RFC 4568): reading an offer's ``a=crypto`` lines and writing ours.

Pure: no sockets, no libsrtp (the SIP side must not load it; server.rtp.srtp does the crypto).
An SRS only receives, so the answer's key is never used to send anything; RFC 4568 §5.1.1 still
requires one, for the chosen suite under the offer's tag, freshly generated for each answer.

What is refused (the line is skipped; an offer with no usable line is refused by the caller):
an unknown suite, more than one key (``;``-separated: those need an MKI), an MKI, and any
session parameter but ``WSH`` (a window-size hint, harmless): ``UNENCRYPTED_SRTP`` and the like
change what libsrtp must do, and ``KDR``/``FEC_*`` are not supported. A lifetime is accepted and
ignored (at 50 packets per second 2^31 packets last 497 days; a short one is rare in practice).

Keys are secrets: ``SdesKey.key`` is hidden from ``repr`` and nothing here logs; use
``redact`` before an SDP text is logged or stored.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass, field

# Suite -> master key || master salt length in bytes (RFC 4568 §6.2, RFC 7714 §12 for GCM).
SUITES: dict[str, int] = {
    "AES_CM_128_HMAC_SHA1_80": 30,
    "AES_CM_128_HMAC_SHA1_32": 30,
    "AEAD_AES_128_GCM": 28,
    "AEAD_AES_256_GCM": 44,
}
_HARMLESS_SESSION_PARAMS = ("WSH=",)
_INLINE = re.compile(r"(?i)(inline:)[A-Za-z0-9+/=]+")


@dataclass(frozen=True, slots=True)
class SdesKey:
    """One usable ``a=crypto`` line of an offer: the key the sender encrypts its stream with."""

    tag: int
    suite: str
    key: bytes = field(repr=False)  # master key || master salt


def parse_crypto(value: str) -> SdesKey | str:
    """The ``a=crypto:`` attribute's value (after the colon): its key, or why it is unusable."""
    parts = value.split()
    if len(parts) < 3:
        return "malformed a=crypto line"
    tag_text, suite, key_params, *session_params = parts
    if not (tag_text.isascii() and tag_text.isdigit() and len(tag_text) <= 9):
        return "malformed a=crypto tag"
    suite = suite.upper()
    if suite not in SUITES:
        return f"unsupported SRTP suite {suite[:40]}"
    if ";" in key_params:
        return "several master keys (MKI) are not supported"
    if not key_params.lower().startswith("inline:"):
        return "key method other than inline"
    key_text, *extras = key_params[7:].split("|")
    if any(":" in extra for extra in extras):
        return "MKI is not supported"
    if len(extras) > 1:
        return "malformed key parameters"
    unsupported = [p for p in session_params if not p.upper().startswith(_HARMLESS_SESSION_PARAMS)]
    if unsupported:
        return f"unsupported SRTP session parameter {unsupported[0].split('=')[0][:30]}"
    try:
        key = base64.b64decode(key_text + "=" * (-len(key_text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return "key is not base64"
    if len(key) != SUITES[suite]:
        return f"{suite} key has {len(key)} bytes instead of {SUITES[suite]}"
    return SdesKey(int(tag_text), suite, key)


def choose_crypto(values: list[str]) -> SdesKey | str:
    """The first usable line in the offer's order (the offerer's preference, RFC 4568 §7.1.1),
    else why none is (the first line's reason)."""
    reasons: list[str] = []
    for value in values:
        chosen = parse_crypto(value)
        if isinstance(chosen, SdesKey):
            return chosen
        reasons.append(chosen)
    return reasons[0] if reasons else "SRTP offered without an a=crypto line (DTLS or unsupported keying)"


def answer_line(offered: SdesKey) -> str:
    """Our ``a=crypto`` answer line: the offer's tag and suite, a fresh random key of ours."""
    ours = base64.b64encode(secrets.token_bytes(SUITES[offered.suite])).decode()
    return f"a=crypto:{offered.tag} {offered.suite} inline:{ours}"


def redact(sdp_text: str) -> str:
    """``sdp_text`` with every inline key replaced, for logs and storage."""
    return _INLINE.sub(r"\1[redacted]", sdp_text)
