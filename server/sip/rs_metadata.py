"""Recording metadata (``application/rs-metadata+xml``, RFC 7865) of a SIPREC offer: who takes
part in the recorded call and which media stream each participant sends.

Real session recording clients send several generations of the format: RFC 7865's
``urn:ietf:params:xml:ns:recording:1``, the older drafts' ``urn:ietf:params:xml:ns:recording``
(``id=``/``session=`` attributes, ``<send>`` inside ``<participant>``), prefixed namespaces,
``dataMode`` vs ``datamode``. Elements and attributes are therefore matched by local name, case
and ``-``/``_`` ignored. Metadata never fails a call (RFC 7866 §6.1 lets the recorder carry on
without it), so ``parse_metadata`` never raises: it returns what it could read plus warnings.

The XML is parsed with expat directly: a DOCTYPE (and with it every entity declaration, the root
of billion-laughs and external-entity attacks) is refused, and depth and element count are bounded.
"""

from __future__ import annotations

import re
import xml.parsers.expat as expat
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

MAX_ELEMENTS = 4096
MAX_DEPTH = 32
MAX_WARNINGS = 32
ROOT_NAMES = ("recording", "recordingmetadata")
_URI_IN_TEXT = re.compile(r"^sips?:[^@\s<>\"]+@[A-Za-z0-9.\-_\[\]:]+")


class _Refused(Exception):
    """Raised inside expat callbacks to stop parsing hostile or oversized XML."""


@dataclass(slots=True)
class Participant:
    participant_id: str
    aors: list[str] = field(default_factory=list)  # nameID aor= and <aor>, in document order
    names: list[str] = field(default_factory=list)  # display names
    sends: list[str] = field(default_factory=list)  # stream ids
    receives: list[str] = field(default_factory=list)
    session_ids: list[str] = field(default_factory=list)
    calling_party: bool | None = None  # vendor hint (Acme apkt:callingParty), None if absent
    # The SRC's mark of the party being recorded (an extension element such as
    # ``recordedParty``/``isRecorded``, or a participant attribute ``recorded``), None if absent.
    recorded: bool | None = None
    extensions: list[str] = field(default_factory=list)  # raw XML of extension data
    declared: bool = True  # False: only named by an association element


@dataclass(slots=True)
class Stream:
    stream_id: str
    label: str | None = None
    session_id: str | None = None
    mode: str | None = None  # legacy: "separate" / "mixed"


@dataclass(slots=True)
class Session:
    session_id: str
    sip_session_ids: list[str] = field(default_factory=list)
    group_ref: str | None = None
    start_time: str | None = None


@dataclass(slots=True)
class RecordingMetadata:
    root: str | None = None  # local name of the root element
    namespace: str | None = None
    datamode: str | None = None
    group_ids: list[str] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    recording_session_ids: list[str] = field(default_factory=list)  # sessionrecordingassoc
    participants: list[Participant] = field(default_factory=list)  # document order
    streams: list[Stream] = field(default_factory=list)
    extensions: list[str] = field(default_factory=list)  # raw XML outside participants
    salvaged_uris: list[str] = field(default_factory=list)  # guesses from damaged metadata text
    warnings: list[str] = field(default_factory=list)

    def participant(self, participant_id: str) -> Participant | None:
        return next((p for p in self.participants if p.participant_id == participant_id), None)

    def stream(self, stream_id: str) -> Stream | None:
        return next((s for s in self.streams if s.stream_id == stream_id), None)

    def streams_labelled(self, label: str) -> list[Stream]:
        return [s for s in self.streams if s.label == label]

    def warn(self, text: str) -> None:
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(text)


def norm(name: str) -> str:
    """Local name, lower case, without ``-``/``_``: ``{ns}participant_id`` → ``participantid``."""
    return name.rpartition("}")[2].lower().replace("-", "").replace("_", "")


def _text(elem: Element) -> str | None:
    text = "".join(elem.itertext()).strip()
    return text or None


def _attr(elem: Element, *names: str) -> str | None:
    for key, value in elem.attrib.items():
        if norm(key) in names and value.strip():
            return value.strip()
    return None


class _TreeReader:
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
        raise _Refused("a DOCTYPE declaration is not allowed in recording metadata")

    def _refuse_entity(self, *_: object) -> None:
        raise _Refused("an entity declaration is not allowed in recording metadata")

    def _refuse_external(self, *_: object) -> int:
        raise _Refused("external entities are not allowed in recording metadata")

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        self._count += 1
        if self._count > MAX_ELEMENTS or len(self._stack) >= MAX_DEPTH:
            raise _Refused(f"metadata exceeds {MAX_ELEMENTS} elements or depth {MAX_DEPTH}")
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


def _as_utf8(data: bytes, md: RecordingMetadata) -> bytes:
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


def parse_metadata(data: bytes) -> RecordingMetadata:
    """Read whatever recording metadata ``data`` holds; never raises."""
    md = RecordingMetadata()
    data = _as_utf8(data, md)
    reader = _TreeReader(data)
    try:
        reader.parse()
    except _Refused as exc:
        md.warn(f"metadata refused: {exc}")
        return md
    except expat.ExpatError as exc:
        md.warn(
            f"metadata XML is malformed ({expat.ErrorString(exc.code)} at {reader.error_position()});"
            " using what was read before the error"
        )
    except (LookupError, ValueError) as exc:  # e.g. encoding="UTF-9": expat asks the codec registry
        md.warn(f"metadata XML cannot be decoded ({exc}); using what was read before the error")
    root = reader.root
    if root is None:
        md.warn("metadata has no XML element")
        _salvage(md, data.decode("utf-8", "replace"))
        return md
    md.namespace = root.tag[1:].partition("}")[0] if root.tag.startswith("{") else None
    md.root = root.tag.rpartition("}")[2]
    if norm(root.tag) not in ROOT_NAMES:
        md.warn(f"unexpected metadata root element {md.root!r}")
    _read_container(root, md, reader)
    _check(md)
    if not md.participants and not md.streams:
        md.warn("metadata names no participants and no streams")
        _salvage(md, "".join(root.itertext()))
    return md


def _read_container(container: Element, md: RecordingMetadata, reader: _TreeReader) -> None:
    """Children of ``<recording>`` (and of ``<group>``/``<session>``, where old drafts nest)."""
    for child in container:
        name = norm(child.tag)
        if name == "datamode":
            md.datamode = _text(child)
        elif name == "group":
            group_id = _attr(child, "groupid", "id")
            if group_id:
                md.group_ids.append(group_id)
            _read_container(child, md, reader)
        elif name == "session":
            _read_session(child, md, reader)
        elif name == "participant":
            _read_participant(child, md, reader)
        elif name == "stream":
            _read_stream(child, md)
        elif name == "participantstreamassoc":
            _read_stream_assoc(child, md)
        elif name == "participantsessionassoc":
            participant = _participant_for(child, md)
            session_id = _attr(child, "sessionid", "session")
            if participant is not None and session_id and session_id not in participant.session_ids:
                participant.session_ids.append(session_id)
        elif name == "sessionrecordingassoc":
            session_id = _attr(child, "sessionid", "session")
            if session_id:
                md.recording_session_ids.append(session_id)
        elif name in (
            "associatetime",
            "disassociatetime",
            "groupref",
            "sipsessionid",
            "starttime",
            "stoptime",
        ):
            continue  # fields of the container itself, read by its own reader
        else:
            md.extensions.append(reader.raw(child))


def _read_session(elem: Element, md: RecordingMetadata, reader: _TreeReader) -> None:
    session_id = _attr(elem, "sessionid", "id")
    if session_id is None:
        md.warn("a <session> has no session_id")
        session_id = ""
    session = Session(session_id)
    for child in elem:
        name = norm(child.tag)
        if name == "sipsessionid" and _text(child):
            session.sip_session_ids.append(_text(child) or "")
        elif name == "groupref":
            session.group_ref = _text(child)
        elif name == "starttime":
            session.start_time = _text(child)
    md.sessions.append(session)
    _read_container(elem, md, reader)


def _read_participant(elem: Element, md: RecordingMetadata, reader: _TreeReader) -> None:
    participant_id = _attr(elem, "participantid", "id")
    if participant_id is None:
        participant_id = f"#{len(md.participants) + 1}"
        md.warn(f"a <participant> has no participant_id; calling it {participant_id!r}")
    participant = md.participant(participant_id)
    if participant is None:
        participant = Participant(participant_id)
        md.participants.append(participant)
    participant.declared = True
    marked = _flag(_attr(elem, *RECORDED_NAMES))
    if marked is not None:
        participant.recorded = marked
    session_id = _attr(elem, "sessionid", "session")
    if session_id and session_id not in participant.session_ids:
        participant.session_ids.append(session_id)
    for child in elem:
        name = norm(child.tag)
        if name == "nameid":
            _add(participant.aors, _attr(child, "aor"))
            for sub in child:
                if norm(sub.tag) == "name":
                    _add(participant.names, _text(sub))
        elif name == "aor":
            _add(participant.aors, _text(child))
        elif name in ("name", "displayname"):
            _add(participant.names, _text(child))
        elif name == "send":
            _add(participant.sends, _text(child))
        elif name == "recv":
            _add(participant.receives, _text(child))
        elif name in ("associatetime", "disassociatetime"):
            continue
        else:
            participant.extensions.append(reader.raw(child))
            for sub in child.iter():
                if norm(sub.tag) == "callingparty" and _text(sub) in ("true", "false"):
                    participant.calling_party = _text(sub) == "true"
                elif norm(sub.tag) in RECORDED_NAMES:
                    marked = _flag(_text(sub) or _attr(sub, "value"))
                    if marked is not None:
                        participant.recorded = marked


# Names (``norm`` form) SRCs give the "this is the recorded party" mark, as an element inside a
# participant's extension data or as a participant attribute (Metaswitch ``recordedParty``).
RECORDED_NAMES = ("recordedparty", "isrecorded", "recorded", "recordedsubscriber")
_TRUE = frozenset({"true", "yes", "1", "on"})
_FALSE = frozenset({"false", "no", "0", "off"})


def _flag(text: str | None) -> bool | None:
    value = (text or "").strip().lower()
    return True if value in _TRUE else False if value in _FALSE else None


def _read_stream(elem: Element, md: RecordingMetadata) -> None:
    stream_id = _attr(elem, "streamid", "id")
    if stream_id is None:
        md.warn("a <stream> has no stream_id; ignored")
        return
    stream = Stream(stream_id, session_id=_attr(elem, "sessionid", "session"))
    for child in elem:
        name = norm(child.tag)
        if name == "label":
            stream.label = _text(child)
        elif name == "mode":
            stream.mode = _text(child)
    if stream.label is None:
        md.warn(f"stream {stream_id!r} has no label")
    md.streams.append(stream)


def _participant_for(elem: Element, md: RecordingMetadata) -> Participant | None:
    participant_id = _attr(elem, "participantid", "participant", "id")
    if participant_id is None:
        md.warn(f"<{elem.tag.rpartition('}')[2]}> has no participant_id; ignored")
        return None
    participant = md.participant(participant_id)
    if participant is None:
        # Associations may precede the participant they name; <participant> fills it in later.
        participant = Participant(participant_id, declared=False)
        md.participants.append(participant)
    return participant


def _read_stream_assoc(elem: Element, md: RecordingMetadata) -> None:
    participant = _participant_for(elem, md)
    if participant is None:
        return
    for child in elem:
        name = norm(child.tag)
        if name == "send":
            _add(participant.sends, _text(child))
        elif name == "recv":
            _add(participant.receives, _text(child))


def _add(items: list[str], value: str | None) -> None:
    if value and value not in items:
        items.append(value)


def _check(md: RecordingMetadata) -> None:
    known = {s.stream_id for s in md.streams}
    for participant in md.participants:
        if not participant.declared:
            md.warn(f"participant {participant.participant_id!r} is only named by an association")
        for stream_id in participant.sends + participant.receives:
            if stream_id not in known:
                md.warn(f"participant {participant.participant_id!r} names unknown stream {stream_id!r}")


def _salvage(md: RecordingMetadata, text: str) -> None:
    """Damaged metadata (tags stripped in transit): keep the SIP URIs its text still shows."""
    for chunk in re.split(r"(?=sips?:)", text):
        match = _URI_IN_TEXT.match(chunk)
        if match:
            _add(md.salvaged_uris, match.group(0))
        if len(md.salvaged_uris) >= 16:
            break
    if md.salvaged_uris:
        md.warn(f"salvaged {len(md.salvaged_uris)} URI(s) from unstructured metadata text")
