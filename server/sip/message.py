"""SIP message model and parser (RFC 3261 §7, §25), written for a recording server.

Why our own: the Python SIP stacks available (pjsua bindings, aiosip, sipsimple, PySIPio) are
either unmaintained, tied to a C media engine we do not want in the server, or parse lazily and
permissively with no bounds. A recorder answers hundreds of INVITEs from SBCs it does not control,
so it needs a small, bounded, strict parser it can test against RFC 4475 and reason about.

Bytes are decoded as UTF-8 with ``surrogateescape`` so odd octets survive a round trip when
headers are copied into responses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from server.errors import SipParseError
from server.sip.headers import (
    LIST_HEADERS,
    SINGLE_HEADERS,
    TOKEN_RE,
    CSeq,
    NameAddr,
    Via,
    canonical_name,
    is_digits,
    parse_cseq,
    parse_max_forwards,
    parse_name_addr,
    parse_via,
    split_list,
)
from server.sip.uri import SipUri, parse_uri

MAX_MESSAGE_BYTES = 64 * 1024
MAX_HEADERS = 256
ENCODING = "utf-8"
ERRORS = "surrogateescape"

_PRETTY = {
    "call-id": "Call-ID",
    "cseq": "CSeq",
    "www-authenticate": "WWW-Authenticate",
    "mime-version": "MIME-Version",
}
_VERSION_RE = re.compile(r"^SIP/(\d+)\.(\d+)$", re.IGNORECASE)
_LINE_SPLIT = re.compile(r"\r?\n")


def pretty_name(canonical: str) -> str:
    """Conventional spelling of a (lower-case, long-form) header name."""
    return _PRETTY.get(canonical) or "-".join(p.capitalize() for p in canonical.split("-"))


@dataclass(slots=True)
class SipMessage:
    """Headers in arrival order as (lower-case long name, unfolded value), plus the body."""

    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def get(self, name: str) -> str | None:
        key = canonical_name(name)
        for hname, value in self.headers:
            if hname == key:
                return value
        return None

    def get_all(self, name: str) -> list[str]:
        """Every value of a header, comma-lists split where RFC 3261 allows them."""
        key = canonical_name(name)
        out: list[str] = []
        for hname, value in self.headers:
            if hname == key:
                out.extend(split_list(value) if key in LIST_HEADERS else [value])
        return out

    def lines(self, name: str) -> list[str]:
        """Every header line of ``name``, unsplit (for copying Via into responses)."""
        key = canonical_name(name)
        return [value for hname, value in self.headers if hname == key]

    @property
    def call_id(self) -> str | None:
        value = self.get("call-id")
        return value.strip() if value is not None else None

    @property
    def cseq(self) -> CSeq | None:
        value = self.get("cseq")
        return parse_cseq(value) if value is not None else None

    @property
    def from_(self) -> NameAddr | None:
        value = self.get("from")
        return parse_name_addr(value) if value is not None else None

    @property
    def to(self) -> NameAddr | None:
        value = self.get("to")
        return parse_name_addr(value) if value is not None else None

    @property
    def vias(self) -> list[Via]:
        return [parse_via(v) for v in self.get_all("via")]

    @property
    def content_type(self) -> str | None:
        value = self.get("content-type")
        return value.split(";")[0].strip().lower() if value is not None else None

    def _head_lines(self) -> list[str]:
        return [f"{pretty_name(n)}: {v}" for n, v in self.headers if n != "content-length"]

    def _encode(self, start_line: str) -> bytes:
        head = "\r\n".join([start_line, *self._head_lines(), f"Content-Length: {len(self.body)}"])
        return head.encode(ENCODING, ERRORS) + b"\r\n\r\n" + self.body


@dataclass(slots=True)
class SipRequest(SipMessage):
    method: str = ""
    uri: SipUri = field(default_factory=lambda: SipUri(raw="sip:invalid", scheme="sip"))

    def to_bytes(self) -> bytes:
        return self._encode(f"{self.method} {self.uri.raw} SIP/2.0")


@dataclass(slots=True)
class SipResponse(SipMessage):
    status: int = 0
    reason: str = ""

    def to_bytes(self) -> bytes:
        return self._encode(f"SIP/2.0 {self.status} {self.reason}")


def split_head(data: bytes) -> tuple[str, bytes]:
    """Split a datagram into the decoded header section and the raw rest. Leading CRLFs (RFC 3261
    §7.5) are skipped."""
    data = data.lstrip(b"\r\n")
    for sep in (b"\r\n\r\n", b"\n\n"):
        pos = data.find(sep)
        if pos >= 0:
            return data[:pos].decode(ENCODING, ERRORS), data[pos + len(sep) :]
    raise SipParseError("no empty line ends the header section (truncated message?)")


def unfold(head: str) -> tuple[str, list[tuple[str, str]]]:
    """Start line plus (name-as-written, value) pairs with continuation lines joined."""
    lines = _LINE_SPLIT.split(head)
    start, raw = lines[0], lines[1:]
    fields: list[list[str]] = []
    for line in raw:
        if line[:1] in (" ", "\t"):
            if not fields:
                raise SipParseError("continuation line before the first header")
            fields[-1][1] = (fields[-1][1] + " " + line.strip()).strip()
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise SipParseError(f"header line without ':' {line[:60]!r}")
        fields.append([name, value.strip()])
        if len(fields) > MAX_HEADERS:
            raise SipParseError(f"more than {MAX_HEADERS} header fields")
    return start, [(n, v) for n, v in fields]


def parse_message(data: bytes) -> SipRequest | SipResponse:
    """Parse one UDP datagram. Raises ``SipParseError`` (with the status to answer) if malformed."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise SipParseError(f"message larger than {MAX_MESSAGE_BYTES} bytes", status=513)
    head, rest = split_head(data)
    start, raw_fields = unfold(head)
    headers: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, value in raw_fields:
        if not TOKEN_RE.match(name.rstrip(" \t")):
            raise SipParseError(f"bad header name {name[:40]!r}")
        key = canonical_name(name)
        if key in SINGLE_HEADERS and key in seen:
            raise SipParseError(f"{pretty_name(key)} appears more than once")
        seen.add(key)
        headers.append((key, value))
    msg = _start_line(start)
    msg.headers = headers
    msg.body = _body(msg, rest)
    _validate(msg)
    return msg


def _start_line(line: str) -> SipRequest | SipResponse:
    if line.upper().startswith("SIP/"):
        parts = line.split(" ", 2)
        if len(parts) < 2:
            raise SipParseError(f"malformed status line {line[:80]!r}")
        _check_version(parts[0])
        code = parts[1]
        if len(code) != 3 or not is_digits(code) or not 100 <= int(code) <= 699:
            raise SipParseError(f"bad status code {code[:20]!r}")
        return SipResponse(status=int(code), reason=parts[2] if len(parts) > 2 else "")
    parts = line.split(" ")
    if len(parts) != 3 or not all(parts):
        raise SipParseError(f"request line is not 'METHOD SP URI SP SIP/2.0': {line[:80]!r}")
    method, uri_text, version = parts
    if not TOKEN_RE.match(method):
        raise SipParseError(f"bad method {method[:40]!r}")
    _check_version(version)
    return SipRequest(method=method, uri=parse_uri(uri_text))


def _check_version(text: str) -> None:
    match = _VERSION_RE.match(text)
    if not match:
        raise SipParseError(f"bad protocol version {text[:20]!r}")
    if (match.group(1), match.group(2)) != ("2", "0"):
        raise SipParseError(f"unsupported SIP version {text[:20]!r}", status=505)


def _body(msg: SipMessage, rest: bytes) -> bytes:
    value = msg.get("content-length")
    if value is None:
        return rest  # UDP: the datagram ends the body (RFC 3261 §18.3)
    value = value.strip()
    if not is_digits(value):
        raise SipParseError(f"bad Content-Length {value[:20]!r}")
    length = int(value)
    if length > len(rest):
        raise SipParseError(f"Content-Length {length} exceeds the {len(rest)} body bytes received")
    return rest[:length]  # octets beyond Content-Length are ignored on UDP


def _validate(msg: SipRequest | SipResponse) -> None:
    """Parse the headers a UAS relies on so that malformed ones fail now, not mid-dialog."""
    vias = msg.vias
    cseq = msg.cseq
    _ = msg.to
    mf = msg.get("max-forwards")
    if mf is not None:
        parse_max_forwards(mf)
    if isinstance(msg, SipRequest):
        # An ACK whose CSeq says INVITE (seen from SBCs that copy the INVITE's CSeq) still names
        # the INVITE it acknowledges: tolerated here, logged when it is matched (uas.on_ack).
        ack_of_invite = msg.method == "ACK" and cseq is not None and cseq.method == "INVITE"
        if cseq is not None and cseq.method != msg.method and not ack_of_invite:
            raise SipParseError(f"CSeq method {cseq.method!r} does not match {msg.method!r}")
        from_ = msg.from_
        if vias and vias[0].branch is None and from_ is not None and from_.tag is None:
            # RFC 2543 syntax (RFC 4475 §3.4.1): neither a branch nor a From tag, so no
            # transaction or dialog could be identified. Either alone is tolerated (§3.1.1.7).
            raise SipParseError("RFC 2543 request: no Via branch and no From tag")
