"""Recording metadata (``application/rs-metadata+xml``, RFC 7865) of a SIPREC offer: who takes
part in the recorded call and which media stream each participant sends.

Real session recording clients send several generations of the format: RFC 7865's
``urn:ietf:params:xml:ns:recording:1``, the older drafts' ``urn:ietf:params:xml:ns:recording``
(``id=``/``session=`` attributes, ``<send>`` inside ``<participant>``), prefixed namespaces,
``dataMode`` vs ``datamode``. Elements and attributes are therefore matched by local name, case
and ``-``/``_`` ignored. Metadata never fails a call (RFC 7866 §6.1 lets the recorder carry on
without it), so ``parse_metadata`` never raises: it returns what it could read plus warnings.

The XML is read by ``rs_xml`` (expat, DOCTYPE refused, depth and element count bounded) into the
model of ``rs_model``; this module reads the RFC 7865 elements out of the tree.
"""

from __future__ import annotations

import re
import xml.parsers.expat as expat
from xml.etree.ElementTree import Element

from server.sip.rs_model import Participant, RecordingMetadata, Session, Stream
from server.sip.rs_xml import Refused, TreeReader, as_utf8

ROOT_NAMES = ("recording", "recordingmetadata")
_URI_IN_TEXT = re.compile(r"^sips?:[^@\s<>\"]+@[A-Za-z0-9.\-_\[\]:]+")


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


def parse_metadata(data: bytes) -> RecordingMetadata:
    """Read whatever recording metadata ``data`` holds; never raises."""
    md = RecordingMetadata()
    data = as_utf8(data, md)
    reader = TreeReader(data)
    try:
        reader.parse()
    except Refused as exc:
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


def _read_container(container: Element, md: RecordingMetadata, reader: TreeReader) -> None:
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


def _read_session(elem: Element, md: RecordingMetadata, reader: TreeReader) -> None:
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


def _read_participant(elem: Element, md: RecordingMetadata, reader: TreeReader) -> None:
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
