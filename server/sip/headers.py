"""Header-field grammar of RFC 3261 §20/§25 that the UAS needs: names, lists, parameters,
name-addr (From/To/Contact), Via and CSeq.

Parsers are strict where RFC 4475 says a message must be refused (unbalanced quotes, overlarge
scalars, empty Via parameters) and tolerant elsewhere (LWS around '/', ';', '=').
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from server.errors import SipParseError
from server.sip.uri import SipUri, parse_uri, split_hostport

COMPACT_FORMS = {
    "i": "call-id",
    "f": "from",
    "t": "to",
    "v": "via",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
    "k": "supported",
    "s": "subject",
    "e": "content-encoding",
    "o": "event",
    "r": "refer-to",
    "u": "allow-events",
}
# Headers that RFC 3261 §7.3.1 allows to carry comma-separated values.
LIST_HEADERS = frozenset(
    {
        "via",
        "contact",
        "route",
        "record-route",
        "allow",
        "accept",
        "accept-encoding",
        "accept-language",
        "supported",
        "require",
        "proxy-require",
        "unsupported",
        "content-encoding",
        "allow-events",
        "in-reply-to",
        "alert-info",
        "call-info",
        "error-info",
    }
)
# Headers that must appear at most once (RFC 4475 §3.3.8, §3.3.9).
SINGLE_HEADERS = frozenset(
    {
        "call-id",
        "cseq",
        "from",
        "to",
        "max-forwards",
        "content-length",
        "content-type",
    }
)
MAX_CSEQ = 2**31 - 1
TOKEN_RE = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")


def is_digits(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` also accepts e.g. superscripts)."""
    return bool(text) and text.isascii() and text.isdigit()


def canonical_name(name: str) -> str:
    """Lower-case long form of a header name (compact forms expanded)."""
    low = name.strip().lower()
    return COMPACT_FORMS.get(low, low)


def split_list(value: str) -> list[str]:
    """Split a header value at commas that are outside quotes and angle brackets."""
    parts: list[str] = []
    buf: list[str] = []
    in_quote = escaped = False
    depth = 0
    for ch in value:
        if in_quote:
            buf.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_quote = False
            continue
        if ch == '"':
            in_quote = True
        elif ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            parts.append("".join(buf).strip())
            buf = []
            continue
        buf.append(ch)
    if in_quote:
        raise SipParseError("unterminated quoted string")
    parts.append("".join(buf).strip())
    return parts


def parse_params(text: str, *, strict: bool) -> dict[str, str | None]:
    """Parse ``;name=value;flag`` (the leading ';' optional). ``strict`` refuses empty params."""
    params: dict[str, str | None] = {}
    if not text.strip():
        return params
    body = text.strip()
    if body.startswith(";"):
        body = body[1:]
    for item in split_semicolons(body):
        item = item.strip()
        if not item:
            if strict:
                raise SipParseError("empty parameter")
            continue
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if not TOKEN_RE.match(key):
            raise SipParseError(f"bad parameter name {key[:40]!r}")
        params[key] = value.strip() if eq else None
    return params


def split_semicolons(text: str) -> list[str]:
    """Split at ``;`` outside double quotes (backslash escapes honoured)."""
    out: list[str] = []
    buf: list[str] = []
    in_quote = escaped = False
    for ch in text:
        if in_quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_quote = False
        elif ch == '"':
            in_quote = True
        elif ch == ";":
            out.append("".join(buf))
            buf = []
            continue
        buf.append(ch)
    if in_quote:
        raise SipParseError("unterminated quoted string in parameters")
    out.append("".join(buf))
    return out


@dataclass(frozen=True, slots=True)
class NameAddr:
    """From / To / Contact value."""

    display: str | None
    uri: SipUri
    params: dict[str, str | None]

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")


def _read_quoted(text: str) -> tuple[str, str]:
    """``text`` starts with '"': return (unescaped content, rest after the closing quote)."""
    out: list[str] = []
    i = 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if ch == '"':
            return "".join(out), text[i + 1 :]
        out.append(ch)
        i += 1
    raise SipParseError("unterminated quoted string in display name")


def parse_name_addr(value: str) -> NameAddr:
    text = value.strip()
    display: str | None = None
    if text.startswith('"'):
        display, text = _read_quoted(text)
        text = text.lstrip()
        if not text.startswith("<"):
            raise SipParseError("quoted display name not followed by <URI>")
    if "<" in text and (display is not None or text.find("<") < _first_semicolon(text)):
        before, _, rest = text.partition("<")
        if display is None and before.strip():
            display = before.strip()
        uri_text, closed, after = rest.partition(">")
        if not closed:
            raise SipParseError("unterminated <URI>")
        return NameAddr(display, parse_uri(uri_text), parse_params(after, strict=False))
    # addr-spec: parameters after the URI belong to the header, not the URI (RFC 3261 §20).
    uri_text, _, after = text.partition(";")
    if '"' in uri_text:
        raise SipParseError("unbalanced quote in address")
    return NameAddr(None, parse_uri(uri_text), parse_params(after, strict=False))


def _first_semicolon(text: str) -> int:
    pos = text.find(";")
    return len(text) if pos < 0 else pos


@dataclass(frozen=True, slots=True)
class Via:
    transport: str
    host: str
    port: int | None
    params: dict[str, str | None]

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def sent_by(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"


_VIA_RE = re.compile(r"^SIP\s*/\s*(\S+?)\s*/\s*([A-Za-z0-9\-.!%*_+`'~]+)\s+(.+)$", re.IGNORECASE | re.DOTALL)


def parse_via(value: str) -> Via:
    match = _VIA_RE.match(value.strip())
    if not match:
        raise SipParseError(f"malformed Via {value[:80]!r}")
    version, transport, rest = match.groups()
    if version != "2.0":
        raise SipParseError(f"unsupported Via protocol version {version!r}", status=505)
    hostport, sep, params = rest.partition(";")
    host, port = split_hostport(hostport.replace(" ", ""))
    return Via(transport.upper(), host, port, parse_params(sep + params, strict=True) if sep else {})


@dataclass(frozen=True, slots=True)
class CSeq:
    number: int
    method: str


def parse_cseq(value: str) -> CSeq:
    parts = value.split()
    if len(parts) != 2 or not is_digits(parts[0]) or not TOKEN_RE.match(parts[1]):
        raise SipParseError(f"malformed CSeq {value[:80]!r}")
    number = int(parts[0])
    if number > MAX_CSEQ:
        raise SipParseError("CSeq number larger than 2**31-1")
    return CSeq(number, parts[1])


def parse_max_forwards(value: str) -> int:
    text = value.strip()
    if not is_digits(text) or int(text) > 255:
        raise SipParseError(f"bad Max-Forwards {text[:40]!r}")
    return int(text)
