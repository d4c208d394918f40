"""Safe reading of recording-metadata XML: expat straight into ElementTree elements, refusing a
DOCTYPE (and with it every entity declaration, the root of billion-laughs and external-entity
attacks), bounding depth and element count, and repairing text said to be UTF-8 that is not.

Separate from ``rs_metadata`` (which reads the RFC 7865 elements out of the tree) because the
hostile-input defences are one concern, reviewed on their own, whatever the format's generations.
"""

from __future__ import annotations

import re
import xml.parsers.expat as expat
from xml.etree.ElementTree import Element

from server.sip.rs_model import RecordingMetadata

MAX_ELEMENTS = 4096
MAX_DEPTH = 32


class Refused(Exception):
    """Raised inside expat callbacks to stop parsing hostile or oversized XML."""


class TreeReader:
    """expat → ElementTree elements, with source spans for keeping extension data verbatim."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.root: Element | None = None
        self.spans: dict[int, tuple[int, int]] = {}
        self._stack: list[tuple[Element, int]] = []
        self._count = 0
        self._last_start: Element | None = None
        self._parser = expat.ParserCreate(namespace_separator="}")
        p = self._parser
        p.buffer_text = True
        p.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        p.StartDoctypeDeclHandler = self._refuse_doctype
        p.EntityDeclHandler = self._refuse_entity
        p.ExternalEntityRefHandler = self._refuse_external
        p.StartElementHandler = self._start
        p.EndElementHandler = self._end
        p.CharacterDataHandler = self._chars

    def parse(self) -> None:
        self._parser.Parse(self.data, True)

    def error_position(self) -> str:
        return f"line {self._parser.ErrorLineNumber}, column {self._parser.ErrorColumnNumber}"

    @staticmethod
    def _tag(name: str) -> str:
        uri, sep, local = name.rpartition("}")
        return f"{{{uri}}}{local}" if sep else local

    def _refuse_doctype(self, *_: object) -> None:
        raise Refused("a DOCTYPE declaration is not allowed in recording metadata")

    def _refuse_entity(self, *_: object) -> None:
        raise Refused("an entity declaration is not allowed in recording metadata")

    def _refuse_external(self, *_: object) -> int:
        raise Refused("external entities are not allowed in recording metadata")

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        self._count += 1
        if self._count > MAX_ELEMENTS or len(self._stack) >= MAX_DEPTH:
            raise Refused(f"metadata exceeds {MAX_ELEMENTS} elements or depth {MAX_DEPTH}")
        elem = Element(self._tag(name), {self._tag(k): v for k, v in attrs.items()})
        if self._stack:
            self._stack[-1][0].append(elem)
        elif self.root is None:
            self.root = elem
        self._stack.append((elem, self._parser.CurrentByteIndex))
        self._last_start = elem

    def _end(self, _name: str) -> None:
        elem, start = self._stack.pop()
        at = self._parser.CurrentByteIndex
        if self._last_start is elem and self.data[max(0, at - 2) : at] == b"/>":
            end = at  # <empty/>: expat reports the offset just past it
        else:
            close = self.data.find(b">", at)
            end = close + 1 if close >= 0 else len(self.data)
        self.spans[id(elem)] = (start, end)
        self._last_start = None

    def _chars(self, text: str) -> None:
        if not self._stack:
            return
        self._last_start = None
        parent = self._stack[-1][0]
        if len(parent):
            parent[-1].tail = (parent[-1].tail or "") + text
        else:
            parent.text = (parent.text or "") + text

    def raw(self, elem: Element) -> str:
        start, end = self.spans.get(id(elem), (0, 0))
        return self.data[start:end].decode("utf-8", "replace")


_DECLARED = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_XML_CONTROLS = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def as_utf8(data: bytes, md: RecordingMetadata) -> bytes:
    """Metadata said (or taken) to be UTF-8 that is not: octets that are not UTF-8 are read as
    Latin-1 (SBCs copy an ISO-8859-1 PBX's display names into it), and control characters XML
    forbids become '?', so one odd name does not cost the parse of every participant after it."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:4]:
        return data  # UTF-16/32: expat reads it
    declared = _DECLARED.match(data)
    if declared is not None and declared.group(1).lower().replace(b"-", b"").replace(b"_", b"") != b"utf8":
        return data  # another declared encoding: expat reads it
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", "surrogateescape")
        data = "".join(chr(ord(c) - 0xDC00) if 0xDC80 <= ord(c) <= 0xDCFF else c for c in text).encode()
        md.warn("metadata is not valid UTF-8: the octets that are not were read as Latin-1")
    if _XML_CONTROLS.search(data):
        data = _XML_CONTROLS.sub(b"?", data)
        md.warn("metadata holds control characters XML forbids: replaced by '?'")
    return data
