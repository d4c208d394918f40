"""RFC 2046 §5.1 multipart body parser for SIP message bodies (SIPREC offers carry SDP and
recording metadata in one ``multipart/mixed`` body, RFC 7866 §9).

Written for what session border controllers really send rather than for the letter of the RFC:
CRLF and bare LF line ends (often mixed in one body), transport padding after delimiters, a
missing close delimiter, and part headers without a space after the colon. It is bounded (body
size, part count, header lines per part) and refuses what it cannot split with ``MultipartError``
(a ``ValueError``), which a UAS answers with 400.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from server.errors import MultipartError, SipParseError
from server.sip.headers import split_semicolons

MAX_BODY_BYTES = 64 * 1024
MAX_PARTS = 16
MAX_PART_HEADERS = 32
MAX_BOUNDARY_LENGTH = 70  # RFC 2046 §5.1.1
DEFAULT_CONTENT_TYPE = "text/plain"  # RFC 2046 §5.1: a part without Content-Type
_LINE_END = re.compile(rb"\r?\n")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$")


@dataclass(frozen=True, slots=True)
class BodyPart:
    """One body part: its MIME headers (lower-case names, in order) and its content octets."""

    content_type: str  # lower-case "type/subtype" without parameters, as sent
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    content_type_params: dict[str, str] = field(default_factory=dict)
    disposition: str | None = None  # lower-case disposition type, e.g. "recording-session"
    disposition_params: dict[str, str] = field(default_factory=dict)
    content_id: str | None = None

    def header(self, name: str) -> str | None:
        key = name.lower()
        return next((value for hname, value in self.headers if hname == key), None)

    @property
    def handling_required(self) -> bool:
        """RFC 5621 §9.1: ``handling=required`` parts must be understood or the request refused."""
        return self.disposition_params.get("handling", "").lower() == "required"


@dataclass(frozen=True, slots=True)
class MultipartBody:
    parts: tuple[BodyPart, ...]
    preamble: bytes
    epilogue: bytes
    closed: bool  # False when the close delimiter ("--boundary--") was missing


def split_parameters(value: str) -> tuple[str, dict[str, str]]:
    """``type/sub; a=1; b="x;y"`` → (lower-case ``type/sub``, {"a": "1", "b": "x;y"}).

    Parameter names are lower-cased; quoted values are unquoted (backslash escapes honoured).
    An unterminated quote or a parameter without a name is a ``MultipartError``.
    """
    try:
        items = split_semicolons(value)
    except SipParseError as exc:
        raise MultipartError(f"{exc} in {value[:80]!r}") from exc
    params: dict[str, str] = {}
    for item in items[1:]:
        if not item.strip():
            continue  # tolerate "a=1;;b=2" and a trailing ';'
        name, _, raw = item.partition("=")
        name = name.strip().lower()
        if not name:
            raise MultipartError(f"parameter without a name in {value[:80]!r}")
        params[name] = _unquote(raw.strip())
    return items[0].strip().lower(), params


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def boundary_of(content_type: str) -> str:
    """The ``boundary`` parameter of a multipart Content-Type (quoted or not)."""
    media_type, params = split_parameters(content_type)
    if not media_type.startswith("multipart/"):
        raise MultipartError(f"{media_type!r} is not a multipart type")
    boundary = params.get("boundary")
    if not boundary:
        raise MultipartError("multipart Content-Type has no boundary parameter")
    if len(boundary) > MAX_BOUNDARY_LENGTH:
        raise MultipartError(f"boundary longer than {MAX_BOUNDARY_LENGTH} characters")
    if any(ord(ch) < 0x20 or ord(ch) > 0x7E for ch in boundary):
        raise MultipartError("boundary contains control or non-ASCII characters")
    return boundary


def parse_multipart(content_type: str, body: bytes) -> MultipartBody:
    """Split ``body`` at the boundary named in ``content_type`` (RFC 2046 §5.1.1)."""
    if len(body) > MAX_BODY_BYTES:
        raise MultipartError(f"multipart body larger than {MAX_BODY_BYTES} bytes")
    delimiter = b"--" + boundary_of(content_type).encode("ascii")
    # (start of the line break before the delimiter line, offset just after the delimiter line)
    marks: list[tuple[int, int]] = []
    closed_at: tuple[int, int] | None = None
    start = 0
    while start <= len(body) and closed_at is None:
        match = _LINE_END.search(body, start)
        end, after = (match.start(), match.end()) if match else (len(body), len(body) + 1)
        kind = _delimiter_kind(body[start:end], delimiter)
        if kind is not None:
            before = start  # the line break before a delimiter belongs to it, not to the part
            if start >= 2 and body[start - 2 : start] == b"\r\n":
                before = start - 2
            elif start >= 1 and body[start - 1 : start] == b"\n":
                before = start - 1
            mark = (before, min(after, len(body)))
            if kind == "close":
                closed_at = mark
            else:
                marks.append(mark)
                if len(marks) > MAX_PARTS:
                    raise MultipartError(f"more than {MAX_PARTS} body parts")
        start = after
    if not marks:
        raise MultipartError("the boundary delimiter does not occur in the body")
    ends = [m[0] for m in marks[1:]] + [closed_at[0] if closed_at else len(body)]
    parts = tuple(_parse_part(body[m[1] : e]) for m, e in zip(marks, ends, strict=True))
    epilogue = body[closed_at[1] :] if closed_at else b""
    return MultipartBody(parts, body[: marks[0][0]], epilogue, closed_at is not None)


def _delimiter_kind(line: bytes, delimiter: bytes) -> str | None:
    """ "open", "close" or None. Trailing whitespace is transport padding (RFC 2046 §5.1.1)."""
    line = line.rstrip(b"\r")
    if not line.startswith(delimiter):
        return None
    rest = line[len(delimiter) :]
    if not rest.strip(b" \t"):
        return "open"
    if rest.startswith(b"--") and not rest[2:].strip(b" \t"):
        return "close"
    return None  # the boundary is only a prefix of this line: it is content


def _parse_part(raw: bytes) -> BodyPart:
    headers: list[tuple[str, str]] = []
    pos = 0
    while pos < len(raw):
        match = _LINE_END.search(raw, pos)
        end, after = (match.start(), match.end()) if match else (len(raw), len(raw))
        line = raw[pos:end].decode("utf-8", "replace")
        if not line.strip():
            pos = after
            break
        if line[:1] in (" ", "\t") and headers:
            name, value = headers[-1]
            headers[-1] = (name, (value + " " + line.strip()).strip())
        else:
            name, colon, value = line.partition(":")
            if not colon or not _HEADER_NAME.match(name.strip()):
                if headers:
                    raise MultipartError(f"malformed body part header {line[:60]!r}")
                break  # no header section at all: the part is all content
            headers.append((name.strip().lower(), value.strip()))
            if len(headers) > MAX_PART_HEADERS:
                raise MultipartError(f"more than {MAX_PART_HEADERS} headers in a body part")
        pos = after
    return _build_part(headers, raw[pos:])


def _build_part(headers: list[tuple[str, str]], content: bytes) -> BodyPart:
    found = dict(reversed(headers))  # first occurrence wins
    ctype: str = DEFAULT_CONTENT_TYPE
    ctype_params: dict[str, str] = {}
    if found.get("content-type"):
        ctype, ctype_params = split_parameters(found["content-type"])
    disposition: str | None = None
    disposition_params: dict[str, str] = {}
    if found.get("content-disposition"):
        disposition, disposition_params = split_parameters(found["content-disposition"])
    content_id = found.get("content-id")
    if content_id is not None:
        content_id = content_id.strip().removeprefix("<").removesuffix(">") or None
    return BodyPart(ctype, content, tuple(headers), ctype_params, disposition, disposition_params, content_id)
